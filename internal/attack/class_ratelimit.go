package attack

import (
	"fmt"
)

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
