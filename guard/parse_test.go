package guard

import (
	"net/url"
	"testing"
)

// FuzzUnescape: the guard's urlencoded decoding is url.QueryUnescape's,
// value and error, and decoded text is never overwritten by later fields.
func FuzzUnescape(f *testing.F) {
	for _, s := range []string{"", "a+b", "a%40b", "%zz", "%4", "%", "100%", "%E2%80%A8", "a%0D%0Ab", "%41%", "+%2B+"} {
		f.Add(s, "x%41y")
	}
	f.Fuzz(func(t *testing.T, s, next string) {
		fs := getFieldSet()
		defer fs.release()
		got, err := fs.unescape(s, len(s)+len(next))
		want, werr := url.QueryUnescape(s)
		if (err == nil) != (werr == nil) || (err != nil && err.Error() != werr.Error()) {
			t.Fatalf("unescape(%q) error %v, url.QueryUnescape %v", s, err, werr)
		}
		if err != nil {
			return
		}
		if got != want {
			t.Fatalf("unescape(%q) = %q, want %q", s, got, want)
		}
		if _, err := fs.unescape(next, len(next)); err == nil && got != want {
			t.Fatalf("decoding %q overwrote %q: now %q", next, want, got)
		}
	})
}

func TestParseFormKeepsFieldsApart(t *testing.T) {
	v, err := ParseForm(bodyURLEncoded, nil, []byte("a=1+1&b=%41&a=%42&c=&b=x"), DefaultMaxFields, false)
	if err != nil {
		t.Fatal(err)
	}
	want := Values{"a": {"1 1", "B"}, "b": {"A", "x"}, "c": {""}}
	if len(v) != len(want) {
		t.Fatalf("ParseForm = %q, want %q", v, want)
	}
	for k, w := range want {
		if len(v[k]) != len(w) {
			t.Fatalf("ParseForm[%q] = %q, want %q", k, v[k], w)
		}
		for i := range w {
			if v[k][i] != w[i] {
				t.Fatalf("ParseForm[%q] = %q, want %q", k, v[k], w)
			}
		}
	}
}
