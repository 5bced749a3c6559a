package attack

import "fmt"

// genRateLimit tries to get past the per-client, per-sender and
// per-recipient caps by varying what the limiter keys on; every batch is
// one client's (or one key's) burst of n posts.
func genRateLimit(e *Env) []Batch {
	n := scale(e.Opt, 12, 30)
	return []Batch{
		e.rateRotatingXFF(n),
		e.rateIPv6Net(n),
		e.rateForgedHops(n),
		e.rateRotatingReplyTo(n),
		e.rateOneReplyTo(n),
		e.rateRotatingRecipients(n),
		e.rateOneRecipient(n),
		e.rateMalformedHops(),
	}
}

// rateContact is a contact post of the rate-limit class from a visitor of
// its own.
func (e *Env) rateContact(enc Enc) *Attempt {
	r := e.NewRequest("rate-limit", ContactForm)
	r.Sender = visitor(r)
	return e.Post(r, enc, contactBase(r)...)
}

// rateRotatingXFF: an untrusted peer rotating X-Forwarded-For is still
// one client.
func (e *Env) rateRotatingXFF(n int) Batch {
	var b Batch
	peer := e.FreshPeer()
	for i := 0; i < n; i++ {
		a := e.rateContact(EncForm)
		a.Peer, a.XFF, a.Req.Client = peer, []string{e.FreshIPv4()}, peer
		b = append(b, a)
	}
	return b
}

// rateIPv6Net: rotating addresses inside one IPv6 /64 through the proxy.
func (e *Env) rateIPv6Net(n int) Batch {
	var b Batch
	prefix, addr := e.FreshIPv6Net()
	for i := 0; i < n; i++ {
		a := e.rateContact(EncForm)
		a.XFF, a.Req.Client = []string{addr(uint16(i + 1))}, prefix
		b = append(b, a)
	}
	return b
}

// rateForgedHops: forged leftmost hops through the proxy; the client is
// the rightmost untrusted hop whatever is written before it.
func (e *Env) rateForgedHops(n int) Batch {
	var b Batch
	ip := e.FreshIPv4()
	for i := 0; i < n; i++ {
		a := e.rateContact(EncForm)
		a.XFF, a.Req.Client = []string{e.FreshIPv4() + ", " + e.FreshIPv4(), ip}, ip
		if i%2 == 0 {
			a.XFF = []string{e.FreshIPv4() + "," + ip}
		}
		b = append(b, a)
	}
	return b
}

// rateRotatingReplyTo: a fresh Reply-To on every post from one client.
func (e *Env) rateRotatingReplyTo(n int) Batch {
	var b Batch
	ip := e.FreshIPv4()
	for i := 0; i < n; i++ {
		a := e.rateContact(EncJSON)
		a.XFF, a.Req.Client = []string{ip}, ip
		b = append(b, a)
	}
	return b
}

// rateOneReplyTo: one Reply-To from rotating clients.
func (e *Env) rateOneReplyTo(n int) Batch {
	var b Batch
	for i := 0; i < n; i++ {
		r := e.NewRequest("rate-limit", ContactForm)
		r.Sender = fmt.Sprintf("same%d@visitor.test", e.Opt.Seed)
		kvs := append(contactBase(r, "email"), KV{"email", r.Sender})
		b = append(b, e.Post(r, EncForm, kvs...))
	}
	return b
}

// rateRotatingRecipients: a fresh share recipient on every post from one
// client.
func (e *Env) rateRotatingRecipients(n int) Batch {
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
	return b
}

// rateOneRecipient: one share recipient from rotating clients and
// senders.
func (e *Env) rateOneRecipient(n int) Batch {
	var b Batch
	target := fmt.Sprintf("target%d@recipient.test", e.Opt.Seed)
	for i := 0; i < n; i++ {
		r := e.NewRequest("rate-limit", ShareForm)
		r.Sender = visitor(r)
		r.Allowed = []string{target}
		b = append(b, e.Post(r, EncForm, append(shareBase(r, e), KV{"to", target})...))
	}
	return b
}

// rateMalformedHops: malformed forwarding hops from the trusted proxy
// fail closed.
func (e *Env) rateMalformedHops() Batch {
	var b Batch
	for _, hop := range []string{"not-an-ip", "198.18.0.1:80:90", "unknown", "", "::ffff:zz", "198.18.0.1, garbage"} {
		a := e.rateContact(EncForm)
		a.XFF = []string{hop}
		a.Req.Client = "malformed:" + hop
		if hop == "" {
			a.XFF = nil
			a.Req.Client = "127.0.0.1"
		}
		b = append(b, a)
	}
	return b
}
