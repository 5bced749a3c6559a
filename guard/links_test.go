package guard

import (
	"strings"
	"testing"
)

func TestCountLinks(t *testing.T) {
	tests := []struct {
		text string
		want int
	}{
		{"Hello, are you open on Sundays? Thanks.", 0},
		{"plain words e.g. this, i.e. that, U.S. a.m. p.m. etc.", 0},
		{"version 3.5 or 1.2.3 costs 4.50; end. Next sentence.", 0},
		{"I use Node.js and ASP-style index.html pages, main.go and config.yaml", 0},
		{"the list [1] and [sic] and [a:b]", 0},
		{"and/or 50/50 fgref0000001z", 0},
		{"http://a.test", 1},
		{"HTTPS://WWW.A.TEST/path?q=1", 1},
		{"https://www.x.test and WWW.y.test <A href=x>", 3},
		{"<a href=\"https://evil.example/\">click</a>", 1},
		{"mailto:a@b.test", 1},
		{"ftp://files.test/x", 1},
		{"www.evil", 1},
		{"evil.example/login", 1},
		{"visit evil.com.", 1},
		{"Evil.COM", 1},
		{"evil.co.uk/x and shop.xn--p1ai", 2},
		{"xn--bcher-kva.example", 1},
		{"1.2.3.4/x", 1},
		{"http://1.2.3.4/x", 1},
		{"999.1.1.1 is not an address", 0},
		{"[::1] and [2001:db8::1]:8080/x", 2},
		{"//evil.test/x", 1},
		{"ｈｔｔｐｓ：／／evil．com", 1},
		{"ｅｖｉｌ．ｃｏｍ", 1},
		{"evil。com and evil｡net", 2},
		{"write to ada.lovelace@example.org", 1},
		{"https://a.test,https://b.test", 2},
		{"https://a.test/https://b.test", 1},
		{"hxxps://spam[.]test", 1}, // "//spam": any scheme-relative host counts
		{"spam.test/buy", 1},
		{"<a\thref=x>y</a> <a/href=z>", 2},
		{"http://a.test https://b.test www.c.test https://www.d.test", 4},
	}
	for _, tt := range tests {
		if got := countLinks(tt.text); got != tt.want {
			t.Errorf("countLinks(%q) = %d, want %d", tt.text, got, tt.want)
		}
	}
}

func TestCountLinksAllocations(t *testing.T) {
	text := strings.Repeat("Hello, are you open on Sundays (e.g. 3.5 p.m.)? See https://example.test/x. ", 60)
	if n := testing.AllocsPerRun(20, func() { countLinks(text) }); n != 0 {
		t.Errorf("ASCII text without bare domains: %v allocations", n)
	}
}

func BenchmarkCountLinks(b *testing.B) {
	for _, bc := range []struct{ name, text string }{
		{"prose", strings.Repeat("Hello, are you open on Sundays? Thanks, Ada. ", 110)},
		{"dotted", strings.Repeat("a.bc ", 1000)},
		{"fullwidth", strings.Repeat("ｈｔｔｐｓ：／／evil．com ", 300)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(bc.text)))
			for i := 0; i < b.N; i++ {
				countLinks(bc.text)
			}
		})
	}
}
