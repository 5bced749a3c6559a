package attack

import (
	"fmt"
	"strings"
)

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
