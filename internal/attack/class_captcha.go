package attack

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/formguard/formguard/guard/captcha"
)

// powMint mints a challenge for form as if issued at issued, with the
// proof-of-work key the service derives from FORMGUARD_CAPTCHA_SECRET
// (config.DeriveKey(secret, "pow")). Stale challenges minted this way are
// refused; a fresh control minted the same way must be accepted, which
// proves the stale ones are refused for being stale, not for a wrong key.
func (e *Env) powMint(form string, issued time.Time) (captcha.Challenge, error) {
	key := deriveKey([]byte(e.Svc.Secret), "pow")
	p, err := captcha.NewPoW(captcha.PoWConfig{Keys: [][]byte{key}, MaxNumber: PoWMaxNumber, Expiry: time.Minute,
		Now: func() time.Time { return issued }})
	if err != nil {
		return captcha.Challenge{}, err
	}
	return p.Challenge(form, "")
}

// captchaPost is a post to a proof-of-work form whose altcha value tok
// produces. A bad token must be refused outright: its mail would look
// legitimate, so the answer is what is judged.
func (e *Env) captchaPost(form string, legit bool, tok tokenSource) *Attempt {
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
		r.Allowed = nil
		a.Check = mustRefuse("captcha_bypass")
	}
	return a
}

// solvedThen solves a real challenge and changes the solution with mut.
func solvedThen(mut func(p *captcha.PoWPayload)) tokenSource {
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

// mintedPoW solves a share challenge minted age ago with the service's key.
func (e *Env) mintedPoW(age time.Duration) tokenSource {
	return func(context.Context, *Client, *Attempt) (string, error) {
		ch, err := e.powMint(ShareForm, time.Now().Add(-age))
		if err != nil {
			return "", err
		}
		return Solve(ch)
	}
}

// forgedPoW solves a well-formed challenge signed with the wrong key.
func forgedPoW(context.Context, *Client, *Attempt) (string, error) {
	p, err := captcha.NewPoW(captcha.PoWConfig{Keys: [][]byte{bytes.Repeat([]byte("k"), 32)}, MaxNumber: PoWMaxNumber})
	if err != nil {
		return "", err
	}
	ch, err := p.Challenge(ShareForm, "")
	if err != nil {
		return "", err
	}
	return Solve(ch)
}

func genCaptcha(e *Env) []Batch {
	first := e.captchaGarbage()
	first = append(first, e.captchaForged()...)
	// A form token on a form that takes none (contact): refused as an
	// unknown field. The form-token class attacks the forms that use them.
	r := e.NewRequest("captcha", ContactForm)
	r.Sender = visitor(r)
	a := e.Post(r, e.encs()[0], append(contactBase(r), KV{captcha.FormTokenField, "AQAAAZNfakefakefakefakefakefakefakefakefakefakefakefakefakefakefake"})...)
	a.Check = mustRefuse("captcha_bypass")
	first = append(first, a)
	orig, replays := e.captchaReplays()
	first = append(first, orig)
	// The sequential replay runs alone first, so its token is captured
	// before the concurrent ones read it.
	return []Batch{first, replays[:1], replays[1:]}
}

// captchaGarbage: missing, empty and garbage altcha values.
func (e *Env) captchaGarbage() Batch {
	var b Batch
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
		b = append(b, a)
		for _, g := range []string{"", "not base64!", "e30=", "bnVsbA==", strings.Repeat("A", 8000),
			EncodePayload(captcha.PoWPayload{Algorithm: "SHA-256", Test: true}),
			EncodePayload(captcha.PoWPayload{Algorithm: "SHA-1", Challenge: "00", Salt: "x", Signature: "00"})} {
			b = append(b, e.captchaPost(form, false, fixedToken(g)))
		}
	}
	return b
}

// captchaForged: solutions that are well formed but wrong: signed with
// another key, tampered, spent on another form, or stale (with a fresh
// control minted the same way, which must be delivered).
func (e *Env) captchaForged() Batch {
	return Batch{
		e.captchaPost(ShareForm, false, forgedPoW),
		e.captchaPost(ShareForm, false, solvedThen(func(p *captcha.PoWPayload) { p.Number++ })),
		e.captchaPost(ShareForm, false, solvedThen(func(p *captcha.PoWPayload) { p.Signature = strings.Repeat("0", 64) })),
		e.captchaPost(ShareForm, false, solvedThen(func(p *captcha.PoWPayload) { p.Salt = strings.Replace(p.Salt, "max=", "max=9", 1) })),
		e.captchaPost(ShareForm, false, solvedThen(func(p *captcha.PoWPayload) { p.Test = true })),
		e.captchaPost(ShareForm, false, solvedThen(func(p *captcha.PoWPayload) { p.Number = -1 })),
		e.captchaPost(FeedbackForm, false, func(ctx context.Context, c *Client, a *Attempt) (string, error) {
			return c.SolvePoW(ctx, ShareForm, a.Peer, a.XFF)
		}),
		e.captchaPost(ShareForm, true, e.mintedPoW(0)),
		e.captchaPost(ShareForm, false, e.mintedPoW(2*time.Minute)),
		e.captchaPost(ShareForm, false, e.mintedPoW(25*time.Hour)),
	}
}

// captchaReplays: a legitimate post, then its solution again from six
// posts (sent once alone, then five at once).
func (e *Env) captchaReplays() (*Attempt, Batch) {
	captured := make(chan string, 1)
	orig := e.captchaPost(ShareForm, true, func(ctx context.Context, c *Client, a *Attempt) (string, error) {
		t, err := c.SolvePoW(ctx, ShareForm, a.Peer, a.XFF)
		if err == nil {
			captured <- t
		}
		return t, err
	})
	var saved string
	replay := func(context.Context, *Client, *Attempt) (string, error) {
		if saved == "" {
			select {
			case saved = <-captured:
			default:
				return "", fmt.Errorf("replay: no token captured")
			}
		}
		return saved, nil
	}
	var replays Batch
	for i := 0; i < 6; i++ {
		replays = append(replays, e.captchaPost(ShareForm, false, replay))
	}
	return orig, replays
}
