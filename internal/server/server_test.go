package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"github.com/formguard/formguard/post"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/formguard/formguard/guard"
	"github.com/formguard/formguard/guard/captcha"
	"github.com/formguard/formguard/guard/captcha/widget"
	"github.com/formguard/formguard/internal/config"
	"github.com/formguard/formguard/mailer/outbox"
)

const testKey = "../../testdata/config/dkim-ed25519.pem"

// testConfig is the demo's shape on a fixed origin, with tight limits on
// the hello form so rate limiting is quick to reach.
const testConfig = `
site: {domain: example.test, name: Example, origins: ["http://site.test"]}
mail:
  from: no-reply@example.test
  dkim: {key_file: ` + testKey + `}
forms:
  contact:
    choices: {support: [support@example.test], sales: [sales@example.test]}
  share: {kind: share, max_recipients: 2}
  hello:
    to: [support@example.test]
    captcha: {provider: none}
    limits: {per_ip: 3/h}
  thanks:
    to: [support@example.test]
    captcha: {provider: none}
    success_url: /thanks
    error_url: /oops
`

const origin = "http://site.test"

type testServer struct {
	*Server
	clock   *fakeClock
	dir     string
	cfg     *config.Config
	outbox  *outbox.Dir
	guard   *guard.Guard
	metrics *Metrics
	logs    *bytes.Buffer
}

// newTestServer wires a real guard, real verifiers and a real directory
// outbox; Deliver queues a minimal message for each submission so the
// tests can see what was accepted.
func newTestServer(t testing.TB, yaml string) *testServer {
	t.Helper()
	return newTestServerOpts(t, yaml, config.Options{Getenv: func(string) (string, bool) { return "", false }})
}

// newTestServerEnv is newTestServer reading the process environment (for
// secrets set with t.Setenv).
func newTestServerEnv(t testing.TB, yaml string) *testServer {
	t.Helper()
	return newTestServerOpts(t, yaml, config.Options{})
}

func newTestServerOpts(t testing.TB, yaml string, opt config.Options) *testServer {
	t.Helper()
	cfg, err := config.Parse("test.yaml", []byte(yaml), opt)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ob, err := outbox.NewDir(outbox.DirConfig{Path: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ob.Close() })
	clock := &fakeClock{t: time.Now()}
	caps, err := cfg.Captchas(config.CaptchaDeps{Master: []byte("test master secret"), Replay: captcha.NewMemoryReplay(0, clock.Now), Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	logs := &bytes.Buffer{}
	log := slog.New(slog.NewJSONHandler(logs, nil))
	var g *guard.Guard // built after the metrics it counts into
	m := NewMetrics(MetricsConfig{Outbox: func(ctx context.Context) (OutboxStats, error) {
		s, err := ob.Stats(ctx, time.Now())
		return OutboxStats{Depth: s.Depth, Dead: s.Dead, OldestAge: s.OldestAge}, err
	}, GuardStats: func() guard.Stats { return g.Stats() }})
	gc := cfg.GuardConfig(caps)
	gc.ErrorHandler, gc.SuccessHandler = m.GuardHandlers()
	gc.Logger, gc.Now = log, clock.Now
	g, err = guard.New(gc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	challenges := map[string]http.Handler{}
	for name, p := range caps.PoW {
		challenges[name] = p.ChallengeHandler(name, nil)
	}
	demo, err := DemoFor(cfg, caps.Tokens)
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{
		Guard: g, Forms: cfg.FormNames(), Challenges: challenges, Tokens: tokenIssuers(caps.Tokens), Assets: widget.Handler(),
		Origins: cfg.Site.Origins, Metrics: m, Demo: demo, Logger: log,
		Ready: map[string]func(context.Context) error{"outbox": DirWritable(dir)},
		Deliver: func(ctx context.Context, sub *post.Submission) error {
			raw := fmt.Sprintf("From: no-reply@example.test\r\nMessage-ID: <%s@example.test>\r\n\r\n%s\r\n", sub.ID, sub.Message)
			return ob.Enqueue(ctx, &outbox.Message{Ref: sub.ID, From: cfg.Mail.Bounce, To: sub.Recipients, Raw: []byte(raw)})
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return &testServer{Server: s, clock: clock, dir: dir, cfg: cfg, outbox: ob, guard: g, metrics: m, logs: logs}
}

// fakeClock is the time seen by the guard and the verifiers, so tests move
// it instead of sleeping.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type req struct {
	method, path string
	body         string
	header       map[string]string
}

func (ts *testServer) do(t *testing.T, rq req) *http.Response {
	t.Helper()
	if rq.method == "" {
		rq.method = http.MethodPost
	}
	r := httptest.NewRequest(rq.method, rq.path, strings.NewReader(rq.body))
	r.RemoteAddr = "192.0.2.10:5555"
	if rq.method == http.MethodPost {
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.Header.Set("Origin", origin)
	}
	for k, v := range rq.header {
		if v == "" {
			r.Header.Del(k)
		} else {
			r.Header.Set(k, v)
		}
	}
	w := httptest.NewRecorder()
	ts.ServeHTTP(w, r)
	return w.Result()
}

func (ts *testServer) queued(t *testing.T) []*outbox.Message {
	t.Helper()
	msgs, err := ts.outbox.Claim(context.Background(), time.Now().Add(time.Hour), 100)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		if err := ts.outbox.Retry(context.Background(), m, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	return msgs
}

func body(t *testing.T, r *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func form(kv ...string) string {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Add(kv[i], kv[i+1])
	}
	return v.Encode()
}

var jsonAccept = map[string]string{"Accept": "application/json"}

func TestSubmit(t *testing.T) {
	good := form("name", "Ada", "email", "ada@example.org", "message", "Hello there")
	tests := []struct {
		name       string
		req        req
		wantStatus int
		wantCode   string // problem code, or "" for success
		wantQueued int
		wantHeader map[string]string
	}{
		{"a JSON client's good post is queued and answered with its id", req{path: "/f/hello", body: good, header: jsonAccept}, 200, "", 1, map[string]string{"Content-Type": "application/json"}},
		{"a JSON body is accepted", req{path: "/f/hello", body: `{"name":"Ada","email":"ada@example.org","message":"Hi"}`, header: map[string]string{"Content-Type": "application/json"}}, 200, "", 1, nil},
		{"a browser's good post gets the thank-you page", req{path: "/f/hello", body: good}, 200, "", 1, map[string]string{"Content-Type": "text/html; charset=utf-8"}},
		{"a form with success_url redirects there with 303", req{path: "/f/thanks", body: good}, 303, "", 1, map[string]string{"Location": "/thanks"}},
		{"a form with error_url redirects rejections there", req{path: "/f/thanks", body: form("name", "Ada", "email", "not-an-address", "message", "x")}, 303, "", 0, map[string]string{"Location": "/oops?error=invalid_email"}},
		{"a post from another site is refused", req{path: "/f/hello", body: good, header: map[string]string{"Origin": "https://evil.test", "Accept": "application/json"}}, 403, "bad_origin", 0, map[string]string{"Content-Type": "application/problem+json"}},
		{"an unknown form is 404 with a stable code", req{path: "/f/nope", body: good, header: jsonAccept}, 404, "unknown_form", 0, nil},
		{"GET on a form is refused", req{method: "GET", path: "/f/hello", header: jsonAccept}, 405, "method_not_allowed", 0, map[string]string{"Allow": "POST"}},
		{"header injection in the name is refused", req{path: "/f/hello", body: form("name", "Ada\r\nBcc: victim@example.org", "email", "ada@example.org", "message", "x"), header: jsonAccept}, 400, "header_injection", 0, nil},
		{"a contact form without its CAPTCHA is refused", req{path: "/f/contact", body: form("department", "sales", "name", "Ada", "email", "ada@example.org", "message", "x"), header: jsonAccept}, 400, "captcha_missing", 0, nil},
		{"a bot filling the honeypot is told it worked but nothing is queued", req{path: "/f/hello", body: good + "&_gotcha=http://spam.test", header: jsonAccept}, 200, "", 0, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ts := newTestServer(t, testConfig)
			resp := ts.do(t, tc.req)
			b := body(t, resp)
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status %d, want %d; body %s", resp.StatusCode, tc.wantStatus, b)
			}
			for k, v := range tc.wantHeader {
				if got := resp.Header.Get(k); got != v {
					t.Errorf("header %s = %q, want %q", k, got, v)
				}
			}
			if tc.wantCode != "" {
				var p struct {
					Code   string `json:"code"`
					Status int    `json:"status"`
				}
				if err := json.Unmarshal([]byte(b), &p); err != nil || p.Code != tc.wantCode || p.Status != tc.wantStatus {
					t.Errorf("problem = %+v (%v), want code %s; body %s", p, err, tc.wantCode, b)
				}
			}
			msgs := ts.queued(t)
			if len(msgs) != tc.wantQueued {
				t.Fatalf("queued %d messages, want %d", len(msgs), tc.wantQueued)
			}
			if tc.wantQueued == 1 && tc.wantStatus == 200 && strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
				var ok struct {
					OK bool   `json:"ok"`
					ID string `json:"id"`
				}
				if err := json.Unmarshal([]byte(b), &ok); err != nil || !ok.OK || ok.ID != msgs[0].Ref {
					t.Errorf("answer %s does not carry the queued submission's id %s", b, msgs[0].Ref)
				}
				if !strings.Contains(ts.logs.String(), `"msg":"delivery"`) || !strings.Contains(ts.logs.String(), ok.ID) {
					t.Errorf("no delivery log line with the id:\n%s", ts.logs)
				}
			}
		})
	}
}

func TestRateLimitAnswers429WithRetryAfter(t *testing.T) {
	ts := newTestServer(t, testConfig)
	good := form("name", "Ada", "email", "ada@example.org", "message", "Hello")
	for i := range 3 {
		// Distinct senders, so only the per-IP tier (3/h) is reached.
		b := strings.Replace(good, "ada%40", "ada"+strconv.Itoa(i)+"%40", 1)
		if resp := ts.do(t, req{path: "/f/hello", body: b, header: jsonAccept}); resp.StatusCode != 200 {
			t.Fatalf("post %d: status %d: %s", i, resp.StatusCode, body(t, resp))
		}
	}
	resp := ts.do(t, req{path: "/f/hello", body: strings.Replace(good, "ada%40", "ada9%40", 1), header: jsonAccept})
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("4th post: status %d, want 429", resp.StatusCode)
	}
	ra, err := strconv.Atoi(resp.Header.Get("Retry-After"))
	if err != nil || ra <= 0 || ra > 3600 {
		t.Errorf("Retry-After = %q", resp.Header.Get("Retry-After"))
	}
	if b := body(t, resp); !strings.Contains(b, `"code":"rate_limited"`) {
		t.Errorf("body %s", b)
	}
	if n := len(ts.queued(t)); n != 3 {
		t.Errorf("queued %d, want 3", n)
	}
}

func TestOutboxFailureIs503AndNothingAccepted(t *testing.T) {
	ts := newTestServer(t, testConfig)
	if err := ts.outbox.Close(); err != nil {
		t.Fatal(err)
	}
	good := form("name", "Ada", "email", "ada@example.org", "message", "Hello")
	for _, tc := range []struct {
		name   string
		header map[string]string
		check  func(t *testing.T, resp *http.Response, b string)
	}{
		{"json", jsonAccept, func(t *testing.T, resp *http.Response, b string) {
			if !strings.Contains(b, `"code":"outbox_unavailable"`) || strings.Contains(b, "closed") {
				t.Errorf("body %s (must carry the code and not the cause)", b)
			}
		}},
		{"html", nil, func(t *testing.T, resp *http.Response, b string) {
			if strings.Contains(b, "Thank you") || !strings.Contains(b, "could not be queued") {
				t.Errorf("body %s", b)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := ts.do(t, req{path: "/f/hello", body: good, header: tc.header})
			b := body(t, resp)
			if resp.StatusCode != http.StatusServiceUnavailable {
				t.Fatalf("status %d, want 503: %s", resp.StatusCode, b)
			}
			if resp.Header.Get("Retry-After") == "" {
				t.Error("no Retry-After")
			}
			tc.check(t, resp, b)
		})
	}
	if !strings.Contains(ts.logs.String(), `"outcome":"outbox_unavailable"`) {
		t.Errorf("no log line for the failed hand-over:\n%s", ts.logs)
	}
	if err := os.RemoveAll(ts.dir); err != nil {
		t.Fatal(err)
	}
	resp := ts.do(t, req{method: "GET", path: "/readyz"})
	if b := body(t, resp); resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(b, `"outbox":"fail"`) {
		t.Errorf("/readyz with the outbox directory gone: %d %s", resp.StatusCode, b)
	}
}

// solvePoW does what the browser widget does: fetch a challenge, find the
// number, and encode the ALTCHA payload.
func solvePoW(t testing.TB, h http.Handler, form string) string {
	t.Helper()
	r := httptest.NewRequest("GET", "/f/"+form+"/challenge", nil)
	r.Header.Set("Origin", origin)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != 200 {
		t.Fatalf("challenge: %d %s", w.Code, w.Body)
	}
	if w.Header().Get("Access-Control-Allow-Origin") != origin {
		t.Errorf("challenge lacks CORS for the site origin")
	}
	var ch captcha.Challenge
	if err := json.Unmarshal(w.Body.Bytes(), &ch); err != nil {
		t.Fatal(err)
	}
	return SolveChallenge(t, ch)
}

// SolveChallenge brute-forces a proof-of-work challenge.
func SolveChallenge(t testing.TB, ch captcha.Challenge) string {
	for n := int64(0); n <= ch.MaxNumber; n++ {
		sum := sha256.Sum256([]byte(ch.Salt + strconv.FormatInt(n, 10)))
		if hex.EncodeToString(sum[:]) == ch.Challenge {
			b, _ := json.Marshal(captcha.PoWPayload{Algorithm: ch.Algorithm, Challenge: ch.Challenge, Number: n, Salt: ch.Salt, Signature: ch.Signature})
			return base64.StdEncoding.EncodeToString(b)
		}
	}
	t.Fatal("challenge has no solution")
	return ""
}

func TestProofOfWork(t *testing.T) {
	ts := newTestServer(t, testConfig)
	sol := solvePoW(t, ts, "contact")
	post := form("department", "sales", "name", "Ada", "email", "ada@example.org", "message", "Hello", "altcha", sol)
	resp := ts.do(t, req{path: "/f/contact", body: post, header: jsonAccept})
	if resp.StatusCode != 200 {
		t.Fatalf("solved post: %d %s", resp.StatusCode, body(t, resp))
	}
	msgs := ts.queued(t)
	if len(msgs) != 1 || len(msgs[0].To) != 1 || msgs[0].To[0] != "sales@example.test" {
		t.Fatalf("queued %+v, want one message to sales@", msgs)
	}
	// The same solution twice is a replay.
	resp = ts.do(t, req{path: "/f/contact", body: strings.Replace(post, "ada%40", "bob%40", 1), header: jsonAccept})
	if b := body(t, resp); resp.StatusCode != http.StatusForbidden || !strings.Contains(b, "captcha_invalid") {
		t.Errorf("replayed solution: %d %s", resp.StatusCode, b)
	}
	// Forms without a proof of work have no challenge endpoint.
	if resp := ts.do(t, req{method: "GET", path: "/f/hello/challenge"}); resp.StatusCode != 404 {
		t.Errorf("challenge for a form without pow: %d", resp.StatusCode)
	}
}

func TestShareForm(t *testing.T) {
	ts := newTestServer(t, testConfig)
	post := func(to string) *http.Response {
		sol := solvePoW(t, ts, "share")
		return ts.do(t, req{path: "/f/share", header: jsonAccept,
			body: form("to", to, "url", origin+"/post/1", "name", "Ada", "message", "Look", "altcha", sol)})
	}
	if resp := post("friend@example.org, other@example.net"); resp.StatusCode != 200 {
		t.Fatalf("share to two: %d %s", resp.StatusCode, body(t, resp))
	}
	if resp := post("a@example.org,b@example.org,c@example.org"); resp.StatusCode != 422 {
		t.Errorf("share to three (max 2): %d", resp.StatusCode)
	}
	msgs := ts.queued(t)
	if len(msgs) != 1 || len(msgs[0].To) != 2 {
		t.Fatalf("queued %+v", msgs)
	}
}

func TestCORS(t *testing.T) {
	ts := newTestServer(t, testConfig)
	tests := []struct {
		name      string
		origin    string
		wantAllow string
	}{
		{"the site's origin may post cross-origin", origin, origin},
		{"another origin gets no CORS headers", "https://evil.test", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp := ts.do(t, req{method: "OPTIONS", path: "/f/hello", header: map[string]string{
				"Origin": tc.origin, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}})
			if resp.StatusCode != http.StatusNoContent {
				t.Fatalf("preflight: %d", resp.StatusCode)
			}
			if got := resp.Header.Get("Access-Control-Allow-Origin"); got != tc.wantAllow {
				t.Errorf("Allow-Origin = %q, want %q", got, tc.wantAllow)
			}
			if tc.wantAllow != "" {
				if resp.Header.Get("Access-Control-Allow-Methods") != "POST" || !strings.Contains(resp.Header.Get("Access-Control-Allow-Headers"), "Content-Type") {
					t.Errorf("preflight headers %v", resp.Header)
				}
				if resp.Header.Get("Access-Control-Allow-Credentials") != "" {
					t.Error("credentials must never be allowed")
				}
			}
		})
	}
	resp := ts.do(t, req{path: "/f/hello", body: form("name", "Ada", "email", "ada@example.org", "message", "x"), header: jsonAccept})
	if resp.Header.Get("Access-Control-Allow-Origin") != origin || !strings.Contains(resp.Header.Get("Access-Control-Expose-Headers"), "Retry-After") {
		t.Errorf("actual request CORS headers: %v", resp.Header)
	}
}

func TestHealthReadyMetrics(t *testing.T) {
	ts := newTestServer(t, testConfig)
	ts.do(t, req{path: "/f/hello", body: form("name", "Ada", "email", "ada@example.org", "message", "x"), header: jsonAccept})
	ts.do(t, req{path: "/f/hello", body: form("name", "Ada", "email", "ada@example.org", "message", "x", "_gotcha", "y"), header: jsonAccept})
	ts.do(t, req{path: "/f/hello", body: "x", header: map[string]string{"Origin": "https://evil.test"}})
	ts.do(t, req{path: "/f/" + strings.Repeat("z", 50), body: "x"})
	tests := []struct {
		path   string
		status int
		want   []string
	}{
		{"/healthz", 200, []string{`"status":"ok"`}},
		{"/readyz", 200, []string{`"outbox":"ok"`}},
		{"/metrics", 200, []string{
			`formguard_decisions_total{code="accepted",form="hello"} 1`,
			`formguard_decisions_total{code="honeypot",form="hello"} 1`,
			`formguard_decisions_total{code="bad_origin",form="hello"} 1`,
			`formguard_decisions_total{code="unknown_form",form=""} 1`,
			`formguard_deliveries_total{form="hello",result="queued"} 1`,
			`formguard_outbox_depth 1`,
			`formguard_outbox_up 1`,
			`formguard_http_request_duration_seconds_bucket{route="submit",status="2xx"`,
			`formguard_outbox_enqueue_duration_seconds_count 1`,
		}},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			resp := ts.do(t, req{method: "GET", path: tc.path})
			b := body(t, resp)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d: %s", resp.StatusCode, b)
			}
			for _, w := range tc.want {
				if !strings.Contains(b, w) {
					t.Errorf("missing %s", w)
				}
			}
		})
	}
}

func TestDemoPageAndAssets(t *testing.T) {
	ts := newTestServer(t, testConfig)
	resp := ts.do(t, req{method: "GET", path: "/"})
	b := body(t, resp)
	if resp.StatusCode != 200 {
		t.Fatalf("GET /: %d", resp.StatusCode)
	}
	for _, w := range []string{
		`action="/f/contact" data-formguard-pow="/f/contact/challenge"`,
		`action="/f/share" data-formguard-pow="/f/share/challenge"`,
		`action="/f/hello">`,
		`<select name="department"`, `<option value="sales">`,
		`name="_gotcha"`, `<script src="/assets/formguard-pow.js" defer>`,
		`value="http://site.test/"`,
		`-d message=Hello http://site.test/f/hello</code>`,
	} {
		if !strings.Contains(b, w) {
			t.Errorf("demo page lacks %s", w)
		}
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("CSP %q", csp)
	}
	for _, p := range []string{"/assets/formguard-pow.js", "/assets/formguard-pow-worker.js"} {
		resp := ts.do(t, req{method: "GET", path: p})
		if resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Content-Type"), "javascript") {
			t.Errorf("%s: %d %s", p, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
	}
	if resp := ts.do(t, req{method: "GET", path: "/nothing-here"}); resp.StatusCode != 404 {
		t.Errorf("unknown path: %d", resp.StatusCode)
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	ts := newTestServer(t, testConfig)
	deliver := func(context.Context, *post.Submission) error { return nil }
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"no guard", Config{Deliver: deliver, Forms: []string{"hello"}}, "server: Guard is required"},
		{"no deliver", Config{Guard: ts.guard, Forms: []string{"hello"}}, "server: Deliver is required"},
		{"no forms", Config{Guard: ts.guard, Deliver: deliver}, "server: Forms"},
		{"unknown form", Config{Guard: ts.guard, Deliver: deliver, Forms: []string{"nope"}}, `server: form "nope" is not configured`},
		{"bad origin", Config{Guard: ts.guard, Deliver: deliver, Forms: []string{"hello"}, Origins: []string{"site.test"}}, "server: Origins"},
		{"challenge for unknown form", Config{Guard: ts.guard, Deliver: deliver, Forms: []string{"hello"}, Challenges: map[string]http.Handler{"x": http.NotFoundHandler()}}, "server: challenge for unknown form"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want %q", err, tc.want)
			}
		})
	}
}
