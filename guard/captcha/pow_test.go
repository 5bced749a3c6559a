package captcha

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
)

var (
	keyA = bytes.Repeat([]byte{'a'}, 32)
	keyB = bytes.Repeat([]byte{'b'}, 32)
)

// solve brute-forces a challenge the way a client does.
func solve(tb testing.TB, ch Challenge) int64 {
	tb.Helper()
	for n := int64(0); n <= ch.MaxNumber; n++ {
		sum := sha256.Sum256([]byte(ch.Salt + strconv.FormatInt(n, 10)))
		if hex.EncodeToString(sum[:]) == ch.Challenge {
			return n
		}
	}
	tb.Fatalf("no solution in [0, %d]", ch.MaxNumber)
	return -1
}

// payload encodes a solution as the widget does: base64 of the JSON.
func payload(tb testing.TB, ch Challenge, n int64) string {
	tb.Helper()
	b, err := json.Marshal(PoWPayload{Algorithm: ch.Algorithm, Challenge: ch.Challenge, Number: n, Salt: ch.Salt, Signature: ch.Signature, Took: 12})
	if err != nil {
		tb.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(b)
}

func newTestPoW(t testing.TB, c *clock, keys ...[]byte) *PoW {
	t.Helper()
	p, err := NewPoW(PoWConfig{Keys: keys, MaxNumber: 2000, Now: c.Now, Replay: NewMemoryReplay(100, c.Now)})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPoWChallengeFormat(t *testing.T) {
	c := newClock()
	p := newTestPoW(t, c, keyA)
	ch, err := p.Challenge("contact", "client")
	if err != nil {
		t.Fatal(err)
	}
	if ch.Algorithm != "SHA-256" || ch.MaxNumber != 2000 || len(ch.Challenge) != 64 || len(ch.Signature) != 64 {
		t.Fatalf("challenge = %+v", ch)
	}
	want := "?expires=" + strconv.FormatInt(testNow.Add(DefaultPoWExpiry).Unix(), 10) + "&form=contact&max=2000&"
	if !strings.HasSuffix(ch.Salt, want) || len(ch.Salt) != 2*powSaltBytes+len(want) {
		t.Errorf("salt %q, want 24 hex digits then %q", ch.Salt, want)
	}
	// The signature is HMAC-SHA256(key, challenge) in hex, as ALTCHA documents.
	if got := hex.EncodeToString(hmacSHA256(keyA, []byte(ch.Challenge))); got != ch.Signature {
		t.Errorf("signature %s, want %s", ch.Signature, got)
	}
	raw, _ := json.Marshal(ch)
	for _, k := range []string{`"algorithm"`, `"challenge"`, `"maxnumber"`, `"salt"`, `"signature"`} {
		if !bytes.Contains(raw, []byte(k)) {
			t.Errorf("challenge JSON %s lacks %s", raw, k)
		}
	}
	n := solve(t, ch)
	if n < 0 || n > ch.MaxNumber {
		t.Fatal(n)
	}
	other, _ := p.Challenge("contact", "client")
	if other.Salt == ch.Salt || other.Challenge == ch.Challenge {
		t.Error("two challenges share salt or hash")
	}
}

func TestPoWVerify(t *testing.T) {
	ctx := context.Background()
	tamper := func(tok string, f func(*PoWPayload)) string {
		raw, _ := base64.StdEncoding.DecodeString(tok)
		var pl PoWPayload
		_ = json.Unmarshal(raw, &pl)
		f(&pl)
		b, _ := json.Marshal(pl)
		return base64.StdEncoding.EncodeToString(b)
	}
	tests := []struct {
		name    string
		form    string              // form the submission goes to
		advance time.Duration       // time between challenge and submission
		keys    [][]byte            // verifier's keys (issuer signs with keyA)
		edit    func(string) string // tampering with the payload
		want    error
	}{
		{name: "accepts a solved challenge", form: "contact", want: nil},
		{name: "accepts just before expiry", form: "contact", advance: DefaultPoWExpiry - time.Second},
		{name: "refuses an expired challenge", form: "contact", advance: DefaultPoWExpiry, want: ErrExpired},
		{name: "refuses another form's challenge", form: "share", want: ErrMismatch},
		{name: "accepts after key rotation (old key still verifies)", form: "contact", keys: [][]byte{keyB, keyA}},
		{name: "refuses a retired key", form: "contact", keys: [][]byte{keyB}, want: ErrInvalid},
		{name: "refuses a tampered signature", form: "contact", want: ErrInvalid, edit: func(s string) string {
			return tamper(s, func(p *PoWPayload) { p.Signature = strings.Repeat("0", 64) })
		}},
		{name: "refuses a wrong number", form: "contact", want: ErrInvalid, edit: func(s string) string {
			return tamper(s, func(p *PoWPayload) { p.Number++ })
		}},
		{name: "refuses a re-signed form change in the salt", form: "share", want: ErrInvalid, edit: func(s string) string {
			return tamper(s, func(p *PoWPayload) { p.Salt = strings.Replace(p.Salt, "form=contact", "form=share", 1) })
		}},
		{name: "refuses a salt extended with digits", form: "contact", want: ErrInvalid, edit: func(s string) string {
			return tamper(s, func(p *PoWPayload) {
				p.Salt = strings.TrimSuffix(p.Salt, "&") + "9&"
			})
		}},
		{name: "refuses another algorithm", form: "contact", want: ErrInvalid, edit: func(s string) string {
			return tamper(s, func(p *PoWPayload) { p.Algorithm = "SHA-1" })
		}},
		{name: "refuses a test-mode payload", form: "contact", want: ErrInvalid, edit: func(s string) string {
			return tamper(s, func(p *PoWPayload) { p.Test = true })
		}},
		{name: "accepts upper-case hex (replay is judged on the canonical hex)", form: "contact", want: nil, edit: func(s string) string {
			return tamper(s, func(p *PoWPayload) { p.Challenge = strings.ToUpper(p.Challenge) })
		}},
		{name: "refuses non-base64", form: "contact", want: ErrInvalid, edit: func(string) string { return "%%%" }},
		{name: "refuses base64 of non-JSON", form: "contact", want: ErrInvalid, edit: func(string) string {
			return base64.StdEncoding.EncodeToString([]byte("hello"))
		}},
		{name: "refuses an oversized payload", form: "contact", want: ErrInvalid, edit: func(string) string {
			return strings.Repeat("A", maxPoWPayload+4)
		}},
		{name: "reports a missing token", form: "contact", want: ErrMissing, edit: func(string) string { return "" }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newClock()
			issuer := newTestPoW(t, c, keyA)
			verifier := issuer
			if tc.keys != nil {
				verifier = newTestPoW(t, c, tc.keys...)
			}
			ch, err := issuer.Challenge("contact", "")
			if err != nil {
				t.Fatal(err)
			}
			tok := payload(t, ch, solve(t, ch))
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

func TestPoWReplay(t *testing.T) {
	c := newClock()
	p := newTestPoW(t, c, keyA)
	ch, _ := p.Challenge("contact", "")
	tok := payload(t, ch, solve(t, ch))
	ctx := context.Background()
	if err := p.Verify(ctx, Request{Form: "contact", Token: tok}); err != nil {
		t.Fatal(err)
	}
	if err := p.Verify(ctx, Request{Form: "contact", Token: tok}); !errors.Is(err, ErrReplayed) {
		t.Fatalf("second Verify = %v, want ErrReplayed", err)
	}
	// The same solution re-encoded (different took, key order) is the same challenge.
	again := payload(t, ch, solve(t, ch))
	if err := p.Verify(ctx, Request{Form: "contact", Token: again}); !errors.Is(err, ErrReplayed) {
		t.Fatalf("re-encoded Verify = %v, want ErrReplayed", err)
	}
}

func TestPoWEscalate(t *testing.T) {
	c := newClock()
	p, err := NewPoW(PoWConfig{Keys: [][]byte{keyA}, MaxNumber: 1000, MaxNumberLimit: 5000, Now: c.Now,
		Escalate: func(key string) int64 {
			switch key {
			case "limited":
				return 3
			case "hostile":
				return 1 << 62
			}
			return 1
		}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		key  string
		want int64
	}{{"calm", 1000}, {"limited", 3000}, {"hostile", 5000}} {
		t.Run(tc.key, func(t *testing.T) {
			ch, err := p.Challenge("contact", tc.key)
			if err != nil {
				t.Fatal(err)
			}
			if ch.MaxNumber != tc.want || !strings.Contains(ch.Salt, "max="+strconv.FormatInt(tc.want, 10)+"&") {
				t.Fatalf("MaxNumber %d salt %q, want %d", ch.MaxNumber, ch.Salt, tc.want)
			}
			if err := p.Verify(context.Background(), Request{Form: "contact", Token: payload(t, ch, solve(t, ch))}); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestPoWConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  PoWConfig
	}{
		{"no keys", PoWConfig{}},
		{"short key", PoWConfig{Keys: [][]byte{[]byte("short")}}},
		{"one good one short key", PoWConfig{Keys: [][]byte{keyA, make([]byte, 31)}}},
		{"negative max number", PoWConfig{Keys: [][]byte{keyA}, MaxNumber: -1}},
		{"limit below max", PoWConfig{Keys: [][]byte{keyA}, MaxNumber: 10, MaxNumberLimit: 5}},
		{"negative expiry", PoWConfig{Keys: [][]byte{keyA}, Expiry: -time.Second}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := NewPoW(tc.cfg); !errors.Is(err, ErrConfig) {
				t.Fatalf("err = %v, want ErrConfig", err)
			}
		})
	}
	p, err := NewPoW(PoWConfig{Keys: [][]byte{keyA}})
	if err != nil {
		t.Fatal(err)
	}
	if p.max != DefaultPoWMaxNumber || p.expiry != DefaultPoWExpiry || p.limit != DefaultPoWMaxNumberLimit || p.Field() != "altcha" {
		t.Errorf("defaults: %d %s %d %s", p.max, p.expiry, p.limit, p.Field())
	}
	if _, err := p.Challenge("", ""); !errors.Is(err, ErrConfig) {
		t.Errorf("Challenge for empty form = %v", err)
	}
}

func TestPoWChallengeHandler(t *testing.T) {
	c := newClock()
	p := newTestPoW(t, c, keyA)
	var gotKey string
	h := p.ChallengeHandler("contact", func(r *http.Request) string { gotKey = r.RemoteAddr; return gotKey })
	tests := []struct {
		name   string
		method string
		status int
	}{
		{"GET answers a challenge", http.MethodGet, 200},
		{"HEAD answers headers only", http.MethodHead, 200},
		{"POST is not allowed", http.MethodPost, 405},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(tc.method, "/f/contact/challenge", nil))
			if rec.Code != tc.status {
				t.Fatalf("status %d, want %d", rec.Code, tc.status)
			}
			if rec.Header().Get("Cache-Control") != "no-store" {
				t.Errorf("Cache-Control %q", rec.Header().Get("Cache-Control"))
			}
			if tc.status != 200 {
				return
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			if tc.method == http.MethodHead {
				if rec.Body.Len() != 0 {
					t.Error("HEAD has a body")
				}
				return
			}
			var ch Challenge
			if err := json.Unmarshal(rec.Body.Bytes(), &ch); err != nil {
				t.Fatal(err)
			}
			if gotKey == "" {
				t.Error("clientKey not consulted")
			}
			tok := payload(t, ch, solve(t, ch))
			if err := p.Verify(context.Background(), Request{Form: "contact", Token: tok}); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func BenchmarkPoWVerify(b *testing.B) {
	c := newClock()
	p, err := NewPoW(PoWConfig{Keys: [][]byte{keyA, keyB}, MaxNumber: 1000, Now: c.Now, Replay: NewMemoryReplay(1<<20, c.Now)})
	if err != nil {
		b.Fatal(err)
	}
	const n = 512
	toks := make([]string, n)
	for i := range toks {
		ch, err := p.Challenge("contact", "")
		if err != nil {
			b.Fatal(err)
		}
		toks[i] = payload(b, ch, solve(b, ch))
	}
	ctx := context.Background()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if i > 0 && i%n == 0 {
			b.StopTimer()
			p.replay = NewMemoryReplay(1<<20, c.Now) // the tokens become fresh again
			b.StartTimer()
		}
		if err := p.Verify(ctx, Request{Form: "contact", Token: toks[i%n]}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPoWVerifyForged(b *testing.B) {
	// An attacker's cost to us: garbage payloads rejected before any HMAC.
	c := newClock()
	p := newTestPoW(b, c, keyA)
	ch, _ := p.Challenge("contact", "")
	tok := payload(b, ch, solve(b, ch)+1)
	b.ReportAllocs()
	for b.Loop() {
		if err := p.Verify(context.Background(), Request{Form: "contact", Token: tok}); !errors.Is(err, ErrInvalid) {
			b.Fatal(err)
		}
	}
}
