package captcha_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/formguard/formguard/guard/captcha"
)

// A 32-byte key; load yours from configuration or the environment.
var exampleKey = []byte(strings.Repeat("k", 32))

func ExampleNewPoW() {
	pow, err := captcha.NewPoW(captcha.PoWConfig{Keys: [][]byte{exampleKey}, MaxNumber: 1000})
	if err != nil {
		panic(err)
	}
	// GET /f/contact/challenge answers this (see PoW.ChallengeHandler).
	ch, err := pow.Challenge("contact", "client-key")
	if err != nil {
		panic(err)
	}

	// The browser finds the number (the widget does this in a worker).
	var number int64
	for n := range ch.MaxNumber + 1 {
		sum := sha256.Sum256([]byte(ch.Salt + strconv.FormatInt(n, 10)))
		if hex.EncodeToString(sum[:]) == ch.Challenge {
			number = n
			break
		}
	}
	raw, _ := json.Marshal(captcha.PoWPayload{Algorithm: ch.Algorithm, Challenge: ch.Challenge,
		Number: number, Salt: ch.Salt, Signature: ch.Signature})
	token := base64.StdEncoding.EncodeToString(raw) // the "altcha" field

	ctx := context.Background()
	fmt.Println(pow.Verify(ctx, captcha.Request{Form: "contact", Token: token}))
	err = pow.Verify(ctx, captcha.Request{Form: "contact", Token: token})
	fmt.Println(errors.Is(err, captcha.ErrReplayed))
	// Output:
	// <nil>
	// true
}

func ExampleNewFormToken() {
	issued := time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC)
	now := issued
	ft, err := captcha.NewFormToken(captcha.FormTokenConfig{
		Keys: [][]byte{exampleKey},
		Now:  func() time.Time { return now },
	})
	if err != nil {
		panic(err)
	}
	// Render <input type="hidden" name="_fg_token" value="{{token}}"> in the page.
	token, err := ft.Issue("contact")
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	now = issued.Add(time.Second)
	fmt.Println(errors.Is(ft.Verify(ctx, captcha.Request{Form: "contact", Token: token}), captcha.ErrTooFast))
	now = issued.Add(30 * time.Second)
	fmt.Println(ft.Verify(ctx, captcha.Request{Form: "contact", Token: token}))
	fmt.Println(errors.Is(ft.Verify(ctx, captcha.Request{Form: "contact", Token: token}), captcha.ErrReplayed))
	// Output:
	// true
	// <nil>
	// true
}

func ExampleNewTurnstile() {
	ts, err := captcha.NewTurnstile(captcha.TurnstileConfig{
		Secret:    "0x4AAAAAAA-your-secret", // from the environment, never logged
		Hostnames: []string{"example.test", "www.example.test"},
		Action:    "contact",
	})
	if err != nil {
		panic(err)
	}
	fmt.Println(ts.Field())
	// In the handler (the guard does this for a Form with Captcha set):
	_ = func(ctx context.Context, token string, ip netip.Addr) error {
		return ts.Verify(ctx, captcha.Request{Form: "contact", Token: token, RemoteIP: ip})
	}
	// Output: cf-turnstile-response
}

func ExampleNewMemoryReplay() {
	r := captcha.NewMemoryReplay(10_000, nil)
	ctx := context.Background()
	exp := time.Now().Add(time.Minute)
	first, _ := r.Use(ctx, "token-hash", exp)
	again, _ := r.Use(ctx, "token-hash", exp)
	fmt.Println(first, again)
	// Output: true false
}

func ExamplePoW_ChallengeHandler() {
	pow, err := captcha.NewPoW(captcha.PoWConfig{Keys: [][]byte{exampleKey}})
	if err != nil {
		panic(err)
	}
	mux := http.NewServeMux()
	// clientKey should be the guard's hashed client key (trusted proxies
	// applied); it only feeds PoWConfig.Escalate.
	mux.Handle("GET /f/contact/challenge", pow.ChallengeHandler("contact", nil))

	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest("GET", "/f/contact/challenge", nil))
	var ch captcha.Challenge
	_ = json.Unmarshal(rec.Body.Bytes(), &ch)
	fmt.Println(rec.Code, rec.Header().Get("Cache-Control"), ch.Algorithm, ch.MaxNumber)
	// Output: 200 no-store SHA-256 50000
}

func ExampleNewEscalator() {
	esc, err := captcha.NewEscalator(captcha.EscalatorConfig{})
	if err != nil {
		panic(err)
	}
	pow, err := captcha.NewPoW(captcha.PoWConfig{Keys: [][]byte{exampleKey}, Escalate: esc.Factor})
	if err != nil {
		panic(err)
	}
	// Wherever the guard refuses a client (rate limit, failed CAPTCHA):
	esc.Offence("client-key-1")
	esc.Offence("client-key-1")

	calm, _ := pow.Challenge("contact", "client-key-2")
	noisy, _ := pow.Challenge("contact", "client-key-1")
	fmt.Println(calm.MaxNumber, noisy.MaxNumber)
	// Output: 50000 200000
}
