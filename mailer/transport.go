package mailer

import "context"

// Envelope is the SMTP envelope (RFC 5321 3.3): the return path given in
// MAIL FROM and the recipients given in RCPT TO. It is not part of the
// message; header From and To are.
type Envelope struct {
	From string   // bare addr-spec, no angle brackets
	To   []string // bare addr-specs
}

// Transport hands a finished message to the next hop. Send must not modify
// raw. Implementations are safe for concurrent use.
//
// A Transport is low level: it sends what it is given. The Mailer checks
// every message against its Policy before calling Send; code that calls a
// Transport directly should wrap it with Checked.
type Transport interface {
	Send(ctx context.Context, env Envelope, raw []byte) error
	Close() error
}

// TransportFunc adapts a function to Transport (Close does nothing).
type TransportFunc func(ctx context.Context, env Envelope, raw []byte) error

// Send calls f.
func (f TransportFunc) Send(ctx context.Context, env Envelope, raw []byte) error {
	return f(ctx, env, raw)
}

// Close does nothing.
func (f TransportFunc) Close() error { return nil }

var _ Transport = TransportFunc(nil)

// Checked wraps t so that every Send is first checked against p, for code
// that drives a Transport directly rather than through a Mailer. A refused
// message returns the *PolicyError and t is never called.
func Checked(t Transport, p *Policy) Transport { return &checked{t: t, p: p} }

type checked struct {
	t Transport
	p *Policy
}

func (c *checked) Send(ctx context.Context, env Envelope, raw []byte) error {
	if err := c.p.Check(env, raw); err != nil {
		return err
	}
	return c.t.Send(ctx, env, raw)
}

func (c *checked) Close() error { return c.t.Close() }
