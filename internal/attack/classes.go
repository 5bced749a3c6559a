package attack

import (
	"bytes"
	"fmt"
	"net/http"
	"slices"
	"strings"

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
	return without([]KV{{"name", "Mallory"}, {"email", visitor(r)}, {"subject", "Hello"}, {"message", "Please read. " + r.Marker}}, exclude)
}

// shareBase is a valid share post's fields for r, recipients aside, minus
// exclude.
func shareBase(r *Request, e *Env, exclude ...string) []KV {
	return without([]KV{{"name", "Mallory"}, {"email", visitor(r)},
		{"url", e.Cfg.Origin() + "/page"}, {"message", "Look. " + r.Marker}, {captcha.PoWField, AltchaPlaceholder}}, exclude)
}

// without returns kvs minus the fields named in exclude.
func without(kvs []KV, exclude []string) []KV {
	return slices.DeleteFunc(kvs, func(kv KV) bool { return slices.Contains(exclude, kv.K) })
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
