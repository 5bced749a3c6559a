package mailer

import (
	"net/mail"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

func TestDisplayName(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"plain name", "Ada Lovelace", "Ada Lovelace via Example"},
		{"empty falls back to the site", "", "Example"},
		{"only punctuation falls back", `"<@>"`, "Example"},
		{"address-looking name is defused", "ceo@bank.example", "ceobank.example via Example"},
		{"quotes and brackets dropped", `Eve "the boss" <e@x>`, "Eve the boss ex via Example"},
		{"controls and line breaks become spaces", "Eve\r\nBcc: v@x\t\u2028z", "Eve Bcc vx z via Example"},
		{"long names capped", strings.Repeat("é", 100), strings.Repeat("é", MaxDisplayNameRunes) + " via Example"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := displayName(tc.in, "Example"); got != tc.want {
				t.Fatalf("displayName(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func FuzzDisplayName(f *testing.F) {
	for _, s := range []string{"Ada", "a@b.c", "\"x\" <y@z>", "=?utf-8?q?x?=", "\x00\r\n", "\u202e evil"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got := displayName(in, "Example")
		if !utf8.ValidString(got) || strings.ContainsAny(got, "@<>\",;:\\") {
			t.Fatalf("unsafe display name %q", got)
		}
		for _, r := range got {
			if unicode.IsControl(r) || unicode.In(r, unicode.Cf) {
				t.Fatalf("control or format character in %q", got)
			}
		}
		if !strings.HasSuffix(got, "Example") {
			t.Fatalf("site missing from %q", got)
		}
		// It survives as the display name of a single address.
		a := &mail.Address{Name: got, Address: "no-reply@example.test"}
		back, err := mail.ParseAddress(a.String())
		if err != nil || back.Name != got || back.Address != a.Address {
			t.Fatalf("round trip %q: %v %+v", got, err, back)
		}
	})
}
