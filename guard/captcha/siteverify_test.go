package captcha

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// siteverify is a loopback stand-in for a provider's siteverify endpoint.
// It enforces the documented request format (POST, form-encoded body with
// secret, response, remoteip, plus sitekey for hCaptcha and a UUID
// idempotency_key for Turnstile) and answers with the documented JSON.
type siteverify struct {
	t        *testing.T
	provider string
	secret   string
	siteKey  string

	mu       sync.Mutex
	requests []map[string]string
	answer   func(n int, fields map[string]string) (status int, body string)
	block    chan struct{} // when non-nil, requests block until ctx or close
	// dropFirst closes the connection of the first request without an
	// answer: a network error after the provider saw the request.
	dropFirst bool
}

var uuidV4 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func (s *siteverify) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		s.t.Errorf("%s siteverify: method %s, want POST", s.provider, r.Method)
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/x-www-form-urlencoded" {
		s.t.Errorf("%s siteverify: Content-Type %q", s.provider, r.Header.Get("Content-Type"))
	}
	if err := r.ParseForm(); err != nil {
		s.t.Errorf("%s siteverify: %v", s.provider, err)
	}
	if len(r.URL.RawQuery) != 0 {
		s.t.Errorf("%s siteverify: secret must travel in the body, got query %q", s.provider, r.URL.RawQuery)
	}
	fields := map[string]string{}
	for k, v := range r.PostForm {
		if len(v) != 1 {
			s.t.Errorf("%s siteverify: field %s sent %d times", s.provider, k, len(v))
		}
		fields[k] = v[0]
	}
	allowed := map[string]bool{"secret": true, "response": true, "remoteip": true}
	switch s.provider {
	case "hcaptcha":
		allowed["sitekey"] = true
		if fields["sitekey"] != s.siteKey {
			s.t.Errorf("hcaptcha siteverify: sitekey %q, want %q", fields["sitekey"], s.siteKey)
		}
	case "turnstile":
		allowed["idempotency_key"] = true
		if !uuidV4.MatchString(fields["idempotency_key"]) {
			s.t.Errorf("turnstile siteverify: idempotency_key %q is not a UUID v4", fields["idempotency_key"])
		}
	}
	for k := range fields {
		if !allowed[k] {
			s.t.Errorf("%s siteverify: undocumented field %q", s.provider, k)
		}
	}
	s.mu.Lock()
	s.requests = append(s.requests, fields)
	n := len(s.requests)
	block := s.block
	s.mu.Unlock()
	if s.dropFirst && n == 1 {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err != nil {
			s.t.Error(err)
			return
		}
		conn.Close()
		return
	}
	if block != nil {
		select {
		case <-r.Context().Done():
		case <-block:
		}
		return
	}
	if fields["secret"] != s.secret {
		writeJSON(w, http.StatusOK, `{"success":false,"error-codes":["invalid-input-secret"]}`)
		return
	}
	status, body := s.answer(n, fields)
	writeJSON(w, status, body)
}

func (s *siteverify) calls() []map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]map[string]string(nil), s.requests...)
}

func writeJSON(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	fmt.Fprint(w, body)
}

var testNow = time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC)

func fixedNow() time.Time { return testNow }

// answerJSON builds a documented success answer.
func answerJSON(success bool, ts time.Time, host, action string, score *float64, codes ...string) string {
	m := map[string]any{"success": success}
	if !ts.IsZero() {
		m["challenge_ts"] = ts.Format(time.RFC3339)
	}
	if host != "" {
		m["hostname"] = host
	}
	if action != "" {
		m["action"] = action
	}
	if score != nil {
		m["score"] = *score
	}
	if codes != nil {
		m["error-codes"] = codes
	} else {
		m["error-codes"] = []string{}
	}
	b, _ := json.Marshal(m)
	return string(b)
}

func ptr[T any](v T) *T { return &v }

type providerCase struct {
	name   string
	status int
	body   string
	want   error // nil: accepted
}

func providerCases(action string, withScore bool) []providerCase {
	ok := testNow.Add(-10 * time.Second)
	var good, low *float64
	if withScore {
		good, low = ptr(0.9), ptr(0.1)
	}
	cases := []providerCase{
		{"accepts a fresh token for the site", 200, answerJSON(true, ok, "example.test", action, good), nil},
		{"accepts the hostname case-insensitively", 200, answerJSON(true, ok, "WWW.Example.TEST", action, good), nil},
		{"refuses another site's hostname", 200, answerJSON(true, ok, "evil.test", action, good), ErrMismatch},
		{"refuses a missing hostname", 200, answerJSON(true, ok, "", action, good), ErrMismatch},
		{"refuses a stale challenge", 200, answerJSON(true, testNow.Add(-time.Hour), "example.test", action, good), ErrExpired},
		{"refuses a challenge from the future", 200, answerJSON(true, testNow.Add(time.Hour), "example.test", action, good), ErrInvalid},
		{"refuses an answer without challenge_ts", 200, answerJSON(true, time.Time{}, "example.test", action, good), ErrInvalid},
		{"maps timeout-or-duplicate to replayed", 200, answerJSON(false, time.Time{}, "", "", nil, "timeout-or-duplicate"), ErrReplayed},
		{"maps invalid-input-response to invalid", 200, answerJSON(false, time.Time{}, "", "", nil, "invalid-input-response"), ErrInvalid},
		{"maps missing-input-response to missing", 200, answerJSON(false, time.Time{}, "", "", nil, "missing-input-response"), ErrMissing},
		{"maps missing-input-secret to config", 200, answerJSON(false, time.Time{}, "", "", nil, "missing-input-secret"), ErrConfig},
		{"maps bad-request to config", 200, answerJSON(false, time.Time{}, "", "", nil, "bad-request"), ErrConfig},
		{"maps internal-error to unavailable", 200, answerJSON(false, time.Time{}, "", "", nil, "internal-error"), ErrUnavailable},
		{"lets config outrank the token's fault", 200, answerJSON(false, time.Time{}, "", "", nil, "invalid-input-response", "invalid-input-secret"), ErrConfig},
		{"refuses failure without codes", 200, `{"success":false}`, ErrInvalid},
		{"refuses success carrying error codes", 200, `{"success":true,"hostname":"example.test","challenge_ts":"` + ok.Format(time.RFC3339) + `","error-codes":["internal-error"]}`, ErrInvalid},
		{"fails closed on a 5xx", 502, `<html>bad gateway</html>`, ErrUnavailable},
		{"fails closed on a 500 with JSON success", 500, answerJSON(true, ok, "example.test", action, good), ErrUnavailable},
		{"fails closed on malformed JSON", 200, `{"success":tru`, ErrUnavailable},
		{"fails closed on an oversized answer", 200, `{"success":true,"cdata":"` + strings.Repeat("a", maxProviderBody) + `"}`, ErrUnavailable},
	}
	if action != "" {
		cases = append(cases,
			providerCase{"refuses another action", 200, answerJSON(true, ok, "example.test", "login", good), ErrMismatch},
			providerCase{"refuses a missing action", 200, answerJSON(true, ok, "example.test", "", good), ErrMismatch})
	}
	if withScore {
		cases = append(cases,
			providerCase{"refuses a low score", 200, answerJSON(true, ok, "example.test", action, low), ErrLowScore},
			providerCase{"accepts a score at the threshold", 200, answerJSON(true, ok, "example.test", action, ptr(0.5)), nil},
			providerCase{"refuses an answer without score", 200, answerJSON(true, ok, "example.test", action, nil), ErrInvalid})
	}
	return cases
}

type providerUnderTest struct {
	name    string
	action  string
	score   bool
	siteKey string
	make    func(url string, replay ReplayCache, timeout time.Duration) (Verifier, error)
}

var providers = []providerUnderTest{
	{name: "turnstile", action: "contact", make: func(u string, r ReplayCache, to time.Duration) (Verifier, error) {
		return NewTurnstile(TurnstileConfig{Secret: "ts-secret", Hostnames: []string{"example.test", "www.example.test"},
			Action: "contact", VerifyURL: u, Replay: r, Now: fixedNow, Timeout: to})
	}},
	{name: "hcaptcha", siteKey: "hc-site", make: func(u string, r ReplayCache, to time.Duration) (Verifier, error) {
		return NewHCaptcha(HCaptchaConfig{Secret: "hc-secret", SiteKey: "hc-site", Hostnames: []string{"example.test", "www.example.test"},
			VerifyURL: u, Replay: r, Now: fixedNow, Timeout: to})
	}},
	{name: "recaptcha", action: "contact", score: true, make: func(u string, r ReplayCache, to time.Duration) (Verifier, error) {
		return NewReCAPTCHA(ReCAPTCHAConfig{Version: 3, Secret: "rc-secret", Hostnames: []string{"example.test", "www.example.test"},
			Action: "contact", VerifyURL: u, Replay: r, Now: fixedNow, Timeout: to})
	}},
	{name: "recaptcha-v2", make: func(u string, r ReplayCache, to time.Duration) (Verifier, error) {
		return NewReCAPTCHA(ReCAPTCHAConfig{Version: 2, Secret: "rc-secret", Hostnames: []string{"example.test", "www.example.test"},
			VerifyURL: u, Replay: r, Now: fixedNow, Timeout: to})
	}},
}

func secretFor(name string) string {
	switch name {
	case "turnstile":
		return "ts-secret"
	case "hcaptcha":
		return "hc-secret"
	}
	return "rc-secret"
}

func newFake(t *testing.T, p providerUnderTest) (*siteverify, *httptest.Server) {
	t.Helper()
	kind := strings.TrimSuffix(p.name, "-v2")
	fake := &siteverify{t: t, provider: kind, secret: secretFor(kind), siteKey: p.siteKey}
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	return fake, srv
}

var clientIP = netip.MustParseAddr("203.0.113.7")

func TestProviderVerify(t *testing.T) {
	for _, p := range providers {
		t.Run(p.name, func(t *testing.T) {
			for i, tc := range providerCases(p.action, p.score) {
				t.Run(tc.name, func(t *testing.T) {
					fake, srv := newFake(t, p)
					fake.answer = func(int, map[string]string) (int, string) { return tc.status, tc.body }
					v, err := p.make(srv.URL+"/siteverify", nil, 0)
					if err != nil {
						t.Fatal(err)
					}
					token := fmt.Sprintf("token-%d", i)
					err = v.Verify(context.Background(), Request{Form: "contact", Token: token, RemoteIP: clientIP})
					if tc.want == nil && err != nil {
						t.Fatalf("Verify = %v, want nil", err)
					}
					if tc.want != nil && !errors.Is(err, tc.want) {
						t.Fatalf("Verify = %v, want %v", err, tc.want)
					}
					calls := fake.calls()
					if len(calls) != 1 {
						t.Fatalf("provider called %d times, want 1", len(calls))
					}
					if calls[0]["response"] != token || calls[0]["remoteip"] != "203.0.113.7" {
						t.Errorf("sent response=%q remoteip=%q", calls[0]["response"], calls[0]["remoteip"])
					}
					if err != nil && strings.Contains(err.Error(), secretFor(fake.provider)) {
						t.Errorf("error leaks the secret: %v", err)
					}
				})
			}
		})
	}
}

func TestProviderReplayAndLocalChecks(t *testing.T) {
	for _, p := range providers {
		t.Run(p.name, func(t *testing.T) {
			fake, srv := newFake(t, p)
			fake.answer = func(int, map[string]string) (int, string) {
				return 200, answerJSON(true, testNow.Add(-time.Second), "example.test", p.action, ptr(0.9))
			}
			v, err := p.make(srv.URL, NewMemoryReplay(10, fixedNow), 0)
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			if v.Field() == "" {
				t.Error("empty Field")
			}
			t.Run("first use accepted", func(t *testing.T) {
				if err := v.Verify(ctx, Request{Token: "tok-1", RemoteIP: clientIP}); err != nil {
					t.Fatal(err)
				}
			})
			t.Run("same token refused without a provider call", func(t *testing.T) {
				before := len(fake.calls())
				if err := v.Verify(ctx, Request{Token: "tok-1", RemoteIP: clientIP}); !errors.Is(err, ErrReplayed) {
					t.Fatalf("replay = %v, want ErrReplayed", err)
				}
				if len(fake.calls()) != before {
					t.Error("replayed token reached the provider")
				}
			})
			t.Run("missing token refused without a provider call", func(t *testing.T) {
				before := len(fake.calls())
				if err := v.Verify(ctx, Request{Token: ""}); !errors.Is(err, ErrMissing) {
					t.Fatalf("Verify = %v, want ErrMissing", err)
				}
				if err := v.Verify(ctx, Request{Token: "a b"}); !errors.Is(err, ErrInvalid) {
					t.Fatalf("Verify = %v, want ErrInvalid", err)
				}
				if err := v.Verify(ctx, Request{Token: strings.Repeat("x", 9000)}); !errors.Is(err, ErrInvalid) {
					t.Fatalf("Verify = %v, want ErrInvalid", err)
				}
				if len(fake.calls()) != before {
					t.Error("locally refused token reached the provider")
				}
			})
			t.Run("no remoteip sent when unknown", func(t *testing.T) {
				if err := v.Verify(ctx, Request{Token: "tok-2"}); err != nil {
					t.Fatal(err)
				}
				calls := fake.calls()
				if _, ok := calls[len(calls)-1]["remoteip"]; ok {
					t.Error("remoteip sent for an unknown client IP")
				}
			})
		})
	}
}

func TestProviderTimeoutFailsClosed(t *testing.T) {
	for _, p := range providers {
		t.Run(p.name, func(t *testing.T) {
			fake, srv := newFake(t, p)
			fake.block = make(chan struct{})
			t.Cleanup(func() { close(fake.block) })
			v, err := p.make(srv.URL, nil, 50*time.Millisecond)
			if err != nil {
				t.Fatal(err)
			}
			err = v.Verify(context.Background(), Request{Token: "slow", RemoteIP: clientIP})
			if !errors.Is(err, ErrUnavailable) {
				t.Fatalf("Verify against a blocked provider = %v, want ErrUnavailable", err)
			}
		})
	}
}

func TestProviderDownFailsClosed(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now: connection refused
	for _, p := range providers {
		t.Run(p.name, func(t *testing.T) {
			v, err := p.make("http://"+addr+"/siteverify", nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			if err := v.Verify(context.Background(), Request{Token: "t"}); !errors.Is(err, ErrUnavailable) {
				t.Fatalf("Verify = %v, want ErrUnavailable", err)
			}
		})
	}
}

// TestTurnstileRetriesWithSameIdempotencyKey drops the first connection
// (a network error) and checks that the one retry carries the same
// idempotency_key, as Turnstile documents for safe retries.
func TestTurnstileRetriesWithSameIdempotencyKey(t *testing.T) {
	p := providers[0]
	fake, srv := newFake(t, p)
	fake.answer = func(n int, _ map[string]string) (int, string) {
		return 200, answerJSON(true, testNow, "example.test", "contact", nil)
	}
	fake.dropFirst = true
	v, err := p.make(srv.URL, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Verify(context.Background(), Request{Token: "retry-me", RemoteIP: clientIP}); err != nil {
		t.Fatalf("Verify after one dropped connection = %v", err)
	}
	calls := fake.calls()
	if len(calls) != 2 {
		t.Fatalf("provider saw %d requests, want 2", len(calls))
	}
	if calls[0]["idempotency_key"] == "" || calls[0]["idempotency_key"] != calls[1]["idempotency_key"] {
		t.Errorf("idempotency keys %q and %q differ", calls[0]["idempotency_key"], calls[1]["idempotency_key"])
	}
}

func TestProviderConfigErrors(t *testing.T) {
	hosts := []string{"example.test"}
	tests := []struct {
		name string
		make func() error
	}{
		{"turnstile without secret", func() error { _, err := NewTurnstile(TurnstileConfig{Hostnames: hosts}); return err }},
		{"turnstile without hostnames", func() error { _, err := NewTurnstile(TurnstileConfig{Secret: "s"}); return err }},
		{"turnstile with a URL as hostname", func() error {
			_, err := NewTurnstile(TurnstileConfig{Secret: "s", Hostnames: []string{"https://example.test"}})
			return err
		}},
		{"turnstile with plain http to a remote host", func() error {
			_, err := NewTurnstile(TurnstileConfig{Secret: "s", Hostnames: hosts, VerifyURL: "http://example.test/siteverify"})
			return err
		}},
		{"turnstile with a secret containing a newline", func() error {
			_, err := NewTurnstile(TurnstileConfig{Secret: "s\n", Hostnames: hosts})
			return err
		}},
		{"turnstile with negative timeout", func() error {
			_, err := NewTurnstile(TurnstileConfig{Secret: "s", Hostnames: hosts, Timeout: -1})
			return err
		}},
		{"hcaptcha without site key", func() error { _, err := NewHCaptcha(HCaptchaConfig{Secret: "s", Hostnames: hosts}); return err }},
		{"recaptcha without version", func() error {
			_, err := NewReCAPTCHA(ReCAPTCHAConfig{Secret: "s", Hostnames: hosts})
			return err
		}},
		{"recaptcha v3 without action", func() error {
			_, err := NewReCAPTCHA(ReCAPTCHAConfig{Version: 3, Secret: "s", Hostnames: hosts})
			return err
		}},
		{"recaptcha v3 with score above 1", func() error {
			_, err := NewReCAPTCHA(ReCAPTCHAConfig{Version: 3, Action: "a", MinScore: 1.5, Secret: "s", Hostnames: hosts})
			return err
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.make(); !errors.Is(err, ErrConfig) {
				t.Fatalf("err = %v, want ErrConfig", err)
			}
		})
	}
	t.Run("defaults are the providers' documented values", func(t *testing.T) {
		ts, err := NewTurnstile(TurnstileConfig{Secret: "s", Hostnames: hosts})
		if err != nil {
			t.Fatal(err)
		}
		if ts.verifyURL != TurnstileVerifyURL || ts.maxAge != DefaultTurnstileMaxAge || ts.timeout != DefaultVerifyTimeout || ts.Field() != "cf-turnstile-response" {
			t.Errorf("turnstile defaults: %s %s %s %s", ts.verifyURL, ts.maxAge, ts.timeout, ts.Field())
		}
		hc, err := NewHCaptcha(HCaptchaConfig{Secret: "s", SiteKey: "k", Hostnames: hosts})
		if err != nil {
			t.Fatal(err)
		}
		if hc.verifyURL != HCaptchaVerifyURL || hc.Field() != "h-captcha-response" {
			t.Errorf("hcaptcha defaults: %s %s", hc.verifyURL, hc.Field())
		}
		rc, err := NewReCAPTCHA(ReCAPTCHAConfig{Version: 3, Action: "contact", Secret: "s", Hostnames: hosts})
		if err != nil {
			t.Fatal(err)
		}
		if rc.verifyURL != ReCAPTCHAVerifyURL || rc.maxAge != DefaultReCAPTCHAMaxAge || rc.minScore != 0.5 || rc.Field() != "g-recaptcha-response" {
			t.Errorf("recaptcha defaults: %s %s %v %s", rc.verifyURL, rc.maxAge, rc.minScore, rc.Field())
		}
	})
}
