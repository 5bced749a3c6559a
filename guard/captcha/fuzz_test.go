package captcha

import (
	"context"
	"encoding/base64"
	"errors"
	"math/rand/v2"
	"testing"
	"time"
)

// FuzzPoWPayload feeds arbitrary altcha fields to the parser and verifier:
// they must never panic, must reject with ErrInvalid-family errors, and
// must never accept anything but a genuinely solved challenge.
func FuzzPoWPayload(f *testing.F) {
	// Deterministic setup: the fuzzing engine runs this setup in every
	// worker process and the seeds must mean the same thing in each.
	c := newClock()
	p, err := NewPoW(PoWConfig{Keys: [][]byte{keyA}, MaxNumber: 2000, Now: c.Now, Rand: rand.NewChaCha8([32]byte{1})})
	if err != nil {
		f.Fatal(err)
	}
	ch, err := p.Challenge("contact", "")
	if err != nil {
		f.Fatal(err)
	}
	good := payload(f, ch, solve(f, ch))
	f.Add(good)
	f.Add(payload(f, ch, 0))
	f.Add("")
	f.Add("e30=") // {}
	f.Add(base64.StdEncoding.EncodeToString([]byte(`{"algorithm":"SHA-256","challenge":"00","number":-1,"salt":"x?","signature":"zz"}`)))
	f.Add(base64.StdEncoding.EncodeToString([]byte(`{"algorithm":"SHA-256","number":1e400}`)))
	f.Add(base64.StdEncoding.EncodeToString([]byte(`[1,2,3]`)))
	f.Fuzz(func(t *testing.T, tok string) {
		if _, err := ParsePoWPayload(tok); err != nil && !errors.Is(err, ErrInvalid) {
			t.Fatalf("ParsePoWPayload error %v is not ErrInvalid", err)
		}
		err := p.Verify(context.Background(), Request{Form: "contact", Token: tok, Now: testNow})
		if err == nil && tok != good {
			// Only a re-encoding of the one solved challenge may pass, once.
			pl, perr := ParsePoWPayload(tok)
			if perr != nil || pl.Salt != ch.Salt || pl.Number != solve(t, ch) {
				t.Fatalf("accepted a payload that does not solve the challenge: %q", tok)
			}
		}
	})
}

// FuzzFormToken feeds arbitrary tokens to the form-token verifier.
func FuzzFormToken(f *testing.F) {
	c := newClock()
	ft, err := NewFormToken(FormTokenConfig{Keys: [][]byte{keyA}, Now: c.Now, Rand: rand.NewChaCha8([32]byte{2})})
	if err != nil {
		f.Fatal(err)
	}
	good, err := ft.Issue("contact")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add("")
	f.Add(good[:10])
	f.Add(good + "A")
	f.Add(base64.RawURLEncoding.EncodeToString(make([]byte, formTokenLen)))
	now := testNow.Add(time.Minute)
	f.Fuzz(func(t *testing.T, tok string) {
		err := ft.Verify(context.Background(), Request{Form: "contact", Token: tok, Now: now})
		if err == nil && tok != good {
			t.Fatalf("accepted a token that was never issued: %q", tok)
		}
		if err != nil && !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrMissing) && !errors.Is(err, ErrReplayed) {
			t.Fatalf("unexpected error class: %v", err)
		}
	})
}
