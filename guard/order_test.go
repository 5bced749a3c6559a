package guard_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/formguard/formguard/guard"
	"github.com/formguard/formguard/guard/captcha"
	"github.com/formguard/formguard/guard/ratelimit"
	"github.com/formguard/formguard/guard/ratelimit/redisstore"
	"github.com/formguard/formguard/internal/testutil"
)

var tokenKey = []byte("0123456789abcdef0123456789abcdef")

// tokenGuard is a Guard whose "tok" form needs a signed form token
// recorded in replay.
func tokenGuard(t *testing.T, mod ...func(*guard.Config)) (*guard.Guard, *clock, *captcha.FormToken, *captcha.MemoryReplay) {
	t.Helper()
	var ft *captcha.FormToken
	var replay *captcha.MemoryReplay
	g, c := newGuard(t, append([]func(*guard.Config){func(cfg *guard.Config) {
		replay = captcha.NewMemoryReplay(0, cfg.Now)
		var err error
		ft, err = captcha.NewFormToken(captcha.FormTokenConfig{Keys: [][]byte{tokenKey}, Replay: replay, Now: cfg.Now})
		if err != nil {
			t.Fatal(err)
		}
		cfg.Forms["tok"] = guard.Form{To: []string{"tok@example.test"}, Token: ft}
	}}, mod...)...)
	return g, c, ft, replay
}

func issue(t *testing.T, ft *captcha.FormToken, n int) []string {
	t.Helper()
	out := make([]string, n)
	for i := range out {
		tok, err := ft.Issue("tok")
		if err != nil {
			t.Fatal(err)
		}
		out[i] = tok
	}
	return out
}

func sender(i int) string { return fmt.Sprintf("visitor%d@example.org", i) }

// TestClientLimitsComeBeforeTheVerifiers: a rate-limited or banned client
// is refused before its token reaches the replay store, so one client can
// record at most its own budget of tokens (issue 14, item 1).
func TestClientLimitsComeBeforeTheVerifiers(t *testing.T) {
	t.Run("a flood from one client records no more tokens than its budget", func(t *testing.T) {
		g, c, ft, replay := tokenGuard(t)
		toks := issue(t, ft, 100)
		c.Add(5 * time.Second) // past the minimum fill time
		accepted := 0
		var refused *guard.Error
		for i, tok := range toks {
			_, err := g.CheckForm(nil, req{remote: "192.0.2.1:1", body: contactFrom(sender(i)) + "&_fg_token=" + tok}.build(), "tok")
			if err == nil {
				accepted++
				continue
			}
			refused = guard.AsError(err)
			if refused.Code != "rate_limited" {
				t.Fatalf("post %d: %v", i, err)
			}
		}
		if accepted != guard.DefaultPerIP.Count || replay.Len() != guard.DefaultPerIP.Count {
			t.Fatalf("accepted %d, tokens recorded %d; want %d each", accepted, replay.Len(), guard.DefaultPerIP.Count)
		}
		if !strings.Contains(refused.Error(), "tier ip") {
			t.Errorf("refusal %v, want tier ip", refused)
		}
		// A refused post's token was never used: it is good once the
		// client's budget is back.
		c.Add(refused.RetryAfter)
		if _, err := g.CheckForm(nil, req{remote: "192.0.2.1:1", body: contactFrom("late@example.org") + "&_fg_token=" + toks[99]}.build(), "tok"); err != nil {
			t.Fatalf("unused token after the wait: %v", err)
		}
	})
	t.Run("a banned client is refused before its token is recorded", func(t *testing.T) {
		g, c, ft, replay := tokenGuard(t)
		for range 10 {
			if _, err := g.CheckForm(nil, req{remote: "192.0.2.2:1", body: contact("bcc", "x@evil.test")}.build(), "tok"); !isCode(err, "forbidden_field") {
				t.Fatal(err)
			}
		}
		toks := issue(t, ft, 3)
		c.Add(5 * time.Second)
		for _, tok := range toks {
			if _, err := g.CheckForm(nil, req{remote: "192.0.2.2:1", body: contactFrom("ada@example.org") + "&_fg_token=" + tok}.build(), "tok"); !isCode(err, "banned") {
				t.Fatalf("banned client: %v", err)
			}
		}
		if replay.Len() != 0 {
			t.Fatalf("%d tokens of a banned client recorded", replay.Len())
		}
		if _, err := g.CheckForm(nil, req{remote: "192.0.2.3:1", body: contactFrom("ada@example.org") + "&_fg_token=" + toks[0]}.build(), "tok"); err != nil {
			t.Fatalf("another client: %v", err)
		}
	})
}

// TestBannedClientSpendsNoSiteverify: once banned, a client's CAPTCHA
// tokens never reach the provider (issue 14, item 2).
func TestBannedClientSpendsNoSiteverify(t *testing.T) {
	var calls atomic.Int64
	provider := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"success":false,"error-codes":["invalid-input-response"]}`))
	}))
	defer provider.Close()
	big := ratelimit.Limit{Count: 1_000_000, Period: time.Hour}
	g, _ := newGuard(t, func(cfg *guard.Config) {
		ts, err := captcha.NewTurnstile(captcha.TurnstileConfig{Secret: "s", Hostnames: []string{"example.test"}, VerifyURL: provider.URL, Now: cfg.Now})
		if err != nil {
			t.Fatal(err)
		}
		cfg.Forms["ts"] = guard.Form{To: []string{"ts@example.test"}, Captcha: ts, Limits: guard.Limits{PerIP: big, PerNetwork: big, PerSender: big}}
	})
	codes := map[string]int{}
	for i := range 50 {
		_, err := g.CheckForm(nil, req{remote: "192.0.2.1:1", body: contact(captcha.TurnstileField, fmt.Sprint("junk-", i))}.build(), "ts")
		codes[guard.AsError(err).Code]++
	}
	ban := ratelimit.DefaultBanThreshold
	if codes["captcha_invalid"] != ban || codes["banned"] != 50-ban || calls.Load() != int64(ban) {
		t.Fatalf("codes %v, siteverify calls %d; want %d invalid then banned, %d calls", codes, calls.Load(), ban, ban)
	}
}

// TestNetworkTier: addresses of one IPv4 /24 or IPv6 /48 share a budget,
// so rotating through an allocation gains nothing.
func TestNetworkTier(t *testing.T) {
	three := ratelimit.Limit{Count: 3, Period: time.Hour}
	for _, tc := range []struct{ name, a, b, c, d, other string }{
		{"IPv4 /24", "192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.200", "192.0.3.1"},
		{"IPv6 /48", "[2001:db8:1:1::1]", "[2001:db8:1:2::1]", "[2001:db8:1:ff::1]", "[2001:db8:1:ffff::9]", "[2001:db8:2::1]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, _ := newGuard(t, func(cfg *guard.Config) {
				f := cfg.Forms["contact"]
				f.Limits.PerNetwork = three
				cfg.Forms["contact"] = f
			})
			for i, a := range []string{tc.a, tc.b, tc.c} {
				if _, err := g.CheckForm(nil, req{remote: a + ":1", body: contactFrom(sender(i))}.build(), "contact"); err != nil {
					t.Fatalf("%s: %v", a, err)
				}
			}
			_, err := g.CheckForm(nil, req{remote: tc.d + ":1", body: contactFrom(sender(9))}.build(), "contact")
			if !isCode(err, "rate_limited") || !strings.Contains(err.Error(), "tier network") {
				t.Fatalf("fourth address of the network: %v", err)
			}
			if _, err := g.CheckForm(nil, req{remote: tc.other + ":1", body: contactFrom(sender(9))}.build(), "contact"); err != nil {
				t.Fatalf("next network: %v", err)
			}
		})
	}
}

// TestAddressVariantsShareABudget: the sender and recipient tiers count
// a mailbox however it is spelt, while mail goes to the address as given.
func TestAddressVariantsShareABudget(t *testing.T) {
	t.Run("Reply-To", func(t *testing.T) {
		g, _ := newGuard(t)
		for i, a := range []string{"victim+1@gmail.com", "v.ictim@gmail.com", "VICTIM@googlemail.com"} {
			s, err := g.CheckForm(nil, req{remote: fmt.Sprintf("198.51.%d.1:1", i), body: contactFrom(a)}.build(), "contact")
			if err != nil {
				t.Fatalf("%s: %v", a, err)
			}
			if !strings.HasPrefix(s.ReplyTo, strings.Split(a, "@")[0]+"@") {
				t.Errorf("ReplyTo %q, want the address as given (%q)", s.ReplyTo, a)
			}
		}
		_, err := g.CheckForm(nil, req{remote: "198.51.9.1:1", body: contactFrom("Vic.Tim+news@GMail.com.")}.build(), "contact")
		if !isCode(err, "rate_limited") || !strings.Contains(err.Error(), "tier sender") {
			t.Fatalf("fourth spelling of one sender: %v", err)
		}
		if _, err := g.CheckForm(nil, req{remote: "198.51.9.1:1", body: contactFrom("victim2@gmail.com")}.build(), "contact"); err != nil {
			t.Fatalf("another mailbox: %v", err)
		}
	})
	t.Run("recipient", func(t *testing.T) {
		g, _ := newGuard(t)
		for i, a := range []string{"victim+1@example.org", "VICTIM@Example.org"} {
			s, err := g.CheckForm(nil, req{remote: fmt.Sprintf("198.51.%d.1:1", i), body: form("to", a, "url", "https://example.test/")}.build(), "share")
			if err != nil {
				t.Fatalf("%s: %v", a, err)
			}
			if len(s.Recipients) != 1 || !strings.HasPrefix(s.Recipients[0], strings.Split(a, "@")[0]+"@") {
				t.Errorf("recipients %v, want the address as given (%q)", s.Recipients, a)
			}
		}
		_, err := g.CheckForm(nil, req{remote: "198.51.9.1:1", body: form("to", "Victim+news@example.org.", "url", "https://example.test/")}.build(), "share")
		if !isCode(err, "rate_limited") || !strings.Contains(err.Error(), "tier recipient") {
			t.Fatalf("third spelling of one recipient: %v", err)
		}
	})
}

// TestRateLimitHeadersOnlyOnRefusals: an accept carries no rate-limit
// headers (a honeypot decoy could not carry true ones), a 429 does.
func TestRateLimitHeadersOnlyOnRefusals(t *testing.T) {
	g, _ := newGuard(t)
	names := []string{"RateLimit", "RateLimit-Policy", "Retry-After"}
	for i := range guard.DefaultPerIP.Count {
		w := httptest.NewRecorder()
		if _, err := g.CheckForm(w, req{body: contactFrom(sender(i))}.build(), "contact"); err != nil {
			t.Fatal(err)
		}
		for _, h := range names {
			if v := w.Header().Values(h); len(v) > 0 {
				t.Fatalf("accept carries %s: %q", h, v)
			}
		}
	}
	w := httptest.NewRecorder()
	if _, err := g.CheckForm(w, req{body: contactFrom(sender(9))}.build(), "contact"); !isCode(err, "rate_limited") {
		t.Fatal(err)
	}
	for _, h := range names {
		if w.Header().Get(h) == "" {
			t.Errorf("429 without %s: %v", h, w.Header())
		}
	}
	if p := w.Header().Get("RateLimit-Policy"); p != `"ip";q=5;w=3600` {
		t.Errorf("RateLimit-Policy %q", p)
	}
}

// TestSharedTierRefusalDoesNotEscalate: harder puzzles are for the client
// that used up its own budget, not for everyone once a shared tier is full.
func TestSharedTierRefusalDoesNotEscalate(t *testing.T) {
	g, _ := newGuard(t, func(cfg *guard.Config) { cfg.Global = ratelimit.Limit{Count: 1, Period: time.Hour} })
	if _, err := g.CheckForm(nil, req{remote: "192.0.2.1:1", body: contact()}.build(), "contact"); err != nil {
		t.Fatal(err)
	}
	_, err := g.CheckForm(nil, req{remote: "198.51.100.1:1", body: contactFrom("b@example.org")}.build(), "contact")
	if !isCode(err, "rate_limited") || !strings.Contains(err.Error(), "tier global") {
		t.Fatalf("over the global tier: %v", err)
	}
	if f := g.Escalate(g.ClientKey(netip.MustParseAddr("198.51.100.1"))); f != 1 {
		t.Errorf("Escalate after a global refusal = %d, want 1", f)
	}
}

// TestRedisDownIsLimiterUnavailable: with the limits and the replay store
// on one Redis, a Redis outage answers 503 limiter_unavailable, as
// docs/deployment.md says, not captcha_unavailable (issue 14, item 7).
func TestRedisDownIsLimiterUnavailable(t *testing.T) {
	srv := testutil.StartRedis(t)
	client := redis.NewClient(&redis.Options{Addr: srv.Addr, MaxRetries: -1, ContextTimeoutEnabled: true})
	t.Cleanup(func() { _ = client.Close() })
	// Generous timeouts: "up" must not read as down on a loaded machine.
	store, err := redisstore.New(redisstore.Config{Client: client, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	var ft *captcha.FormToken
	g, c := newGuard(t, func(cfg *guard.Config) {
		cfg.Store = store
		replay := redisstore.NewReplayCache(client, "")
		replay.SetTimeout(5 * time.Second)
		ft, err = captcha.NewFormToken(captcha.FormTokenConfig{Keys: [][]byte{tokenKey}, Replay: replay, Now: cfg.Now})
		if err != nil {
			t.Fatal(err)
		}
		cfg.Forms["tok"] = guard.Form{To: []string{"tok@example.test"}, Token: ft}
	})
	toks := issue(t, ft, 2)
	c.Add(5 * time.Second)
	if _, err := g.CheckForm(nil, req{body: contact("_fg_token", toks[0])}.build(), "tok"); err != nil {
		t.Fatalf("with Redis up: %v", err)
	}
	srv.Stop()
	_, err = g.CheckForm(nil, req{body: contactFrom("b@example.org") + "&_fg_token=" + toks[1]}.build(), "tok")
	if e := guard.AsError(err); err == nil || e.Code != "limiter_unavailable" || e.Status != http.StatusServiceUnavailable {
		t.Fatalf("with Redis down: %v", err)
	}
	if err := client.Ping(context.Background()).Err(); err == nil {
		t.Fatal("Redis still answers")
	}
}
