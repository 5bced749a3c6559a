package guard

import (
	"net/netip"
	"strings"
	"testing"
)

func TestLimitAddress(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"a plain address is unchanged", "ada@example.org", "ada@example.org"},
		{"case is folded in both parts", "Ada.Lovelace@Example.ORG", "ada.lovelace@example.org"},
		{"a subaddress is dropped", "ada+news@example.org", "ada@example.org"},
		{"only the first plus counts", "ada+a+b@example.org", "ada@example.org"},
		{"a leading plus is the local part, not a tag", "+ada@example.org", "+ada@example.org"},
		{"a tag after a leading plus is dropped", "+ada+x@example.org", "+ada@example.org"},
		{"a trailing dot on the domain is dropped", "ada@example.org.", "ada@example.org"},
		{"an IDN domain becomes punycode", "ada@Bücher.example", "ada@xn--bcher-kva.example"},
		{"a punycode domain is kept", "ada@xn--bcher-kva.example", "ada@xn--bcher-kva.example"},
		{"dots elsewhere are kept", "a.da@example.org", "a.da@example.org"},
		{"Gmail ignores dots", "v.ic.tim@gmail.com", "victim@gmail.com"},
		{"googlemail.com is gmail.com", "VICTIM@googlemail.com", "victim@gmail.com"},
		{"Gmail with every variant at once", "V.ictim+1@GMail.Com.", "victim@gmail.com"},
		{"a Gmail subdomain is not Gmail", "v.ictim@mail.gmail.com", "v.ictim@mail.gmail.com"},
		{"the last @ splits", `a@b@Example.org`, "a@b@example.org"},
		{"no @ is folded whole", "NoAt", "noat"},
		{"empty stays empty", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := limitAddress(tt.in); got != tt.want {
				t.Fatalf("limitAddress(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

// FuzzLimitAddress: limitAddress is total and idempotent, ignores ASCII
// case, and ignores a subaddress added to any valid address.
func FuzzLimitAddress(f *testing.F) {
	for _, s := range []string{"ada@example.org", "V.ictim+1@GMail.Com.", "ada@Bücher.example", "+a@b", ".+x@gmail.com",
		"a@ｘ＠y.com", "a@b..", "@", "a@İ.example", "x@googlemail.com"} {
		f.Add(s, "tag")
	}
	f.Fuzz(func(t *testing.T, s, tag string) {
		k := limitAddress(s)
		if again := limitAddress(k); again != k {
			t.Fatalf("limitAddress(%q) = %q, but limitAddress(%q) = %q", s, k, k, again)
		}
		if up := limitAddress(asciiUpper(s)); up != k {
			t.Fatalf("limitAddress(%q) = %q, but the upper-cased %q gives %q", s, k, asciiUpper(s), up)
		}
		a, err := ParseAddress(s)
		if err != nil || strings.Contains(tag, "@") {
			return
		}
		at := strings.LastIndexByte(a, '@')
		tagged := a[:at] + "+" + tag + a[at:]
		if got, want := limitAddress(tagged), limitAddress(a); got != want {
			t.Fatalf("limitAddress(%q) = %q, want %q as for %q", tagged, got, want, a)
		}
	})
}

func asciiUpper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'a' <= c && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}

func TestNetworkOf(t *testing.T) {
	tests := []struct{ in, want string }{
		{"192.0.2.77", "192.0.2.0/24"},
		{"::ffff:192.0.2.77", "192.0.2.0/24"},
		{"2001:db8:1:2:3:4:5:6", "2001:db8:1::/48"},
	}
	for _, tt := range tests {
		if got := networkOf(netip.MustParseAddr(tt.in)); got.String() != tt.want {
			t.Errorf("networkOf(%s) = %s, want %s", tt.in, got, tt.want)
		}
	}
}
