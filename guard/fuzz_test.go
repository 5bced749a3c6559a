package guard

import (
	"github.com/formguard/formguard/post"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"
)

func FuzzParseForm(f *testing.F) {
	f.Add(0, "name=Ada&email=a%40b.test&message=hi")
	f.Add(0, "a=1&a=2&%zz=3")
	f.Add(1, "--B\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nx\r\n--B--\r\n")
	f.Add(1, "--B\r\nContent-Disposition: form-data; name=\"a\"; filename=\"f\"\r\n\r\nx\r\n--B--\r\n")
	f.Add(2, `{"name":"Ada","to":["a@b.test","c@d.test"]}`)
	f.Add(2, `{"a":{"b":[1,2,{"c":null}]}}`)
	f.Add(2, `{"a":"\ud800"} trailing`)
	f.Fuzz(func(t *testing.T, kind int, body string) {
		k := bodyURLEncoded + ((kind%3)+3)%3
		v, err := ParseForm(k, map[string]string{"boundary": "B"}, []byte(body), DefaultMaxFields, kind%2 == 0)
		if err != nil {
			return
		}
		if len(v) > DefaultMaxFields {
			t.Fatalf("%d fields accepted", len(v))
		}
		for name, vals := range v {
			if !utf8.ValidString(name) || name == "" || len(name) > maxFieldNameLen {
				t.Fatalf("bad field name %q accepted", name)
			}
			for _, s := range vals {
				if !utf8.ValidString(s) {
					t.Fatalf("invalid UTF-8 accepted in %q", name)
				}
			}
		}
	})
}

func FuzzParseAddress(f *testing.F) {
	for _, s := range []string{"ada@example.org", "A <a@b.test>", "a@b@c.test", "@r:a@b.test", "a(c)@b.test",
		"\"q\"@b.test", "a@[1.2.3.4]", "a@bücher.example", "a..b@c.test", "a@-x.test", "g: a@b.test;", "a@b.test\r\nBcc: x",
		"a%b@c.test", "b!a@c.test", "a@xn--zz.test", "a@C.TEST.", "a@c\u3002test"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := ParseAddress(s)
		if err != nil {
			return
		}
		if len(a) > MaxEmailLength || strings.ContainsAny(a, "<>()[]\",;: \t\r\n\\%!") || strings.Count(a, "@") != 1 {
			t.Fatalf("ParseAddress(%q) = %q", s, a)
		}
		for i := 0; i < len(a); i++ {
			if a[i] >= 0x80 || a[i] < 0x21 {
				t.Fatalf("non-ASCII or control byte in %q", a)
			}
		}
		// Normalisation is idempotent.
		if b, err := ParseAddress(a); err != nil || b != a {
			t.Fatalf("ParseAddress(%q) = %q, %v; not idempotent", a, b, err)
		}
		if !SingleLine(a) {
			t.Fatalf("accepted address %q is not single-line safe", a)
		}
	})
}

func FuzzRecipients(f *testing.F) {
	f.Add("a@x.test, b@x.test", "c@x.test")
	f.Add("a@x.test;b@x.test", "")
	f.Add("\"A\" <a@x.test>", "friends: a@x.test;")
	f.Add("CEO@EXAMPLE.TEST.", "hr@mail.example\uff0etest")
	f.Add("a%evil.test@x.test", "evil.test!a@x.test")
	f.Fuzz(func(t *testing.T, a, b string) {
		p := &policy{maxRcpt: 3, names: FieldNames{To: "to"}, form: Form{Kind: post.Share}}
		g := &Guard{domain: "example.test"}
		sub := &post.Submission{}
		if e := g.recipients(p, Values{"to": {a, b}}, sub); e != nil {
			if len(sub.Recipients) != 0 {
				t.Fatalf("recipients kept on error: %v", sub.Recipients)
			}
			return
		}
		if len(sub.Recipients) == 0 || len(sub.Recipients) > 3 {
			t.Fatalf("%d recipients accepted", len(sub.Recipients))
		}
		for _, r := range sub.Recipients {
			if n, err := ParseAddress(r); err != nil || n != r {
				t.Fatalf("recipient %q not normalised (%q, %v)", r, n, err)
			}
			if domainMatches(addressDomain(r), g.domain) {
				t.Fatalf("recipient %q on the site's own domain", r)
			}
		}
	})
}

func FuzzSingleLine(f *testing.F) {
	for _, s := range []string{"Ada", "a\r\nb", "=?utf-8?q?x=0D=0A?=", "a%0d%0ab", "a\u2028b", "é", "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !SingleLine(s) {
			return
		}
		if strings.ContainsAny(s, "\r\n\x00\u2028\u2029\u0085") || !utf8.ValidString(s) {
			t.Fatalf("SingleLine accepted %q", s)
		}
		l := strings.ToLower(s)
		if strings.Contains(l, "%0d") || strings.Contains(l, "%0a") || strings.Contains(l, "%00") {
			t.Fatalf("SingleLine accepted percent-encoded break %q", s)
		}
	})
}

func FuzzClientIP(f *testing.F) {
	f.Add("10.0.0.1:1", "203.0.113.1, 10.0.0.2", "")
	f.Add("10.0.0.1:1", "garbage", "1.2.3.4")
	f.Add("192.0.2.1:1", "203.0.113.1", "")
	f.Add("[::1]:1", "2001:db8::1, [2001:db8::2]:80", "")
	x, err := NewIPResolver([]string{"10.0.0.0/8", "::1"})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, remote, xff1, xff2 string) {
		r := httptest.NewRequest(http.MethodPost, "/", nil)
		r.RemoteAddr = remote
		if xff1 != "" {
			r.Header.Add("X-Forwarded-For", xff1)
		}
		if xff2 != "" {
			r.Header.Add("X-Forwarded-For", xff2)
		}
		ip, err := x.ClientIP(r)
		if err != nil {
			return
		}
		if !ip.IsValid() || ip.Is4In6() || ip.Zone() != "" {
			t.Fatalf("ClientIP = %v", ip)
		}
		// An untrusted peer's own address is always the answer.
		if rip, err := parseHop(remote); err == nil && !x.isTrusted(rip) && ip != rip {
			t.Fatalf("untrusted peer %v reported as %v", rip, ip)
		}
	})
}

func FuzzCountLinks(f *testing.F) {
	for _, s := range []string{"see https://www.x.test and WWW.y.test <A href=x>", "evil.example/login, evil.com.",
		"1.2.3.4/x [::1] //host xn--bcher-kva.example", "ｈｔｔｐｓ：／／evil．com", "e.g. i.e. 3.5 end. Next Node.js",
		"mail ada.lovelace@example.org", "J\u030cJ.jj\u030c", "[1] [::] [ffff::1.2.3.4]"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n := countLinks(s)
		if n < 0 || n > len(s) {
			t.Fatalf("countLinks(%q) = %d", s, n)
		}
		up, low := []byte(s), []byte(s)
		for i := range up {
			if 'a' <= up[i] && up[i] <= 'z' {
				up[i] -= 'a' - 'A'
			}
			if 'A' <= low[i] && low[i] <= 'Z' {
				low[i] += 'a' - 'A'
			}
		}
		if u, l := countLinks(string(up)), countLinks(string(low)); u != n || l != n {
			t.Fatalf("countLinks(%q) = %d, upper-case %d, lower-case %d", s, n, u, l)
		}
		// A scheme link after a space always counts, whatever surrounds it.
		if strings.Contains(string(low), " https://a") && n == 0 {
			t.Fatalf("countLinks(%q) = 0", s)
		}
	})
}

func FuzzSharedURL(f *testing.F) {
	for _, s := range []string{"https://example.test/post/1", "https://example.test/p?q=+Unlock+at+https://evil.example/",
		"https://example.test/a%20b", "https://example.test/x/evil.example/login", "https://example.test/%E2%80%AE",
		"https://EXAMPLE.test:443/a%2Fb#frag", "https://user@example.test/", "https://example.test//evil.test", "https:example.test"} {
		f.Add(s)
	}
	g := &Guard{origins: map[string]bool{"https://example.test": true}}
	f.Fuzz(func(t *testing.T, raw string) {
		out, e := g.sharedURL(raw, "url")
		if e != nil {
			return
		}
		u, err := url.Parse(out)
		if err != nil || u.RawQuery != "" || u.Fragment != "" || u.User != nil || strings.ContainsAny(out, "?# \t\r\n@") {
			t.Fatalf("sharedURL(%q) = %q", raw, out)
		}
		if !g.originAllowed(u.Scheme+"://"+u.Host) || !plainPath(u.Path) {
			t.Fatalf("sharedURL(%q) = %q: off the site or not a plain path", raw, out)
		}
		if again, e := g.sharedURL(out, "url"); e != nil || again != out {
			t.Fatalf("sharedURL(%q) = %q, %v; not idempotent", out, again, e)
		}
	})
}
