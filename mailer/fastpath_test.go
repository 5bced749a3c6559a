package mailer

import (
	"bytes"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// renderBoth renders the built-in contact template's three parts with the
// templates and with the fast path.
func renderBoth(t *testing.T, d *TemplateData) (tpl, fast [3]string) {
	t.Helper()
	var b [3]bytes.Buffer
	if err := DefaultContactTemplate.Subject.Execute(&b[0], d); err != nil {
		t.Fatal(err)
	}
	if err := DefaultContactTemplate.Text.Execute(&b[1], d); err != nil {
		t.Fatal(err)
	}
	if err := DefaultContactTemplate.HTML.Execute(&b[2], d); err != nil {
		t.Fatal(err)
	}
	var f [3]bytes.Buffer
	if !fastSubject(DefaultContactTemplate, d, &f[0]) || !fastText(DefaultContactTemplate, d, &f[1]) ||
		!fastHTML(DefaultContactTemplate, d, &f[2]) {
		t.Fatal("fast path not taken for the built-in template")
	}
	for i := range 3 {
		tpl[i], fast[i] = b[i].String(), f[i].String()
	}
	return tpl, fast
}

func TestBuiltinFastPathMatches(t *testing.T) {
	hostile := "<script>alert('x')</script> & \"q\" + a\x00b \xff\xfe é 李 \u2028 {{.ID}}"
	for name, d := range map[string]*TemplateData{
		"everything": {Site: "Example", Domain: "example.test", Form: "contact", Kind: "contact", ID: "sub-1",
			Name: "Ada", Email: "ada@x.example", Subject: "Hello", Message: "Hi.\nTwo lines.",
			Fields: map[string]string{"phone": "+1 555", "company": "A&B"}, Received: t0},
		"nothing optional": {Site: "S", Form: "f", ID: "i", Message: "m", Received: time.Time{}},
		"hostile":          {Site: hostile, Form: hostile, ID: hostile, Name: hostile, Email: hostile, Subject: hostile, Message: hostile, Fields: map[string]string{hostile: hostile, "": ""}, Received: t0.Add(time.Hour)},
		"name, no subject": {Site: "S", Form: "f", ID: "i", Name: "Zoë", Received: t0.In(time.FixedZone("X", 3600))},
	} {
		t.Run(name, func(t *testing.T) {
			tpl, fast := renderBoth(t, d)
			for i, part := range []string{"subject", "text", "html"} {
				if tpl[i] != fast[i] {
					t.Errorf("%s differs:\ntemplate: %q\nfast:     %q", part, tpl[i], fast[i])
				}
			}
		})
	}
}

// A part replaced in DefaultContactTemplate (or a custom template) is
// rendered by its own template, never by the fast path.
func TestBuiltinFastPathOnlyForBuiltinParts(t *testing.T) {
	custom := DefaultContactTemplate
	custom.Text = DefaultShareTemplate.Text
	var b bytes.Buffer
	if fastText(custom, &TemplateData{}, &b) || b.Len() != 0 {
		t.Fatal("fast path used for a replaced text part")
	}
	if fastHTML(DefaultShareTemplate, &TemplateData{}, &b) || fastSubject(DefaultShareTemplate, &TemplateData{}, &b) {
		t.Fatal("fast path used for the share template")
	}
}

func FuzzBuiltinFastPath(f *testing.F) {
	f.Add("Ada", "ada@x.example", "Hello", "Hi <b>there</b>", "k", "v+'\"&")
	f.Add("", "", "", "", "", "")
	f.Add("\x00", "\xff", "+", "a\r\nb", "<", ">")
	f.Fuzz(func(t *testing.T, name, email, subject, message, k, v string) {
		d := &TemplateData{Site: "Example", Form: "contact", ID: "sub-1", Name: name, Email: email,
			Subject: subject, Message: message, Received: t0}
		if k != "" || v != "" {
			d.Fields = map[string]string{k: v, strings.ToUpper(k) + "2": v}
		}
		tpl, fast := renderBoth(t, d)
		for i := range 3 {
			if tpl[i] != fast[i] {
				t.Fatalf("part %d differs (valid UTF-8: %v):\ntemplate: %q\nfast:     %q", i, utf8.ValidString(message), tpl[i], fast[i])
			}
		}
	})
}
