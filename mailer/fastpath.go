package mailer

import (
	"bytes"
	"slices"
)

// The built-in contact template, rendered without text/template and
// html/template: on the request path the reflection-driven template engine
// was the largest single cost of Deliver after the disk. The output is
// byte-for-byte what the templates produce (TestBuiltinFastPathMatches
// and FuzzBuiltinFastPath compare them), and each part is used only while
// DefaultContactTemplate still holds the original template for it, so a
// program that replaces a part gets its own template.
var builtinContact = DefaultContactTemplate

// fastSubject, fastText and fastHTML render the built-in contact parts
// into b; they report false when t's part is not the built-in one.
func fastSubject(t Template, d *TemplateData, b *bytes.Buffer) bool {
	if t.Subject != builtinContact.Subject {
		return false
	}
	b.WriteString("[")
	b.WriteString(d.Site)
	b.WriteString("] ")
	switch {
	case d.Subject != "":
		b.WriteString(d.Subject)
	case d.Name != "":
		b.WriteString("Message from ")
		b.WriteString(d.Name)
	default:
		b.WriteString("Message from a visitor")
	}
	return true
}

func fastText(t Template, d *TemplateData, b *bytes.Buffer) bool {
	if t.Text != builtinContact.Text {
		return false
	}
	b.WriteString("New message from the ")
	b.WriteString(d.Form)
	b.WriteString(" form on ")
	b.WriteString(d.Site)
	b.WriteString(".\n\nName:    ")
	b.WriteString(or(d.Name, "(not given)"))
	b.WriteString("\nEmail:   ")
	if d.Email != "" {
		b.WriteString(d.Email)
		b.WriteString(" (reply to this message to answer)")
	} else {
		b.WriteString("(not given)")
	}
	if d.Subject != "" {
		b.WriteString("\nSubject: ")
		b.WriteString(d.Subject)
	}
	for _, k := range sortedKeys(d.Fields) {
		b.WriteString("\n")
		b.WriteString(k)
		b.WriteString(": ")
		b.WriteString(d.Fields[k])
	}
	b.WriteString("\n\n")
	b.WriteString(d.Message)
	b.WriteString("\n\n-- \nSubmission ")
	b.WriteString(d.ID)
	b.WriteString(", received ")
	b.WriteString(d.Received.UTC().Format("2006-01-02 15:04:05 MST"))
	b.WriteString(".\n")
	return true
}

func fastHTML(t Template, d *TemplateData, b *bytes.Buffer) bool {
	if t.HTML != builtinContact.HTML {
		return false
	}
	b.WriteString("<!doctype html><html><body>\n<p>New message from the <b>")
	escapeHTML(b, d.Form)
	b.WriteString("</b> form on ")
	escapeHTML(b, d.Site)
	b.WriteString(".</p>\n<table>\n<tr><td>Name</td><td>")
	escapeHTML(b, or(d.Name, "(not given)"))
	b.WriteString("</td></tr>\n<tr><td>Email</td><td>")
	escapeHTML(b, or(d.Email, "(not given)"))
	b.WriteString("</td></tr>")
	if d.Subject != "" {
		b.WriteString("<tr><td>Subject</td><td>")
		escapeHTML(b, d.Subject)
		b.WriteString("</td></tr>")
	}
	for _, k := range sortedKeys(d.Fields) {
		b.WriteString("<tr><td>")
		escapeHTML(b, k)
		b.WriteString("</td><td>")
		escapeHTML(b, d.Fields[k])
		b.WriteString("</td></tr>")
	}
	b.WriteString("\n</table>\n<pre style=\"white-space:pre-wrap\">")
	escapeHTML(b, d.Message)
	b.WriteString("</pre>\n<p><small>Submission ")
	escapeHTML(b, d.ID)
	b.WriteString("</small></p>\n</body></html>\n")
	return true
}

// escapeHTML writes s escaped as html/template escapes a string in HTML
// text: NUL, quotes, &, +, < and >. They are all ASCII, and no byte of a
// multi-byte UTF-8 sequence is, so replacing bytes equals html/template's
// rune-wise replacement, invalid UTF-8 included (passed through).
func escapeHTML(b *bytes.Buffer, s string) {
	last := 0
	for i := 0; i < len(s); i++ {
		var r string
		switch s[i] {
		case 0:
			r = "\uFFFD"
		case '"':
			r = "&#34;"
		case '&':
			r = "&amp;"
		case '\'':
			r = "&#39;"
		case '+':
			r = "&#43;"
		case '<':
			r = "&lt;"
		case '>':
			r = "&gt;"
		default:
			continue
		}
		b.WriteString(s[last:i])
		b.WriteString(r)
		last = i + 1
	}
	b.WriteString(s[last:])
}

func sortedKeys(m map[string]string) []string {
	if len(m) == 0 {
		return nil
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
