package server

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/formguard/formguard/guard"
	"github.com/formguard/formguard/guard/captcha"
	"github.com/formguard/formguard/guard/ratelimit"
	"github.com/formguard/formguard/internal/testutil"
)

// metricValue is the value of the series named exactly series (name and
// labels) in a Prometheus text exposition, or -1 when it is absent.
func metricValue(exposition, series string) float64 {
	for _, l := range strings.Split(exposition, "\n") {
		if v, ok := strings.CutPrefix(l, series+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err == nil {
				return f
			}
		}
	}
	return -1
}

// TestDecisionsCountedExactly: /metrics counts every decision, one by one,
// however many log lines sampling leaves out, and exports the guard's
// running totals.
func TestDecisionsCountedExactly(t *testing.T) {
	ts := newTestServer(t, testConfig)
	post := func(remote string, b string, hdr map[string]string) {
		r := httptest.NewRequest(http.MethodPost, "/f/hello", strings.NewReader(b))
		r.RemoteAddr = remote
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.Header.Set("Origin", origin)
		for k, v := range hdr {
			r.Header.Set(k, v)
		}
		ts.ServeHTTP(httptest.NewRecorder(), r)
	}
	good := form("name", "Ada", "email", "ada@example.org", "message", "Hello")
	const offsite, honeypots = 60, 30
	for range offsite { // one client, the same refusal again and again
		post("192.0.2.50:1", good, map[string]string{"Origin": "https://evil.test"})
	}
	for i := range honeypots { // a bot on many addresses
		post(fmt.Sprintf("198.51.100.%d:1", i+1), good+"&_gotcha=x", nil)
	}
	b := body(t, ts.do(t, req{method: "GET", path: "/metrics"}))
	for series, want := range map[string]float64{
		`formguard_decisions_total{code="bad_origin",form="hello"}`: offsite,
		`formguard_decisions_total{code="honeypot",form="hello"}`:   honeypots,
		"formguard_log_lines_suppressed_total":                      float64(ts.guard.Stats().LogSuppressed),
		"formguard_penalty_errors_total":                            float64(ts.guard.Stats().PenaltyErrors),
	} {
		if got := metricValue(b, series); got != want {
			t.Errorf("%s = %v, want %v", series, got, want)
		}
	}
}

// TestPenaltyErrorsCounted: with Redis gone, the offences of honeypot hits
// cannot be recorded; the hits are still answered, and /metrics (on the
// admin listener) counts the failed writes.
func TestPenaltyErrorsCounted(t *testing.T) {
	r := testutil.StartRedis(t)
	base, admin, svc, _, _ := startServiceAdmin(t, serviceConfig+"redis_url: "+r.URL()+"\nadmin_listen: ADMIN\n")
	_, m := get(t, admin+"/metrics")
	if got := metricValue(m, "formguard_penalty_errors_total"); got != 0 {
		t.Fatalf("formguard_penalty_errors_total = %v before any offence, want 0", got)
	}
	r.Stop()
	if code, b := postHelloTo(t, base, "&_gotcha=x"); code != 200 {
		t.Fatalf("honeypot hit with redis down: %d %s", code, b)
	}
	waitFor(t, "a counted penalty error", func() bool {
		_, m = get(t, admin+"/metrics")
		return metricValue(m, "formguard_penalty_errors_total") >= 1
	})
	if got, want := metricValue(m, "formguard_penalty_errors_total"), float64(svc.guard.Stats().PenaltyErrors); got > want {
		t.Errorf("formguard_penalty_errors_total %v, more than the guard counted (%v)", got, want)
	}
}

const capacityConfig = `
data_dir: DATA
site: {domain: example.test, name: Example, origins: ["http://site.test"]}
mail:
  from: no-reply@example.test
  dkim: {generate: true}
captcha: {pow: {max_number: 1000}}
limits: {global: 1000000/h KNOBS}
forms:
  hello:
    to: [support@example.test]
    captcha: {provider: none}
    limits: {per_network: 1000000/h, per_sender: 1000000/h, per_form: 1000000/h}
  pow: {to: [support@example.test]}
`

// TestCapacityKnobs: limits.replay_entries and limits.memory_keys bound the
// in-memory replay cache and rate-limit store, whatever a full one then
// does; without them the same traffic holds more.
func TestCapacityKnobs(t *testing.T) {
	for _, tc := range []struct {
		name                 string
		knobs                string
		maxReplay, maxKeys   int // bounds that must hold
		wantReplay, moreKeys int // without the knobs: exact replay entries, and more keys than
	}{
		{"knobs set", ", replay_entries: 3, memory_keys: 1024", 3, 1024, -1, -1},
		{"defaults", "", -1, -1, 5, 1024},
	} {
		t.Run(tc.name, func(t *testing.T) {
			y := strings.ReplaceAll(strings.ReplaceAll(capacityConfig, "DATA", t.TempDir()), " KNOBS", tc.knobs)
			cfg := parseConfig(t, y)
			svc, err := Open(context.Background(), cfg, Options{Logger: slog.New(slog.DiscardHandler), SkipDoctor: true})
			if err != nil {
				t.Fatal(err)
			}
			defer svc.Close()
			check := func(remote, form, body string) {
				r := httptest.NewRequest(http.MethodPost, "/f/"+form, strings.NewReader(body))
				r.RemoteAddr = remote
				r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				r.Header.Set("Origin", origin)
				_, _ = svc.guard.CheckForm(httptest.NewRecorder(), r, form)
			}
			// Five visitors, each with a solved proof of work.
			for i := range 5 {
				remote := fmt.Sprintf("203.0.%d.1:1", i)
				r := httptest.NewRequest(http.MethodGet, "/f/pow/challenge", nil)
				r.RemoteAddr = remote
				w := httptest.NewRecorder()
				svc.Handler().ServeHTTP(w, r)
				var ch captcha.Challenge
				if err := json.Unmarshal(w.Body.Bytes(), &ch); err != nil {
					t.Fatalf("challenge: %v %s", err, w.Body)
				}
				check(remote, "pow", form("name", "Ada", "email", "ada@example.org", "message", "Hi", "altcha", SolveChallenge(t, ch)))
			}
			replay := svc.replay.(*captcha.MemoryReplay).Len()
			// Then 1100 visitors from distinct addresses.
			for i := range 1100 {
				check(fmt.Sprintf("10.1.%d.%d:1", i/250, i%250+1), "hello", form("name", "Ada", "email", "ada@example.org", "message", "Hi"))
			}
			keys := svc.store.(*ratelimit.Memory).Len()
			if tc.maxReplay >= 0 && replay > tc.maxReplay {
				t.Errorf("replay cache holds %d entries, over replay_entries %d", replay, tc.maxReplay)
			}
			if tc.wantReplay >= 0 && replay != tc.wantReplay {
				t.Errorf("replay cache holds %d entries, want %d (one per solved challenge)", replay, tc.wantReplay)
			}
			if tc.maxKeys >= 0 && keys > tc.maxKeys {
				t.Errorf("rate-limit store holds %d keys, over memory_keys %d", keys, tc.maxKeys)
			}
			if tc.moreKeys >= 0 && keys <= tc.moreKeys {
				t.Errorf("rate-limit store holds %d keys, want over %d (a key per visitor)", keys, tc.moreKeys)
			}
			// What a full store forgot is counted in /metrics, and only then.
			w := httptest.NewRecorder()
			svc.Handler().ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/metrics", nil))
			full := tc.maxKeys >= 0
			for _, series := range []string{"formguard_ratelimit_evictions_total", "formguard_replay_evictions_total"} {
				if got := metricValue(w.Body.String(), series); (got > 0) != full {
					t.Errorf("%s = %v; want > 0 exactly when the knobs are set (%v)", series, got, full)
				}
			}
			if got := metricValue(w.Body.String(), "formguard_offences_dropped_total"); got != 0 {
				t.Errorf("formguard_offences_dropped_total = %v on the memory store, want 0", got)
			}
		})
	}
}

// TestPerNetworkLimit: limits.per_network is one budget for an IPv4 /24 or
// an IPv6 /48, however many addresses in it post.
func TestPerNetworkLimit(t *testing.T) {
	y := testConfig + "  net:\n    to: [support@example.test]\n    captcha: {provider: none}\n    limits: {per_ip: 5/h, per_network: 2/h}\n"
	ts := newTestServer(t, y)
	if got := ts.cfg.GuardConfig(nil).Forms["net"].Limits.PerNetwork; got != (ratelimit.Limit{Count: 2, Period: time.Hour}) {
		t.Fatalf("guard form's PerNetwork = %v, want 2/h", got)
	}
	if got := ts.cfg.GuardConfig(nil).Forms["hello"].Limits.PerNetwork; got != guard.DefaultPerNetwork {
		t.Errorf("an unset per_network is %v, want guard.DefaultPerNetwork %v", got, guard.DefaultPerNetwork)
	}
	for i, step := range []struct {
		remote string
		want   int
	}{
		{"192.0.2.1:1", 200},
		{"192.0.2.2:1", 200},
		{"192.0.2.3:1", 429},         // the /24's third post
		{"198.51.100.1:1", 200},      // another /24
		{"[2001:db8:1:1::1]:1", 200}, // a /64 ...
		{"[2001:db8:1:2::1]:1", 200}, // ... another /64 of the same /48
		{"[2001:db8:1:3::1]:1", 429},
		{"[2001:db8:2::1]:1", 200}, // another /48
	} {
		r := httptest.NewRequest(http.MethodPost, "/f/net", strings.NewReader(
			form("name", "Ada", "email", fmt.Sprintf("ada%d@example.org", i), "message", "Hi")))
		r.RemoteAddr = step.remote
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.Header.Set("Origin", origin)
		r.Header.Set("Accept", "application/json")
		w := httptest.NewRecorder()
		ts.ServeHTTP(w, r)
		if w.Code != step.want {
			t.Errorf("post %d from %s: %d, want %d: %s", i, step.remote, w.Code, step.want, w.Body)
		}
	}
}

const redisDownConfig = serviceConfig + `  pow: {to: [support@example.test], captcha: {provider: pow, pow: {max_number: 1000}}}
  tok:
    to: [support@example.test]
    captcha: {provider: none}
    form_token: {min_fill: 10ms}
`

// TestRedisDownIsLimiterUnavailable: with Redis down and no fallback,
// every form answers 503 limiter_unavailable (docs/deployment.md), also
// forms whose single-use tokens are recorded in Redis: the rate-limit
// decision comes first.
func TestRedisDownIsLimiterUnavailable(t *testing.T) {
	r := testutil.StartRedis(t)
	base, _, _, _, _ := startServiceAdmin(t, redisDownConfig+"redis_url: "+r.URL()+"\n")
	_, chBody := get(t, base+"/f/pow/challenge")
	var ch captcha.Challenge
	if err := json.Unmarshal([]byte(chBody), &ch); err != nil {
		t.Fatalf("challenge: %v %s", err, chBody)
	}
	_, tokBody := get(t, base+"/f/tok/token")
	var tok struct{ Token string }
	if err := json.Unmarshal([]byte(tokBody), &tok); err != nil || tok.Token == "" {
		t.Fatalf("token: %v %s", err, tokBody)
	}
	posts := map[string]url.Values{
		"hello": {},
		"pow":   {"altcha": {SolveChallenge(t, ch)}},
		"tok":   {"_fg_token": {tok.Token}},
	}
	r.Stop()
	time.Sleep(20 * time.Millisecond) // past the token's min_fill
	for name, extra := range posts {
		v := url.Values{"name": {"Ada"}, "email": {"ada@example.org"}, "message": {"Hello"}}
		for k, vs := range extra {
			v[k] = vs
		}
		req, _ := http.NewRequest("POST", base+"/f/"+name, strings.NewReader(v.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", "http://site.test")
		req.Header.Set("Accept", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(b), `"code":"limiter_unavailable"`) {
			t.Errorf("form %s with redis down: %d %s, want 503 limiter_unavailable", name, resp.StatusCode, b)
		}
	}
}
