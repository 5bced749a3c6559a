package attack

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/formguard/formguard/guard/captcha"
)

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
