package attack

import (
	"fmt"
	"strings"
)

// victims are n addresses no post may legitimately reach.
func victims(r *Request, n int) []string {
	var v []string
	for i := 0; i < n; i++ {
		v = append(v, fmt.Sprintf("victim%d.%d@spam.test", r.ID, i))
	}
	return v
}

// stuffing collects the recipient-stuffing attempts.
type stuffing struct {
	e *Env
	b Batch
}

// share adds a share post per encoding with the fields kvs returns; allowed
// (nil: none) are the recipients the post may legitimately reach.
func (s *stuffing) share(kvs func(r *Request) []KV, encs []Enc, allowed func(r *Request) []string) {
	for _, enc := range encs {
		r := s.e.NewRequest("recipient-stuffing", ShareForm)
		r.Sender = visitor(r)
		if allowed != nil {
			r.Allowed = allowed(r)
		}
		s.b = append(s.b, s.e.Post(r, enc, append(shareBase(r, s.e), kvs(r)...)...))
	}
}

func genRecipientStuffing(e *Env) []Batch {
	s := &stuffing{e: e}
	s.overCap()
	s.addressTricks()
	s.lookAlikes()
	s.jsonShapes()
	// Contact forms take no recipients at all, whatever the key.
	for _, f := range []string{"to", "To", "recipient", "recipients", "cc", "bcc", "Bcc", "department", "to[]", "_to"} {
		for _, enc := range e.encs() {
			r := e.NewRequest("recipient-stuffing", ContactForm)
			r.Sender = visitor(r)
			s.b = append(s.b, e.Post(r, enc, append(contactBase(r), KV{f, "victim@spam.test"})...))
		}
	}
	e.Shuffle(s.b)
	return []Batch{s.b}
}

// overCap lists more recipients than the cap, every way of listing them.
func (s *stuffing) overCap() {
	for _, n := range []int{ShareMax + 1, 10, 50} {
		s.share(func(r *Request) []KV {
			var kvs []KV
			for _, v := range victims(r, n) {
				kvs = append(kvs, KV{"to", v})
			}
			return kvs
		}, []Enc{EncForm, EncMultipart}, nil)
		for _, sep := range []string{",", ", ", ";", "; ", "\n", "\r\n", " ", "\t", "|"} {
			s.share(func(r *Request) []KV { return []KV{{"to", strings.Join(victims(r, n), sep)}} }, s.e.encs(), nil)
		}
	}
}

// addressTricks are separators that are not list separators (within the
// cap), and address syntax that smuggles extra recipients.
func (s *stuffing) addressTricks() {
	for _, sep := range []string{";", "\n", "\r\n", "\r", "\x00", "%0a", "%2C", "\u2028", "\u0085"} {
		s.share(func(r *Request) []KV { return []KV{{"to", strings.Join(victims(r, 2), sep)}} }, s.e.encs(), nil)
	}
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
		s.share(func(r *Request) []KV { return []KV{{"to", f(r)}} }, s.e.encs(), nil)
	}
}

// lookAlikes are IDN addresses: the site's own address next to its
// look-alike (Cyrillic а) within the cap, so a share form may mail both
// but only those; look-alikes over the cap (refused); one honest IDN
// within it (may be delivered, in Unicode or punycode form).
func (s *stuffing) lookAlikes() {
	s.share(func(r *Request) []KV { return []KV{{"to", ContactTo + ", support@exаmple.test"}} }, s.e.encs(),
		func(r *Request) []string {
			return []string{ContactTo, "support@exаmple.test", "support@xn--exmple-4nf.test"}
		})
	s.share(func(r *Request) []KV {
		return []KV{{"to", strings.Join([]string{"a@exаmple.test", "b@exаmple.test", "c@exаmple.test", "d@exаmple.test"}, ",")}}
	}, s.e.encs(), nil)
	s.share(func(r *Request) []KV { return []KV{{"to", fmt.Sprintf("freund%d@bücher.test", r.ID)}} }, s.e.encs(),
		func(r *Request) []string {
			return []string{fmt.Sprintf("freund%d@bücher.test", r.ID), fmt.Sprintf("freund%d@xn--bcher-kva.test", r.ID)}
		})
}

// jsonShapes are JSON arrays, objects and duplicate keys for "to".
func (s *stuffing) jsonShapes() {
	for _, shape := range []string{
		`"to":[%s]`,
		`"to":"%s","to":"%s","to":"%s","to":"%s"`,
		`"to":[%s],"to":"x@spam.test"`,
		`"to":{"a":"%s"}`,
		`"to":[[%s]]`,
		`"to":null,"to":"%s"`,
	} {
		r := s.e.NewRequest("recipient-stuffing", ShareForm)
		r.Sender = visitor(r)
		body := fmt.Sprintf(`{"name":"M","email":%q,"url":%q,"message":%q,"altcha":%q,%s}`,
			r.Sender, s.e.Cfg.Origin()+"/p", "x "+r.Marker, AltchaPlaceholder, jsonTo(shape, victims(r, ShareMax+1)))
		s.b = append(s.b, &Attempt{Req: r, ContentType: CTJSON, Body: []byte(body), XFF: s.e.viaProxy(r), PoW: ShareForm})
	}
}

// jsonTo fills shape's %s with the victims vs: one %s takes them all as
// quoted JSON strings (or the first bare, after a null), four take one
// each.
func jsonTo(shape string, vs []string) string {
	if strings.Count(shape, "%s") != 1 {
		args := make([]any, 4)
		for i := range args {
			args[i] = vs[i]
		}
		return fmt.Sprintf(shape, args...)
	}
	if strings.HasPrefix(shape, `"to":null`) {
		return fmt.Sprintf(shape, vs[0])
	}
	q := make([]string, len(vs))
	for i, v := range vs {
		q[i] = `"` + v + `"`
	}
	return fmt.Sprintf(shape, strings.Join(q, ","))
}
