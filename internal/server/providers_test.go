package server

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// siteverify is a loopback server speaking the providers' siteverify
// protocol (the real endpoints are out of reach of tests): it accepts the
// token "good" for secret "s3cret" and records what it was sent.
type siteverify struct {
	*httptest.Server
	mu       sync.Mutex
	requests []map[string]string
}

func startSiteverify(t *testing.T, action string, score float64) *siteverify {
	sv := &siteverify{}
	sv.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			http.Error(w, "bad form", 400)
			return
		}
		got := map[string]string{}
		for k := range r.PostForm {
			got[k] = r.PostForm.Get(k)
		}
		sv.mu.Lock()
		sv.requests = append(sv.requests, got)
		sv.mu.Unlock()
		ans := map[string]any{"success": false, "error-codes": []string{"invalid-input-response"}}
		if got["secret"] != "s3cret" {
			ans["error-codes"] = []string{"invalid-input-secret"}
		} else if got["response"] == "good" {
			ans = map[string]any{"success": true, "hostname": "site.test", "challenge_ts": time.Now().UTC().Format(time.RFC3339), "action": action, "score": score}
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(ans)
	}))
	t.Cleanup(sv.Close)
	return sv
}

func TestThirdPartyCaptchas(t *testing.T) {
	tests := []struct {
		name, provider, field, extra string
		score                        float64
	}{
		{"turnstile", "turnstile", "cf-turnstile-response", "", 0},
		{"hcaptcha", "hcaptcha", "h-captcha-response", "", 0},
		{"recaptcha v2", "recaptcha", "g-recaptcha-response", "", 0},
		{"recaptcha v3", "recaptcha", "g-recaptcha-response", ", action: contact, min_score: 0.5", 0.9},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			action := ""
			if strings.Contains(tc.extra, "action") {
				action = "contact"
			}
			sv := startSiteverify(t, action, tc.score)
			t.Setenv("FG_TEST_CAPTCHA_SECRET", "s3cret")
			// One client makes four verifications here; each client's share
			// of limits.captcha_verify is an eighth (captcha.ThrottleShare).
			cfg := strings.Replace(testConfig, "forms:\n", "captcha: {provider: "+tc.provider+", site_key: sk-1, secret_env: FG_TEST_CAPTCHA_SECRET, verify_url: \""+sv.URL+"\""+tc.extra+"}\nlimits: {captcha_verify: 32/s}\nforms:\n", 1)
			ts := newTestServerEnv(t, cfg)
			post := func(token string) string {
				return form("department", "support", "name", "Ada", "email", "ada@example.org", "message", "Hi", tc.field, token)
			}
			steps := []struct {
				name   string
				token  string
				status int
				code   string
			}{
				{"a good token is accepted", "good", 200, ""},
				{"the same token again is a replay, refused without asking the provider", "good", 403, "captcha_invalid"},
				{"a token the provider rejects is refused", "bad", 403, "captcha_invalid"},
				{"no token at all", "", 400, "captcha_missing"},
			}
			for _, s := range steps {
				resp := ts.do(t, req{path: "/f/contact", body: post(s.token), header: jsonAccept})
				b := body(t, resp)
				if resp.StatusCode != s.status || (s.code != "" && !strings.Contains(b, `"code":"`+s.code+`"`)) {
					t.Errorf("%s: %d %s, want %d %s", s.name, resp.StatusCode, b, s.status, s.code)
				}
			}
			sv.mu.Lock()
			n := len(sv.requests)
			first := sv.requests[0]
			sv.mu.Unlock()
			if n != 2 {
				t.Errorf("provider asked %d times, want 2 (good once, bad once)", n)
			}
			if first["secret"] != "s3cret" || first["response"] != "good" || first["remoteip"] != "192.0.2.10" {
				t.Errorf("siteverify request %v", first)
			}
			// The demo page renders the provider's widget.
			page := body(t, ts.do(t, req{method: "GET", path: "/"}))
			if !strings.Contains(page, `data-sitekey="sk-1"`) {
				t.Errorf("demo page lacks the %s widget", tc.provider)
			}
			// A provider that is down fails closed.
			sv.Close()
			resp := ts.do(t, req{path: "/f/contact", body: post("good2"), header: jsonAccept})
			if b := body(t, resp); resp.StatusCode != 503 || !strings.Contains(b, "captcha_unavailable") {
				t.Errorf("provider down: %d %s", resp.StatusCode, b)
			}
		})
	}
}

// TestSiteverifyRateCap: limits.captcha_verify caps the calls the service
// makes to a provider, and one client gets an eighth of it (here 2 of 16
// an hour); a verification over it fails closed without reaching the
// provider.
func TestSiteverifyRateCap(t *testing.T) {
	sv := startSiteverify(t, "", 0)
	t.Setenv("FG_TEST_CAPTCHA_SECRET", "s3cret")
	cfg := strings.Replace(testConfig, "forms:\n", "captcha: {provider: turnstile, site_key: sk-1, secret_env: FG_TEST_CAPTCHA_SECRET, verify_url: \""+sv.URL+"\"}\nlimits: {captcha_verify: 16/h}\nforms:\n", 1)
	ts := newTestServerEnv(t, cfg)
	post := func(token string) string {
		return form("department", "support", "name", "Ada", "email", "ada@example.org", "message", "Hi", "cf-turnstile-response", token)
	}
	for i, s := range []struct {
		token  string
		status int
		code   string
	}{
		{"good", 200, ""},
		{"bad", 403, "captcha_invalid"},
		{"good-but-over-the-cap", 503, "captcha_unavailable"},
		{"", 400, "captcha_missing"}, // no token: refused locally, cap or not
	} {
		resp := ts.do(t, req{path: "/f/contact", body: post(s.token), header: jsonAccept})
		b := body(t, resp)
		if resp.StatusCode != s.status || (s.code != "" && !strings.Contains(b, `"code":"`+s.code+`"`)) {
			t.Errorf("post %d (%q): %d %s, want %d %s", i, s.token, resp.StatusCode, b, s.status, s.code)
		}
	}
	sv.mu.Lock()
	n := len(sv.requests)
	sv.mu.Unlock()
	if n != 2 {
		t.Errorf("provider asked %d times, want 2: the client's share is 2 an hour", n)
	}
}
