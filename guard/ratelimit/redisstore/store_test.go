package redisstore

import (
	"context"
	"encoding/binary"
	"errors"
	"math"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/formguard/formguard/guard/ratelimit"
	"github.com/formguard/formguard/internal/testutil"
)

func newClient(t testing.TB, r *testutil.Redis) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{
		Addr: r.Addr, MaxRetries: -1, ContextTimeoutEnabled: true,
		DialTimeout: 200 * time.Millisecond, ReadTimeout: time.Second, WriteTimeout: time.Second,
	})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// testTimeout replaces the 50 ms production default in tests that are not
// about timeouts: the shared CI box can be slower than that under load.
const testTimeout = 2 * time.Second

func newStore(t testing.TB, cfg Config) *Store {
	t.Helper()
	if cfg.Timeout == 0 {
		cfg.Timeout = testTimeout
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func lim(s string) ratelimit.Limit {
	l, err := ratelimit.ParseLimit(s)
	if err != nil {
		panic(err)
	}
	return l
}

// shiftTime moves every TAT and ban record of prefix d into the past, as if
// d had elapsed on Redis's clock, so refill is tested without sleeping.
func shiftTime(t *testing.T, c *redis.Client, prefix string, d time.Duration) {
	t.Helper()
	ctx := context.Background()
	us := float64(d.Microseconds())
	keys, err := c.Keys(ctx, prefix+":{"+prefix+"}:*").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if strings.Contains(k, "}:b:") {
			v, err := c.HMGet(ctx, k, "w", "u").Result()
			if err != nil {
				t.Fatal(err)
			}
			fields := map[string]any{}
			for i, f := range []string{"w", "u"} {
				x, _ := strconv.ParseFloat(v[i].(string), 64)
				fields[f] = strconv.FormatFloat(x-us, 'f', -1, 64)
			}
			if err := c.HSet(ctx, k, fields).Err(); err != nil {
				t.Fatal(err)
			}
			continue
		}
		raw, err := c.Get(ctx, k).Bytes()
		if errors.Is(err, redis.Nil) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		v, packed, err := decodeTAT(raw)
		if err != nil {
			t.Fatalf("%s: %v", k, err)
		}
		ttl, err := c.PTTL(ctx, k).Result()
		if err != nil {
			t.Fatal(err)
		}
		if ttl -= d; ttl <= 0 {
			c.Del(ctx, k)
			continue
		}
		// Write it back in the format it was found in.
		var out any = strconv.FormatFloat(v-us, 'f', -1, 64)
		if packed {
			out = encodeTAT(v - us)
		}
		c.Set(ctx, k, out, ttl)
	}
}

// decodeTAT reads a stored TAT: 8 bytes, a little-endian double (the
// scripts' struct.pack('<d')), or a decimal (older versions).
func decodeTAT(raw []byte) (us float64, packed bool, err error) {
	if len(raw) == 8 {
		return math.Float64frombits(binary.LittleEndian.Uint64(raw)), true, nil
	}
	us, err = strconv.ParseFloat(string(raw), 64)
	return us, false, err
}

func encodeTAT(us float64) []byte {
	return binary.LittleEndian.AppendUint64(nil, math.Float64bits(us))
}

// near reports whether got is want less at most the wall time a test step
// can take on Redis's running clock (1s, generous for a loaded CI box).
func near(got, want time.Duration) bool { return got <= want && got > want-time.Second }

type step struct {
	shift     time.Duration // advance Redis time first
	only      []int
	allowed   bool
	rule      int
	retry     time.Duration
	remaining int
	reset     time.Duration
}

func TestGCRAScenarios(t *testing.T) {
	r := testutil.StartRedis(t)
	c := newClient(t, r)
	ip := ratelimit.Rule{Tier: ratelimit.TierIP, Key: "ip1", Limit: lim("5/h")}
	snd := ratelimit.Rule{Tier: ratelimit.TierSender, Key: "s1", Limit: lim("1/h")}
	rcpt := ratelimit.Rule{Tier: ratelimit.TierRecipient, Key: "r1", Limit: lim("3/h")}
	tests := []struct {
		name  string
		rules []ratelimit.Rule
		steps []step
	}{
		{
			name:  "a fresh key has its whole budget and then one event per interval",
			rules: []ratelimit.Rule{ip},
			steps: []step{
				{allowed: true, rule: -1, remaining: 4, reset: 12 * time.Minute},
				{allowed: true, rule: -1, remaining: 3, reset: 24 * time.Minute},
				{allowed: true, rule: -1, remaining: 2, reset: 36 * time.Minute},
				{allowed: true, rule: -1, remaining: 1, reset: 48 * time.Minute},
				{allowed: true, rule: -1, remaining: 0, reset: time.Hour},
				{rule: 0, retry: 12 * time.Minute, reset: time.Hour},
				{shift: 6 * time.Minute, rule: 0, retry: 6 * time.Minute, reset: 54 * time.Minute},
				{shift: 6 * time.Minute, allowed: true, rule: -1, remaining: 0, reset: time.Hour},
				{rule: 0, retry: 12 * time.Minute, reset: time.Hour},
				{shift: 2 * time.Hour, allowed: true, rule: -1, remaining: 4, reset: 12 * time.Minute},
			},
		},
		{
			name:  "a refused request consumes nothing from the other tiers",
			rules: []ratelimit.Rule{ip, snd},
			steps: []step{
				{allowed: true, rule: -1, remaining: 0, reset: time.Hour},
				{rule: 1, retry: time.Hour, reset: time.Hour},
				{rule: 1, retry: time.Hour, reset: time.Hour},
				{only: []int{0}, allowed: true, rule: -1, remaining: 3, reset: 24 * time.Minute},
			},
		},
		{
			name:  "the same key twice in one decision counts twice, all or nothing",
			rules: []ratelimit.Rule{rcpt, rcpt},
			steps: []step{
				{allowed: true, rule: -1, remaining: 1, reset: 40 * time.Minute},
				{rule: 1, retry: 20 * time.Minute, remaining: 1, reset: 40 * time.Minute},
				{only: []int{0}, allowed: true, rule: -1, remaining: 0, reset: time.Hour},
			},
		},
		{
			name:  "zero limits are skipped and indexes still refer to the caller's rules",
			rules: []ratelimit.Rule{{Tier: ratelimit.TierForm, Key: "f"}, snd},
			steps: []step{
				{allowed: true, rule: -1, remaining: 0, reset: time.Hour},
				{rule: 1, retry: time.Hour, reset: time.Hour},
			},
		},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prefix := "gcra" + strconv.Itoa(i)
			// The store's clock moves with Redis's shifted one, so the
			// refusal cache sees the same time pass.
			clk := &fakeClock{t: time.Unix(1_800_000_000, 0)}
			s := newStore(t, Config{Client: c, Prefix: prefix, Now: clk.Now})
			for j, st := range tt.steps {
				if st.shift > 0 {
					shiftTime(t, c, prefix, st.shift)
					clk.Add(st.shift)
				}
				rules := tt.rules
				if st.only != nil {
					rules = nil
					for _, k := range st.only {
						rules = append(rules, tt.rules[k])
					}
				}
				d, err := s.Allow(context.Background(), rules)
				if err != nil {
					t.Fatalf("step %d: %v", j, err)
				}
				if d.Allowed != st.allowed || d.Rule != st.rule || d.Remaining != st.remaining ||
					!near(d.Reset, st.reset) || (st.retry == 0) != (d.RetryAfter == 0) ||
					(st.retry > 0 && !near(d.RetryAfter, st.retry)) || d.Banned {
					t.Errorf("step %d: got %+v, want allowed=%v rule=%d retry≈%s remaining=%d reset≈%s",
						j, d, st.allowed, st.rule, st.retry, st.remaining, st.reset)
				}
				if d.Allowed && (d.Tightest < 0 || d.Tightest >= len(rules)) {
					t.Errorf("step %d: Tightest %d out of range", j, d.Tightest)
				}
			}
		})
	}
}

func commandCalls(t *testing.T, c *redis.Client) map[string]int {
	t.Helper()
	info, err := c.Info(context.Background(), "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	calls := map[string]int{}
	for line := range strings.SplitSeq(info, "\r\n") {
		name, rest, ok := strings.Cut(strings.TrimPrefix(line, "cmdstat_"), ":calls=")
		if !ok {
			continue
		}
		n, _, _ := strings.Cut(rest, ",")
		calls[name], _ = strconv.Atoi(n)
	}
	return calls
}

// countHook records the commands a client sends.
type countHook struct {
	mu   sync.Mutex
	cmds []string
}

func (h *countHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *countHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.mu.Lock()
		h.cmds = append(h.cmds, cmd.Name())
		h.mu.Unlock()
		return next(ctx, cmd)
	}
}

func (h *countHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.mu.Lock()
		for _, c := range cmds {
			h.cmds = append(h.cmds, "pipeline:"+c.Name())
		}
		h.mu.Unlock()
		return next(ctx, cmds)
	}
}

func (h *countHook) names() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.cmds...)
}

func TestOneCommandPerDecision(t *testing.T) {
	r := testutil.StartRedis(t)
	c := newClient(t, r)
	s := newStore(t, Config{Client: c})
	ctx := context.Background()
	rules := []ratelimit.Rule{
		{Tier: ratelimit.TierIP, Key: "ip", Limit: lim("100/h")},
		{Tier: ratelimit.TierSender, Key: "snd", Limit: lim("100/h")},
		{Tier: ratelimit.TierRecipient, Key: "rcpt", Limit: lim("100/h")},
		{Tier: ratelimit.TierForm, Key: "contact", Limit: lim("100/h")},
		{Tier: ratelimit.TierGlobal, Key: "all", Limit: lim("100/h")},
	}
	if _, err := s.Allow(ctx, rules); err != nil { // loads the script (NOSCRIPT, then EVAL)
		t.Fatal(err)
	}
	before := commandCalls(t, c)
	sent := &countHook{}
	c.AddHook(sent)
	const n = 25
	for range n {
		if _, err := s.Allow(ctx, rules); err != nil {
			t.Fatal(err)
		}
	}
	if got := sent.names(); len(got) != n || strings.Count(strings.Join(got, " "), "evalsha") != n {
		t.Errorf("client sent %d commands %v for %d decisions, want exactly one EVALSHA each", len(got), got, n)
	}
	after := commandCalls(t, c)
	if got := after["evalsha"] - before["evalsha"]; got != n {
		t.Errorf("server counted %d evalsha calls for %d decisions, want exactly one each", got, n)
	}
	// Inside the script: TIME once, then per tier one read and one write.
	if got := after["time"] - before["time"]; got != n {
		t.Errorf("TIME ran %d times, want %d (once per decision)", got, n)
	}

	t.Run("a flushed script cache is reloaded", func(t *testing.T) {
		if err := c.ScriptFlush(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		d, err := s.Allow(ctx, rules)
		if err != nil || !d.Allowed {
			t.Fatalf("%+v %v", d, err)
		}
		before := commandCalls(t, c)
		if _, err := s.Allow(ctx, rules); err != nil {
			t.Fatal(err)
		}
		if got := commandCalls(t, c)["evalsha"] - before["evalsha"]; got != 1 {
			t.Errorf("evalsha calls after reload = %d, want 1", got)
		}
	})
}

func TestConcurrentDecisionsAreAtomic(t *testing.T) {
	r := testutil.StartRedis(t)
	c := newClient(t, r)
	s := newStore(t, Config{Client: c, Timeout: 5 * time.Second})
	a := ratelimit.Rule{Tier: ratelimit.TierIP, Key: "a", Limit: lim("40/h")}
	b := ratelimit.Rule{Tier: ratelimit.TierSender, Key: "b", Limit: lim("25/h")}
	shapes := [][]ratelimit.Rule{{a, b}, {b, a}, {a}}
	var admitted [3]atomic.Int64
	var wg sync.WaitGroup
	for g := range 6 {
		wg.Go(func() {
			for i := range 30 {
				k := (g + i) % 3
				d, err := s.Allow(context.Background(), shapes[k])
				if err != nil {
					t.Error(err)
					return
				}
				if d.Allowed {
					admitted[k].Add(1)
				}
			}
		})
	}
	wg.Wait()
	if got := admitted[0].Load() + admitted[1].Load(); got != 25 {
		t.Errorf("admitted with b = %d, want exactly 25", got)
	}
	if got := admitted[0].Load() + admitted[1].Load() + admitted[2].Load(); got != 40 {
		t.Errorf("admitted with a = %d, want exactly 40", got)
	}
}

// fakeClock drives probe scheduling.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (f *fakeClock) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.t
}

func (f *fakeClock) Add(d time.Duration) {
	f.mu.Lock()
	f.t = f.t.Add(d)
	f.mu.Unlock()
}

func TestRedisDown(t *testing.T) {
	rules := []ratelimit.Rule{{Tier: ratelimit.TierIP, Key: "ip", Limit: lim("8/h")}}
	for _, policy := range []FailurePolicy{FailClosed, FailoverMemory} {
		t.Run(policy.String(), func(t *testing.T) {
			r := testutil.StartRedis(t)
			c := newClient(t, r)
			clk := &fakeClock{t: time.Unix(1_800_000_000, 0)}
			var events []bool
			var mu sync.Mutex
			s := newStore(t, Config{Client: c, Failure: policy, Now: clk.Now, OnFallback: func(active bool) {
				mu.Lock()
				events = append(events, active)
				mu.Unlock()
			}})
			ctx := context.Background()
			if d, err := s.Allow(ctx, rules); err != nil || !d.Allowed {
				t.Fatalf("before outage: %+v %v", d, err)
			}

			r.Stop()
			admitted := 0
			for i := range 10 {
				d, err := s.Allow(ctx, rules)
				switch policy {
				case FailClosed:
					if err == nil || !errors.Is(err, ErrUnavailable) || d.Allowed {
						t.Fatalf("call %d while down: %+v %v; want ErrUnavailable and no admission", i, d, err)
					}
				case FailoverMemory:
					if err != nil {
						t.Fatalf("call %d while down: %v", i, err)
					}
				}
				if d.Allowed {
					admitted++
				}
			}
			// 8/h divided by the default factor 4: two local admissions.
			if want := map[FailurePolicy]int{FailClosed: 0, FailoverMemory: 2}[policy]; admitted != want {
				t.Errorf("admitted %d while down, want %d", admitted, want)
			}
			if !s.Degraded() {
				t.Error("Degraded() = false while Redis is down")
			}
			_, err := s.Penalize(ctx, "ip")
			switch {
			case policy == FailClosed && !errors.Is(err, ErrUnavailable):
				t.Errorf("Penalize while down: %v, want ErrUnavailable", err)
			case policy == FailoverMemory && err != nil:
				t.Errorf("Penalize while down: %v, want it recorded locally", err)
			}

			r.Restart(t)
			// Until the next probe is due, the store does not touch Redis.
			if s.tryRedis() {
				t.Error("probe allowed before ProbeInterval elapsed")
			}
			recovered := false
			for range 3 {
				clk.Add(DefaultProbeInterval)
				d, err := s.Allow(ctx, rules)
				if err == nil && !s.Degraded() {
					if !d.Allowed || d.Remaining != 7 {
						t.Errorf("first decision after recovery: %+v (restarted Redis is empty)", d)
					}
					recovered = true
					break
				}
			}
			if !recovered {
				t.Fatal("store did not return to Redis after restart")
			}
			mu.Lock()
			defer mu.Unlock()
			if len(events) != 2 || !events[0] || events[1] {
				t.Errorf("OnFallback events = %v, want [true false]", events)
			}
		})
	}
}

func TestTimeoutFailsClosed(t *testing.T) {
	// A server that accepts connections and never answers: a hung Redis.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = l.Close()
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
	})
	c := redis.NewClient(&redis.Options{Addr: l.Addr().String(), MaxRetries: -1, ContextTimeoutEnabled: true})
	defer c.Close()
	s := newStore(t, Config{Client: c, Timeout: 30 * time.Millisecond})
	start := time.Now()
	d, err := s.Allow(context.Background(), []ratelimit.Rule{{Tier: ratelimit.TierIP, Key: "ip", Limit: lim("8/h")}})
	if !errors.Is(err, ErrUnavailable) || d.Allowed {
		t.Fatalf("hung Redis: %+v %v, want ErrUnavailable", d, err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("decision took %s despite a 30ms timeout", took)
	}
}

func TestBansSharedAcrossStores(t *testing.T) {
	r := testutil.StartRedis(t)
	policy := ratelimit.BanPolicy{Threshold: 2, Window: 10 * time.Minute, Base: time.Minute, Max: 4 * time.Minute}
	// Both stores' clocks move with Redis's shifted one, so their refusal
	// caches see the same time pass.
	clk := &fakeClock{t: time.Unix(1_800_000_000, 0)}
	a := newStore(t, Config{Client: newClient(t, r), Ban: policy, Now: clk.Now})
	b := newStore(t, Config{Client: newClient(t, r), Ban: policy, Now: clk.Now})
	ctx := context.Background()
	rules := []ratelimit.Rule{
		{Tier: ratelimit.TierGlobal, Key: "all", Limit: lim("100/h")},
		{Tier: ratelimit.TierIP, Key: "bad", Limit: lim("100/h")},
	}
	pen := func(s *Store, want time.Duration) {
		t.Helper()
		got, err := s.Penalize(ctx, "bad")
		if err != nil || (want == 0) != (got == 0) || (want > 0 && !near(got, want)) {
			t.Fatalf("Penalize = %s, %v; want ≈%s", got, err, want)
		}
	}
	pen(a, 0)
	pen(b, time.Minute)
	d, err := a.Allow(ctx, rules)
	if err != nil || d.Allowed || !d.Banned || d.Rule != 1 || !near(d.RetryAfter, time.Minute) {
		t.Fatalf("banned client: %+v %v", d, err)
	}
	// A banned request consumed nothing: global still has its full budget.
	if d, err := b.Allow(ctx, rules[:1]); err != nil || d.Remaining != 99 {
		t.Fatalf("global after ban refusal: %+v %v", d, err)
	}
	shiftTime(t, newClient(t, r), DefaultPrefix, time.Minute)
	clk.Add(time.Minute)
	if d, err := b.Allow(ctx, rules); err != nil || !d.Allowed {
		t.Fatalf("after the ban: %+v %v", d, err)
	}
	pen(b, 0)
	pen(a, 2*time.Minute)
	shiftTime(t, newClient(t, r), DefaultPrefix, 2*time.Minute)
	clk.Add(2 * time.Minute)
	pen(a, 0)
	pen(b, 4*time.Minute)
	shiftTime(t, newClient(t, r), DefaultPrefix, 4*time.Minute)
	clk.Add(4 * time.Minute)
	pen(a, 0)
	pen(b, 4*time.Minute) // capped at Max
}

// newUnreachableClient is a client for tests that never reach Redis.
func newUnreachableClient(t testing.TB) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, ContextTimeoutEnabled: true})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestNewValidates(t *testing.T) {
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", ContextTimeoutEnabled: true})
	defer c.Close()
	noCtx := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer noCtx.Close()
	tests := []struct {
		name string
		cfg  Config
		want error
	}{
		{"client is required", Config{}, ErrBadConfig},
		{"client must honour context deadlines", Config{Client: noCtx}, ErrBadConfig},
		{"prefix may not carry a hash tag", Config{Client: c, Prefix: "a{b}"}, ErrBadConfig},
		{"prefix may not contain spaces", Config{Client: c, Prefix: "a b"}, ErrBadConfig},
		{"negative timeout", Config{Client: c, Timeout: -1}, ErrBadConfig},
		{"negative fallback factor", Config{Client: c, FallbackFactor: -1}, ErrBadConfig},
		{"negative probe interval", Config{Client: c, ProbeInterval: -1}, ErrBadConfig},
		{"unknown failure policy", Config{Client: c, Failure: 7}, ErrBadConfig},
		{"negative refusal cache bound", Config{Client: c, RefusalMaxKeys: -1}, ErrBadConfig},
		{"refusal cache off", Config{Client: c, RefusalHorizon: -1}, nil},
		{"bad ban policy", Config{Client: c, Ban: ratelimit.BanPolicy{Window: -1}}, ratelimit.ErrBadBanPolicy},
		{"minimal config", Config{Client: c}, nil},
		{"failover config", Config{Client: c, Failure: FailoverMemory, Prefix: "site-1.forms"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := New(tt.cfg)
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
			if s != nil {
				_ = s.Close()
			}
		})
	}
}

func TestRedisDownAtStartFailsClosed(t *testing.T) {
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, ContextTimeoutEnabled: true})
	defer c.Close()
	s := newStore(t, Config{Client: c})
	d, err := s.Allow(context.Background(), []ratelimit.Rule{{Tier: ratelimit.TierIP, Key: "k", Limit: lim("1/h")}})
	if !errors.Is(err, ErrUnavailable) || d.Allowed {
		t.Fatalf("%+v %v", d, err)
	}
	// A decision with no limit and no client key needs no Redis at all.
	d, err = s.Allow(context.Background(), []ratelimit.Rule{{Tier: ratelimit.TierForm, Key: "f"}})
	if err != nil || !d.Allowed {
		t.Fatalf("unlimited decision: %+v %v", d, err)
	}
}

func TestCallerCancelDoesNotMarkRedisDown(t *testing.T) {
	r := testutil.StartRedis(t)
	var events atomic.Int64
	s := newStore(t, Config{Client: newClient(t, r), OnFallback: func(bool) { events.Add(1) }})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	rules := []ratelimit.Rule{{Tier: ratelimit.TierIP, Key: "k", Limit: lim("1/h")}}
	if _, err := s.Allow(ctx, rules); !errors.Is(err, context.Canceled) {
		t.Fatalf("Allow with a cancelled context: %v", err)
	}
	if s.Degraded() || events.Load() != 0 {
		t.Fatal("a caller giving up was taken for a Redis outage")
	}
	if d, err := s.Allow(context.Background(), rules); err != nil || !d.Allowed {
		t.Fatalf("%+v %v", d, err)
	}
}
