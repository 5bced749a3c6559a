package attack

import (
	"fmt"
	"strings"
)

func genSenderSpoof(e *Env) []Batch {
	const victim = "ceo@bank.example"
	var b Batch
	extraFields := []string{"from", "From", "FROM", "sender", "Sender", "reply-to", "reply_to", "replyto", "_replyto",
		"return-path", "return_path", "envelope_from", "mail_from", "mailfrom", "x-sender", "from_email", "fromEmail",
		"email_from", "headers", "header", "h:From", "smtp_from", "_from", "resent-from", "errors-to"}
	for _, f := range extraFields {
		for _, enc := range e.encs() {
			r := e.NewRequest("sender-spoof", ContactForm)
			r.Sender = visitor(r)
			r.Note = fmt.Sprintf("%s %s=%q", enc, f, victim)
			b = append(b, e.Post(r, enc, append(contactBase(r), KV{f, victim})...))
		}
	}
	// The address fields themselves carrying a spoof.
	for _, v := range []struct{ field, value string }{
		{"email", victim}, // allowed: the visitor's address only reaches Reply-To
		{"email", "Boss <" + victim + ">"},
		{"email", victim + ", other@bank.example"},
		{"email", "no-reply@example.test"},
		{"email", "\"no-reply@example.test\" <" + victim + ">"},
		{"email", victim + "@example.test"},
		{"name", victim},
		{"name", "\"CEO\" <" + victim + ">"},
		{"name", "Support Team <no-reply@example.test>"},
		{"name", "=?UTF-8?B?Q0VPIDxjZW9AYmFuay5leGFtcGxlPg==?="},
	} {
		for _, enc := range e.encs() {
			r := e.NewRequest("sender-spoof", ContactForm)
			r.Sender = visitor(r)
			r.Note = fmt.Sprintf("%s %s=%q", enc, v.field, v.value)
			if v.field == "email" {
				r.Sender = v.value
			}
			kvs := contactBase(r, v.field)
			kvs = append(kvs, KV{v.field, v.value})
			b = append(b, e.Post(r, enc, kvs...))
		}
	}
	// JSON shapes encoding/json would never write.
	for _, raw := range []string{
		`{"name":"M","email":"%s","email":"` + victim + `","message":"x %s"}`,
		`{"name":"M","email":["%s","` + victim + `"],"message":"x %s"}`,
		`{"name":"M","email":"%s","message":"x %s","headers":{"From":"` + victim + `"}}`,
		`{"name":"M","email":"%s","message":"x %s","From":"` + victim + `"}`,
		`{"name":"M","email":"%s","message":"x %s","\u0066rom":"` + victim + `"}`,
	} {
		r := e.NewRequest("sender-spoof", ContactForm)
		r.Sender = visitor(r)
		b = append(b, &Attempt{Req: r, ContentType: CTJSON, Body: []byte(fmt.Sprintf(raw, r.Sender, r.Marker)), XFF: e.viaProxy(r)})
	}
	e.Shuffle(b)
	return []Batch{b}
}

// injections are single-line values that try to start a new header.
var injections = []string{
	"x\r\nBcc: injected@spam.test",
	"x\rBcc: injected@spam.test",
	"x\nBcc: injected@spam.test",
	"x\r\n\r\ninjected body",
	"x%0d%0aBcc: injected@spam.test",
	"x%0ABcc: injected@spam.test",
	"x%250d%250aBcc: injected@spam.test",
	"=?UTF-8?Q?x=0D=0ABcc:_injected@spam.test?=",
	"=?UTF-8?B?eA0KQmNjOiBpbmplY3RlZEBzcGFtLnRlc3Q=?=",
	"x\u2028Bcc: injected@spam.test",
	"x\u2029Bcc: injected@spam.test",
	"x\u0085Bcc: injected@spam.test",
	"x\x00Bcc: injected@spam.test",
	"x\x0bBcc: injected@spam.test",
	"x\x0cBcc: injected@spam.test",
	"x\r\n Bcc: injected@spam.test",
	"x\r\n\tX-Injected: yes",
	"x&#13;&#10;Bcc: injected@spam.test",
	"x\\r\\nBcc: injected@spam.test",
}

func genHeaderInjection(e *Env) []Batch {
	var b Batch
	for _, inj := range injections {
		// Contact: name, email, subject.
		for _, field := range []string{"name", "email", "subject"} {
			for _, enc := range e.encs() {
				r := e.NewRequest("header-injection", ContactForm)
				r.Sender = visitor(r)
				r.Note = fmt.Sprintf("%s %s %q", enc, field, inj)
				v := inj
				if field == "email" {
					v = "visitor" + fmt.Sprint(r.ID) + "@visitor.test" + strings.TrimPrefix(inj, "x")
					r.Sender = v
				}
				kvs := append(contactBase(r, field), KV{field, v})
				b = append(b, e.Post(r, enc, kvs...))
			}
		}
		// Share: to, name, email, url.
		for _, field := range []string{"to", "name", "email", "url"} {
			enc := e.encs()[0]
			r := e.NewRequest("header-injection", ShareForm)
			r.Sender = visitor(r)
			r.Note = fmt.Sprintf("%s %s %q", enc, field, inj)
			friend := fmt.Sprintf("friend%d@recipient.test", r.ID)
			kvs := shareBase(r, e, field)
			switch field {
			case "to":
				kvs = append(kvs, KV{"to", friend + strings.TrimPrefix(inj, "x")})
			case "email":
				r.Sender = visitor(r) + strings.TrimPrefix(inj, "x")
				kvs = append(kvs, KV{"to", friend}, KV{"email", r.Sender})
				r.Allowed = []string{friend}
			case "url":
				kvs = append(kvs, KV{"to", friend}, KV{"url", e.Cfg.Origin() + "/p" + strings.TrimPrefix(inj, "x")})
				r.Allowed = []string{friend}
			default:
				kvs = append(kvs, KV{"to", friend}, KV{field, inj})
				r.Allowed = []string{friend}
			}
			b = append(b, e.Post(r, enc, kvs...))
		}
	}
	// Raw header injection at the HTTP level: a request whose own header
	// value carries an encoded line break must not reach mail.
	e.Shuffle(b)
	return []Batch{b}
}
