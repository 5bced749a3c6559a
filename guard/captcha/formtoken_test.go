package captcha

import (
	"context"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"
)

func newTestFormToken(t testing.TB, c *clock, keys ...[]byte) *FormToken {
	t.Helper()
	ft, err := NewFormToken(FormTokenConfig{Keys: keys, Now: c.Now, Replay: NewMemoryReplay(100, c.Now)})
	if err != nil {
		t.Fatal(err)
	}
	return ft
}

func TestFormToken(t *testing.T) {
	ctx := context.Background()
	flip := func(s string, i int) string {
		raw, _ := base64.RawURLEncoding.DecodeString(s)
		raw[i] ^= 1
		return base64.RawURLEncoding.EncodeToString(raw)
	}
	tests := []struct {
		name    string
		form    string
		advance time.Duration
		keys    [][]byte
		edit    func(string) string
		want    error
	}{
		{name: "accepts a token after the minimum fill time", form: "contact", advance: 5 * time.Second},
		{name: "accepts at exactly the minimum fill time", form: "contact", advance: DefaultMinFill},
		{name: "refuses a form filled too fast", form: "contact", advance: time.Second, want: ErrTooFast},
		{name: "refuses a token past its max age", form: "contact", advance: DefaultFormTokenMaxAge + time.Second, want: ErrExpired},
		{name: "refuses another form's token", form: "share", advance: 5 * time.Second, want: ErrInvalid},
		{name: "accepts after key rotation", form: "contact", advance: 5 * time.Second, keys: [][]byte{keyB, keyA}},
		{name: "refuses a retired key", form: "contact", advance: 5 * time.Second, keys: [][]byte{keyB}, want: ErrInvalid},
		{name: "refuses a back-dated issue time", form: "contact", advance: 5 * time.Second, want: ErrInvalid,
			edit: func(s string) string { return flip(s, 8) }},
		{name: "refuses a changed nonce", form: "contact", advance: 5 * time.Second, want: ErrInvalid,
			edit: func(s string) string { return flip(s, 12) }},
		{name: "refuses a changed MAC", form: "contact", advance: 5 * time.Second, want: ErrInvalid,
			edit: func(s string) string { return flip(s, formTokenLen-1) }},
		{name: "refuses another version", form: "contact", advance: 5 * time.Second, want: ErrInvalid,
			edit: func(s string) string { return flip(s, 0) }},
		{name: "refuses a truncated token", form: "contact", advance: 5 * time.Second, want: ErrInvalid,
			edit: func(s string) string { return s[:len(s)-1] }},
		{name: "refuses padding and other alphabets", form: "contact", advance: 5 * time.Second, want: ErrInvalid,
			edit: func(s string) string {
				return strings.ReplaceAll(strings.ReplaceAll(s[:len(s)-1]+"=", "-", "+"), "_", "/")
			}},
		{name: "reports a missing token", form: "contact", want: ErrMissing, edit: func(string) string { return "" }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newClock()
			issuer := newTestFormToken(t, c, keyA)
			verifier := issuer
			if tc.keys != nil {
				verifier = newTestFormToken(t, c, tc.keys...)
			}
			tok, err := issuer.Issue("contact")
			if err != nil {
				t.Fatal(err)
			}
			if tc.edit != nil {
				tok = tc.edit(tok)
			}
			c.Advance(tc.advance)
			err = verifier.Verify(ctx, Request{Form: tc.form, Token: tok})
			if tc.want == nil && err != nil {
				t.Fatalf("Verify = %v, want nil", err)
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("Verify = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestFormTokenSingleUse(t *testing.T) {
	c := newClock()
	ft := newTestFormToken(t, c, keyA)
	tok, err := ft.Issue("contact")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	c.Advance(time.Second)
	if err := ft.Verify(ctx, Request{Form: "contact", Token: tok}); !errors.Is(err, ErrTooFast) {
		t.Fatalf("early Verify = %v, want ErrTooFast", err)
	}
	c.Advance(5 * time.Second)
	if err := ft.Verify(ctx, Request{Form: "contact", Token: tok}); err != nil {
		t.Fatalf("Verify after a too-fast attempt = %v: too fast must not burn the token", err)
	}
	if err := ft.Verify(ctx, Request{Form: "contact", Token: tok}); !errors.Is(err, ErrReplayed) {
		t.Fatalf("second Verify = %v, want ErrReplayed", err)
	}
	other, _ := ft.Issue("contact")
	if other == tok {
		t.Fatal("two tokens are equal")
	}
	if ft.Field() != "_fg_token" {
		t.Error(ft.Field())
	}
}

func TestFormTokenRequestNow(t *testing.T) {
	c := newClock()
	ft := newTestFormToken(t, c, keyA)
	tok, _ := ft.Issue("contact")
	// The guard's clock (Request.Now) wins over the verifier's own.
	err := ft.Verify(context.Background(), Request{Form: "contact", Token: tok, Now: testNow.Add(time.Second)})
	if !errors.Is(err, ErrTooFast) {
		t.Fatalf("Verify = %v, want ErrTooFast", err)
	}
	if err := ft.Verify(context.Background(), Request{Form: "contact", Token: tok, Now: testNow.Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
}

func TestFormTokenConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  FormTokenConfig
	}{
		{"no keys", FormTokenConfig{}},
		{"short key", FormTokenConfig{Keys: [][]byte{[]byte("0123456789")}}},
		{"negative max age", FormTokenConfig{Keys: [][]byte{keyA}, MaxAge: -1}},
		{"min fill above max age", FormTokenConfig{Keys: [][]byte{keyA}, MinFill: time.Hour, MaxAge: time.Minute}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := NewFormToken(tc.cfg); !errors.Is(err, ErrConfig) {
				t.Fatalf("err = %v, want ErrConfig", err)
			}
		})
	}
	t.Run("negative min fill disables the minimum", func(t *testing.T) {
		c := newClock()
		ft, err := NewFormToken(FormTokenConfig{Keys: [][]byte{keyA}, MinFill: -1, Now: c.Now})
		if err != nil {
			t.Fatal(err)
		}
		tok, _ := ft.Issue("contact")
		if err := ft.Verify(context.Background(), Request{Form: "contact", Token: tok}); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("empty form name is refused", func(t *testing.T) {
		ft := newTestFormToken(t, newClock(), keyA)
		if _, err := ft.Issue(""); !errors.Is(err, ErrConfig) {
			t.Fatal(err)
		}
	})
}

func BenchmarkFormTokenVerify(b *testing.B) {
	c := newClock()
	ft := newTestFormToken(b, c, keyA)
	tok, _ := ft.Issue("contact")
	c.Advance(time.Minute)
	b.ReportAllocs()
	for b.Loop() {
		// A forged form name: exercises parse + MAC, the attacker's path.
		if err := ft.Verify(context.Background(), Request{Form: "share", Token: tok}); !errors.Is(err, ErrInvalid) {
			b.Fatal(err)
		}
	}
}
