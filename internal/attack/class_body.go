package attack

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
)

// markups are visitor texts that must arrive escaped in HTML mail.
var markups = []string{
	"<script>alert(1)</script>",
	"<img src=x onerror=alert(1)>",
	"</pre><script>alert(2)</script>",
	"</blockquote><iframe src=\"https://evil.example/\"></iframe>",
	"<a href=\"javascript:alert(3)\">click</a>",
	"<svg onload=alert(4)>",
	"<style>body{display:none}</style>",
	"\"><script>alert(5)</script>",
	"<b onmouseover=alert(6)>hover</b>",
	"<!--<script>alert(7)</script>-->",
	"<form action=https://evil.example/><input name=pw></form>",
	"<meta http-equiv=refresh content=\"0;url=https://evil.example/\">",
}

func genMarkup(e *Env) []Batch {
	var b Batch
	for _, m := range markups {
		for _, field := range []string{"message", "name", "subject"} {
			enc := e.encs()[0]
			r := e.NewRequest("markup-body", ContactForm)
			r.Sender = visitor(r)
			r.Markup = []string{m}
			kvs := contactBase(r, field)
			v := m
			if field == "message" {
				v = m + " " + r.Marker
			}
			b = append(b, e.Post(r, enc, append(kvs, KV{field, v})...))
		}
		// The share note and name.
		for _, field := range []string{"message", "name"} {
			enc := e.encs()[0]
			r := e.NewRequest("markup-body", ShareForm)
			r.Sender = visitor(r)
			r.Markup = []string{m}
			friend := fmt.Sprintf("friend%d@recipient.test", r.ID)
			r.Allowed = []string{friend}
			v := m
			if field == "message" {
				v = m + " " + r.Marker
			}
			kvs := append(shareBase(r, e, field), KV{"to", friend}, KV{field, v})
			b = append(b, e.Post(r, enc, kvs...))
		}
	}
	// Link stuffing.
	for _, n := range []int{4, 20, 200} {
		r := e.NewRequest("markup-body", ContactForm)
		r.Sender = visitor(r)
		var sb strings.Builder
		for i := 0; i < n; i++ {
			fmt.Fprintf(&sb, "https://pills%d.spam.test/buy ", i)
		}
		b = append(b, e.Post(r, e.encs()[0], append(contactBase(r, "message"), KV{"message", sb.String() + r.Marker})...))
	}
	for _, note := range []string{"see https://spam.test/x", "www.spam.test", "spam.test/buy", "hxxps://spam[.]test", "<a href=https://spam.test>x</a>"} {
		r := e.NewRequest("markup-body", ShareForm)
		r.Sender = visitor(r)
		friend := fmt.Sprintf("friend%d@recipient.test", r.ID)
		r.Allowed = []string{friend}
		r.Markup = []string{"<a href=https://spam.test>"}
		b = append(b, e.Post(r, e.encs()[0], append(shareBase(r, e, "message"), KV{"to", friend}, KV{"message", note + " " + r.Marker})...))
	}
	e.Shuffle(b)
	return []Batch{b}
}

func genHoneypot(e *Env) []Batch {
	var b Batch
	// Whitespace-only is not a hit: the guard trims the honeypot, as some
	// browsers' autofill leaves a space; such a post is judged as usual.
	for _, v := range []string{"http://spam.test", "x", " ", "1", "\u00a0x"} {
		hit := strings.TrimSpace(v) != ""
		for _, enc := range e.encs() {
			r := e.NewRequest("honeypot", ContactForm)
			r.Sender = visitor(r)
			r.Honeypot = hit
			a := e.Post(r, enc, append(contactBase(r), KV{"_gotcha", v})...)
			if hit {
				a.Check = honeypotCheck
			}
			b = append(b, a)
		}
		r := e.NewRequest("honeypot", ShareForm)
		r.Sender = visitor(r)
		r.Honeypot = hit
		friend := fmt.Sprintf("friend%d@recipient.test", r.ID)
		if !hit {
			r.Allowed = []string{friend}
		}
		a := e.Post(r, e.encs()[0], append(shareBase(r, e), KV{"to", friend}, KV{"_gotcha", v})...)
		if hit {
			a.Check = honeypotCheck
		}
		b = append(b, a)
	}
	e.Shuffle(b)
	return []Batch{b}
}

// honeypotCheck fails a honeypot hit answered differently from success:
// bots must learn nothing.
func honeypotCheck(status int, _ http.Header, body []byte) (string, string) {
	if status != http.StatusOK || !bytes.Contains(body, []byte(`"ok":true`)) {
		return "honeypot_revealed", fmt.Sprintf("honeypot hit answered %d %.100q, not as success", status, body)
	}
	return "", ""
}
