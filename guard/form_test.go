package guard_test

import (
	"errors"
	"github.com/formguard/formguard/post"
	"testing"

	"github.com/formguard/formguard/guard"
)

// TestFormErrorNamesTheSetting: New reports a form setting it refuses as a
// *guard.FormError whose Key is the setting's path in guard.Form.
func TestFormErrorNamesTheSetting(t *testing.T) {
	for _, tc := range []struct {
		name string
		form guard.Form
		key  string
	}{
		{"a contact form without recipients", guard.Form{}, "To"},
		{"a bad recipient", guard.Form{To: []string{"a@b.test", "A <a@b.test>"}}, "To[1]"},
		{"a bad choice address", guard.Form{Choices: map[string][]string{"sales": {"nope"}}}, "Choices.sales[0]"},
		{"a choice name that is no field value", guard.Form{Choices: map[string][]string{"a b": {"a@b.test"}}}, "Choices.a b"},
		{"too many share recipients", guard.Form{Kind: post.Share, MaxRecipients: guard.MaxShareRecipients + 1, AllowNoBotDefence: true}, "MaxRecipients"},
		{"negative share recipients", guard.Form{Kind: post.Share, MaxRecipients: -1, AllowNoBotDefence: true}, "MaxRecipients"},
		{"a name cap over the bound", guard.Form{To: []string{"a@b.test"}, MaxName: guard.MaxFieldRunes + 1}, "MaxName"},
		{"a body cap over the bound", guard.Form{To: []string{"a@b.test"}, MaxBody: guard.MaxBodyLimit + 1}, "MaxBody"},
		{"two fields with one name", guard.Form{To: []string{"a@b.test"}, Fields: guard.FieldNames{Name: "email"}}, "Fields.Email"},
		{"a reserved field name", guard.Form{To: []string{"a@b.test"}, ExtraFields: []string{"phone", "_gotcha"}}, "ExtraFields[1]"},
		{"share field names on a contact form", guard.Form{To: []string{"a@b.test"}, Fields: guard.FieldNames{To: "friends"}}, "Fields"},
		{"a bad deny domain", guard.Form{Kind: post.Share, AllowNoBotDefence: true, DenyRecipientDomains: []string{"ok.test", "-bad-"}}, "DenyRecipientDomains[1]"},
		{"an off-site error page", guard.Form{To: []string{"a@b.test"}, ErrorURL: "https://evil.test/"}, "ErrorURL"},
		{"an unknown kind", guard.Form{Kind: post.Kind(7), To: []string{"a@b.test"}}, "Kind"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := testConfig(&clock{t0})
			c.Forms = map[string]guard.Form{"f": tc.form}
			g, err := guard.New(c)
			if err == nil {
				g.Close()
				t.Fatal("accepted")
			}
			var fe *guard.FormError
			if !errors.As(err, &fe) || fe.Form != "f" || fe.Key != tc.key {
				t.Fatalf("error %v (%#v), want a FormError for f at %s", err, fe, tc.key)
			}
		})
	}
}

// TestWithDefaults: the zero values of a form become the values the guard
// enforces, by kind.
func TestWithDefaults(t *testing.T) {
	c := guard.Form{Choices: map[string][]string{"x": {"a@b.test"}}}.WithDefaults()
	s := guard.Form{Kind: post.Share, MaxLinks: -1}.WithDefaults()
	for _, tc := range []struct {
		name      string
		got, want any
	}{
		{"contact requires an email", c.RequireEmail, true},
		{"contact links", c.MaxLinks, guard.DefaultContactLinks},
		{"contact message", c.MaxMessage, guard.DefaultMaxMessage},
		{"contact choice field", c.ChoiceField, guard.DefaultChoiceField},
		{"contact has no share fields", c.Fields.To + c.Fields.URL, ""},
		{"name", c.MaxName, guard.DefaultMaxName},
		{"body", c.MaxBody, int64(guard.DefaultMaxBody)},
		{"per ip", c.Limits.PerIP, guard.DefaultPerIP},
		{"share email optional", s.RequireEmail, false},
		{"share recipients", s.MaxRecipients, guard.DefaultMaxRecipients},
		{"share message", s.MaxMessage, guard.DefaultMaxShareMessage},
		{"share keeps no links as set", s.MaxLinks, -1},
		{"share field names", s.Fields.To + " " + s.Fields.URL, "to url"},
		{"share has no choice field", s.ChoiceField, ""},
	} {
		if tc.got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, tc.got, tc.want)
		}
	}
}

// TestNormaliseOrigin: one normal form per origin, the scheme's default
// port dropped, so the service and the guard agree on what is allowed.
func TestNormaliseOrigin(t *testing.T) {
	for in, want := range map[string]string{
		"https://Example.TEST:443":   "https://example.test",
		"http://example.test:80/":    "http://example.test",
		"https://example.test:8443":  "https://example.test:8443",
		"http://127.0.0.1:443":       "http://127.0.0.1:443",
		"https://example.test/path":  "",
		"example.test":               "",
		"https://example.test:70000": "",
		"https://user@example.test":  "",
	} {
		got, err := guard.NormaliseOrigin(in)
		if want == "" {
			if err == nil {
				t.Errorf("NormaliseOrigin(%q) = %q, want an error", in, got)
			}
			continue
		}
		if err != nil || got != want {
			t.Errorf("NormaliseOrigin(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}
