package ratelimit

import (
	"errors"
	"testing"
)

// FuzzParseLimit checks that ParseLimit never panics, that every error
// wraps ErrBadLimit, and that every accepted limit is positive and survives
// a String/ParseLimit round trip.
func FuzzParseLimit(f *testing.F) {
	for _, s := range []string{
		"", "5/h", "200/d", "30/10m", "1/s", " 3/h ", "0/h", "-1/h", "5", "5/", "5/x",
		"5/0h", "5/-1h", "1000000000/100000d", "1000000001/h", "5/h/h", "٣/h", "5/1e3s",
		"9223372036854775807/h", "5/99999999999s",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		l, err := ParseLimit(s)
		if err != nil {
			if !errors.Is(err, ErrBadLimit) {
				t.Fatalf("ParseLimit(%q) error %v does not wrap ErrBadLimit", s, err)
			}
			return
		}
		if l.IsZero() {
			if l != (Limit{}) {
				t.Fatalf("ParseLimit(%q) = %+v: zero-ish but not the zero Limit", s, l)
			}
			return
		}
		if l.Count <= 0 || l.Period <= 0 || l.Interval() < 0 {
			t.Fatalf("ParseLimit(%q) = %+v: not positive", s, l)
		}
		back, err := ParseLimit(l.String())
		if err != nil || back != l {
			t.Fatalf("round trip of %q: %q -> %+v, %v", s, l.String(), back, err)
		}
	})
}
