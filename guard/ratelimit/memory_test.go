package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

func newTestMemory(t *testing.T, cfg MemoryConfig) *Memory {
	t.Helper()
	m, err := NewMemory(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	return m
}

func lim(s string) Limit {
	l, err := ParseLimit(s)
	if err != nil {
		panic(err)
	}
	return l
}

// step is one request of a scenario: at offset `at` from the start, with
// the scenario's rules (or only those listed in only).
type step struct {
	at        time.Duration
	only      []int
	allowed   bool
	rule      int // refusing rule, -1 when allowed
	retry     time.Duration
	remaining int
	reset     time.Duration
}

func TestMemoryScenarios(t *testing.T) {
	ip5h := Rule{Tier: TierIP, Key: "k-ip", Limit: lim("5/h")}
	snd1h := Rule{Tier: TierSender, Key: "k-snd", Limit: lim("1/h")}
	glob := Rule{Tier: TierGlobal, Key: "all", Limit: lim("3/10s")}
	tests := []struct {
		name  string
		rules []Rule
		steps []step
	}{
		{
			name:  "a fresh key has its whole budget and then one event per interval",
			rules: []Rule{ip5h},
			steps: []step{
				{at: 0, allowed: true, rule: -1, remaining: 4, reset: 12 * time.Minute},
				{at: 0, allowed: true, rule: -1, remaining: 3, reset: 24 * time.Minute},
				{at: 0, allowed: true, rule: -1, remaining: 2, reset: 36 * time.Minute},
				{at: 0, allowed: true, rule: -1, remaining: 1, reset: 48 * time.Minute},
				{at: 0, allowed: true, rule: -1, remaining: 0, reset: time.Hour},
				{at: 0, rule: 0, retry: 12 * time.Minute, remaining: 0, reset: time.Hour},
				{at: 6 * time.Minute, rule: 0, retry: 6 * time.Minute, remaining: 0, reset: 54 * time.Minute},
				{at: 12*time.Minute - 1, rule: 0, retry: 1, remaining: 0, reset: 48*time.Minute + 1},
				{at: 12 * time.Minute, allowed: true, rule: -1, remaining: 0, reset: time.Hour},
				{at: 12 * time.Minute, rule: 0, retry: 12 * time.Minute, remaining: 0, reset: time.Hour},
			},
		},
		{
			name:  "a key idle for its whole period is full again",
			rules: []Rule{ip5h},
			steps: []step{
				{at: 0, allowed: true, rule: -1, remaining: 4, reset: 12 * time.Minute},
				{at: 0, allowed: true, rule: -1, remaining: 3, reset: 24 * time.Minute},
				{at: 24 * time.Minute, allowed: true, rule: -1, remaining: 4, reset: 12 * time.Minute},
				{at: 5 * time.Hour, allowed: true, rule: -1, remaining: 4, reset: 12 * time.Minute},
			},
		},
		{
			name:  "the tightest rule is reported and the first refusing rule refuses",
			rules: []Rule{ip5h, snd1h},
			steps: []step{
				{at: 0, allowed: true, rule: -1, remaining: 0, reset: time.Hour},
				{at: time.Minute, rule: 1, retry: 59 * time.Minute, remaining: 0, reset: 59 * time.Minute},
				{at: time.Hour, allowed: true, rule: -1, remaining: 0, reset: time.Hour},
			},
		},
		{
			name:  "a refused request consumes nothing from the other tiers",
			rules: []Rule{ip5h, snd1h},
			steps: []step{
				{at: 0, allowed: true, rule: -1, remaining: 0, reset: time.Hour},
				{at: 0, rule: 1, retry: time.Hour, remaining: 0, reset: time.Hour},
				{at: 0, rule: 1, retry: time.Hour, remaining: 0, reset: time.Hour},
				{at: 0, rule: 1, retry: time.Hour, remaining: 0, reset: time.Hour},
				// the IP tier still holds 4 of 5: only the admitted request used it
				{at: 0, only: []int{0}, allowed: true, rule: -1, remaining: 3, reset: 24 * time.Minute},
			},
		},
		{
			name:  "retry after is the wait for the slowest refusing rule",
			rules: []Rule{glob, snd1h},
			steps: []step{
				{at: 0, allowed: true, rule: -1, remaining: 0, reset: time.Hour},
				{at: 0, rule: 1, retry: time.Hour, remaining: 0, reset: time.Hour},
				{at: 0, only: []int{0}, allowed: true, rule: -1, remaining: 1, reset: 6666666667},
				{at: 0, only: []int{0}, allowed: true, rule: -1, remaining: 0, reset: 10 * time.Second},
				{at: time.Second, rule: 0, retry: time.Hour - time.Second, remaining: 0, reset: 9 * time.Second},
			},
		},
		{
			name:  "the same key twice in one decision counts twice, all or nothing",
			rules: []Rule{{Tier: TierRecipient, Key: "r", Limit: lim("3/h")}, {Tier: TierRecipient, Key: "r", Limit: lim("3/h")}},
			steps: []step{
				{at: 0, allowed: true, rule: -1, remaining: 1, reset: 40 * time.Minute},
				{at: 0, rule: 1, retry: 20 * time.Minute, remaining: 1, reset: 40 * time.Minute},
				{at: 0, only: []int{0}, allowed: true, rule: -1, remaining: 0, reset: time.Hour},
			},
		},
		{
			name:  "zero limits are ignored",
			rules: []Rule{{Tier: TierForm, Key: "f"}, {Tier: TierGlobal, Key: "g", Limit: Limit{Count: 1}}},
			steps: []step{
				{at: 0, allowed: true, rule: -1},
				{at: 0, allowed: true, rule: -1},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newClock()
			start := clk.Now()
			m := newTestMemory(t, MemoryConfig{Now: clk.Now})
			for i, s := range tt.steps {
				clk.Set(start.Add(s.at))
				rules := tt.rules
				if s.only != nil {
					rules = nil
					for _, j := range s.only {
						rules = append(rules, tt.rules[j])
					}
				}
				d, err := m.Allow(context.Background(), rules)
				if err != nil {
					t.Fatalf("step %d: %v", i, err)
				}
				if d.Allowed != s.allowed || d.Rule != s.rule || d.RetryAfter != s.retry ||
					d.Remaining != s.remaining || d.Reset != s.reset || d.Banned {
					t.Errorf("step %d at %s: got %+v, want allowed=%v rule=%d retry=%s remaining=%d reset=%s",
						i, s.at, d, s.allowed, s.rule, s.retry, s.remaining, s.reset)
				}
			}
		})
	}
}

func TestMemorySameKeyDifferentLimitsAreSeparateBudgets(t *testing.T) {
	clk := newClock()
	m := newTestMemory(t, MemoryConfig{Now: clk.Now})
	contact := []Rule{{Tier: TierIP, Key: "same", Limit: lim("1/h")}}
	share := []Rule{{Tier: TierIP, Key: "same", Limit: lim("2/h")}}
	for i, c := range []struct {
		rules []Rule
		want  bool
	}{{contact, true}, {contact, false}, {share, true}, {share, true}, {share, false}} {
		d, err := m.Allow(context.Background(), c.rules)
		if err != nil || d.Allowed != c.want {
			t.Fatalf("call %d: got %+v, %v; want allowed=%v", i, d, err, c.want)
		}
	}
}

func TestMemoryConcurrentAllOrNothing(t *testing.T) {
	// Two request shapes hit overlapping keys listed in opposite orders, the
	// pattern that deadlocks a store locking in argument order. Exactly the
	// budget of the shared keys must be admitted, never more.
	clk := newClock()
	m := newTestMemory(t, MemoryConfig{Now: clk.Now})
	a := Rule{Tier: TierIP, Key: "a", Limit: lim("100/h")}
	b := Rule{Tier: TierSender, Key: "b", Limit: lim("60/h")}
	c := Rule{Tier: TierRecipient, Key: "c", Limit: lim("1000/h")}
	shapes := [][]Rule{{a, b, c}, {c, b, a}, {b, a}, {a, c}}
	var admitted [4]atomic.Int64
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				shape := (g + i) % len(shapes)
				d, err := m.Allow(context.Background(), shapes[shape])
				if err != nil {
					t.Error(err)
					return
				}
				if d.Allowed {
					admitted[shape].Add(1)
				}
			}
		}()
	}
	wg.Wait()
	withB := admitted[0].Load() + admitted[1].Load() + admitted[2].Load()
	withA := withB + admitted[3].Load()
	if withB != 60 {
		t.Errorf("requests using b admitted = %d, want exactly its budget 60", withB)
	}
	if withA != 100 {
		t.Errorf("requests using a admitted = %d, want exactly its budget 100", withA)
	}
	// c was only consumed by admitted requests that listed it.
	d, err := m.Allow(context.Background(), []Rule{c})
	if err != nil {
		t.Fatal(err)
	}
	usedC := admitted[0].Load() + admitted[1].Load() + admitted[3].Load()
	if want := 1000 - int(usedC) - 1; d.Remaining != want {
		t.Errorf("c remaining = %d, want %d", d.Remaining, want)
	}
}

func TestMemorySweep(t *testing.T) {
	tests := []struct {
		name   string
		idle   time.Duration
		after  time.Duration
		swept  int
		lenNow int
	}{
		{"a key whose bucket is not yet full is kept", 0, 59 * time.Minute, 0, 1},
		{"a key idle for its limit's full period is dropped", 0, time.Hour, 1, 0},
		{"idle timeout longer than the period keeps the key", 2 * time.Hour, time.Hour, 0, 1},
		{"idle timeout reached drops the key", 2 * time.Hour, 2 * time.Hour, 1, 0},
		{"idle timeout shorter than the period never drops a partial bucket", time.Minute, 30 * time.Minute, 0, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newClock()
			start := clk.Now()
			m := newTestMemory(t, MemoryConfig{Now: clk.Now, IdleTimeout: tt.idle})
			rules := []Rule{{Tier: TierIP, Key: "x", Limit: lim("2/h")}}
			for range 2 {
				if d, err := m.Allow(context.Background(), rules); err != nil || !d.Allowed {
					t.Fatalf("setup: %+v %v", d, err)
				}
			}
			if got := m.Sweep(start.Add(tt.after)); got != tt.swept {
				t.Errorf("Sweep removed %d, want %d", got, tt.swept)
			}
			if m.Len() != tt.lenNow {
				t.Errorf("Len = %d, want %d", m.Len(), tt.lenNow)
			}
			// Whatever was swept, the budget seen afterwards is correct.
			clk.Set(start.Add(tt.after))
			d, err := m.Allow(context.Background(), rules)
			if err != nil {
				t.Fatal(err)
			}
			wantAllowed := tt.after >= 30*time.Minute
			if d.Allowed != wantAllowed {
				t.Errorf("after sweep: %+v, want allowed=%v", d, wantAllowed)
			}
		})
	}
}

func TestMemorySweeperGoroutine(t *testing.T) {
	// The owned goroutine really sweeps: drive it with a tiny interval and
	// a clock already past the idle point, then wait for Len to drop by
	// polling a channel-free condition with a deadline (no fixed sleep).
	clk := newClock()
	start := clk.Now()
	m := newTestMemory(t, MemoryConfig{Now: clk.Now, SweepInterval: time.Millisecond})
	if _, err := m.Allow(context.Background(), []Rule{{Tier: TierIP, Key: "x", Limit: lim("1/s")}}); err != nil {
		t.Fatal(err)
	}
	clk.Set(start.Add(time.Hour))
	deadline := time.Now().Add(10 * time.Second)
	for m.Len() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("sweeper never dropped the idle key")
		}
		runtime.Gosched()
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Allow(context.Background(), nil); !errors.Is(err, ErrClosed) {
		t.Errorf("Allow after Close: %v, want ErrClosed", err)
	}
}

// TestMemoryFull: a full store evicts instead of refusing (issue 14: a
// flood of honeypot hits from distinct addresses filled the store and every
// new visitor got 503 limiter_unavailable). Before, a new key in a full
// store was refused with ErrFull; the assertions below are the new rule.
func TestMemoryFull(t *testing.T) {
	clk := newClock()
	start := clk.Now()
	m := newTestMemory(t, MemoryConfig{Now: clk.Now, MaxKeys: 2})
	r := func(k string) []Rule { return []Rule{{Tier: TierIP, Key: k, Limit: lim("1/m")}} }
	ctx := context.Background()
	for _, k := range []string{"a", "b"} {
		if d, err := m.Allow(ctx, r(k)); err != nil || !d.Allowed {
			t.Fatalf("%s: %+v %v", k, d, err)
		}
	}
	t.Run("a new key is decided when the map is full", func(t *testing.T) {
		d, err := m.Allow(ctx, r("c"))
		if err != nil || !d.Allowed {
			t.Fatalf("c: %+v %v, want admitted", d, err)
		}
		if m.Len() != 2 || m.Evictions() != 1 {
			t.Fatalf("Len %d, Evictions %d; want 2 and 1", m.Len(), m.Evictions())
		}
	})
	t.Run("a decision needing more keys than the store holds still decides", func(t *testing.T) {
		clk.Set(start.Add(time.Hour)) // everything is full again: any key may go
		rules := []Rule{r("x")[0], r("y")[0], r("z")[0]}
		d, err := m.Allow(ctx, rules)
		if err != nil || !d.Allowed {
			t.Fatalf("%+v %v", d, err)
		}
		if m.Len() > 2 {
			t.Fatalf("Len %d above MaxKeys 2", m.Len())
		}
		// The decision kept what it could: x and y, whose buckets it had
		// already found when z needed room, were not evicted for z.
		for _, k := range []string{"x", "y"} {
			if d, err := m.Allow(ctx, r(k)); err != nil || d.Allowed {
				t.Errorf("%s: %+v %v, want refused (its token was taken)", k, d, err)
			}
		}
	})
	t.Run("penalize needing a new key is recorded when full", func(t *testing.T) {
		if _, err := m.Penalize(ctx, "p"); err != nil {
			t.Fatal(err)
		}
		if m.Len() > 2 {
			t.Fatalf("Len %d above MaxKeys 2", m.Len())
		}
	})
	t.Run("stale entries make room without evicting", func(t *testing.T) {
		clk.Set(start.Add(3 * time.Hour))
		before := m.Evictions()
		if d, err := m.Allow(ctx, r("fresh")); err != nil || !d.Allowed {
			t.Fatalf("%+v %v", d, err)
		}
		if m.Evictions() != before {
			t.Errorf("evicted with stale entries to sweep")
		}
	})
}

// TestMemoryFloodOfOffences is issue 14's honeypot flood in small: one
// offence from each of many addresses fills the store; new visitors are
// still decided, the store stays within MaxKeys, and a key serving a ban
// keeps it through the flood.
func TestMemoryFloodOfOffences(t *testing.T) {
	clk := newClock()
	const maxKeys = 4096
	m := newTestMemory(t, MemoryConfig{Now: clk.Now, MaxKeys: maxKeys, Ban: BanPolicy{Threshold: 3}})
	ctx := context.Background()
	for range 3 {
		if _, err := m.Penalize(ctx, "banned"); err != nil {
			t.Fatal(err)
		}
	}
	ban := func() Decision {
		t.Helper()
		d, err := m.Allow(ctx, []Rule{{Tier: TierIP, Key: "banned", Limit: lim("5/h")}})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	if d := ban(); !d.Banned {
		t.Fatalf("after 3 offences: %+v, want banned", d)
	}
	for i := range 10 * maxKeys {
		clk.Set(clk.Now().Add(time.Millisecond))
		if _, err := m.Penalize(ctx, fmt.Sprint("flood", i)); err != nil {
			t.Fatalf("offence %d: %v", i, err)
		}
		if i%1000 == 0 {
			if n := m.Len(); n > maxKeys {
				t.Fatalf("after %d offences Len = %d > MaxKeys %d", i, n, maxKeys)
			}
		}
	}
	if n := m.Len(); n > maxKeys {
		t.Fatalf("Len = %d > MaxKeys %d", n, maxKeys)
	}
	if m.Evictions() == 0 {
		t.Fatal("no evictions: the flood never filled the store, the test proved nothing")
	}
	for i := range 100 {
		rules := []Rule{
			{Tier: TierIP, Key: fmt.Sprint("visitor", i), Limit: lim("5/h")},
			{Tier: TierForm, Key: "contact", Limit: lim("1000/h")},
		}
		d, err := m.Allow(ctx, rules)
		if err != nil || !d.Allowed {
			t.Fatalf("visitor %d after the flood: %+v %v, want admitted", i, d, err)
		}
	}
	if d := ban(); !d.Banned {
		t.Fatalf("the ban was lost in the flood: %+v", d)
	}
}

// TestMemoryEvictsLeastValuable checks the eviction order on a
// one-shard store: empty-handed candidates (an offence short of a ban, a
// nearly full bucket) go before an exhausted bucket and a ban in force.
func TestMemoryEvictsLeastValuable(t *testing.T) {
	clk := newClock()
	m := newTestMemory(t, MemoryConfig{Now: clk.Now, MaxKeys: 3, Ban: BanPolicy{Threshold: 2}})
	ctx := context.Background()
	ip := func(k string) []Rule { return []Rule{{Tier: TierIP, Key: k, Limit: lim("3/h")}} }
	for range 2 {
		if _, err := m.Penalize(ctx, "banned"); err != nil { // a ban in force
			t.Fatal(err)
		}
	}
	for range 3 { // exhausted
		if _, err := m.Allow(ctx, ip("busy")); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := m.Penalize(ctx, "once"); err != nil { // one offence
		t.Fatal(err)
	}
	// Full: the new key must evict "once" (one offence) and keep the rest.
	if d, err := m.Allow(ctx, ip("new")); err != nil || !d.Allowed {
		t.Fatalf("new: %+v %v", d, err)
	}
	if d, _ := m.Allow(ctx, ip("banned")); !d.Banned {
		t.Errorf("ban evicted: %+v", d)
	}
	if d, _ := m.Allow(ctx, ip("busy")); d.Allowed {
		t.Errorf("exhausted bucket evicted: %+v", d)
	}
	// Next: "new" (one event of three used) goes before "busy" (all three).
	if d, err := m.Allow(ctx, ip("newer")); err != nil || !d.Allowed {
		t.Fatalf("newer: %+v %v", d, err)
	}
	if d, _ := m.Allow(ctx, ip("busy")); d.Allowed {
		t.Errorf("exhausted bucket evicted before a nearly full one: %+v", d)
	}
	if d, _ := m.Allow(ctx, ip("banned")); !d.Banned {
		t.Errorf("ban evicted: %+v", d)
	}
	if m.Len() != 3 || m.Evictions() != 2 {
		t.Errorf("Len %d, Evictions %d; want 3 and 2", m.Len(), m.Evictions())
	}
}

func TestNewMemoryValidates(t *testing.T) {
	tests := []struct {
		name string
		cfg  MemoryConfig
		want error
	}{
		{"negative max keys", MemoryConfig{MaxKeys: -1}, ErrBadMemoryConfig},
		{"negative idle timeout", MemoryConfig{IdleTimeout: -time.Second}, ErrBadMemoryConfig},
		{"negative sweep interval", MemoryConfig{SweepInterval: -time.Second}, ErrBadMemoryConfig},
		{"negative ban threshold", MemoryConfig{Ban: BanPolicy{Threshold: -1}}, ErrBadBanPolicy},
		{"ban base above max", MemoryConfig{Ban: BanPolicy{Base: 2 * time.Hour, Max: time.Hour}}, ErrBadBanPolicy},
		{"zero value", MemoryConfig{}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := NewMemory(tt.cfg)
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
			if m != nil {
				_ = m.Close()
			}
		})
	}
}

func TestMemoryContextCancelled(t *testing.T) {
	m := newTestMemory(t, MemoryConfig{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := m.Allow(ctx, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("Allow: %v", err)
	}
	if _, err := m.Penalize(ctx, "k"); !errors.Is(err, context.Canceled) {
		t.Errorf("Penalize: %v", err)
	}
}

func TestMemorySweepReturnsMapMemory(t *testing.T) {
	clk := newClock()
	start := clk.Now()
	m := newTestMemory(t, MemoryConfig{Now: clk.Now})
	for i := range 5000 {
		if _, err := m.Allow(context.Background(), []Rule{{Tier: TierIP, Key: fmt.Sprint(i), Limit: lim("1/m")}}); err != nil {
			t.Fatal(err)
		}
	}
	if got := m.Sweep(start.Add(time.Minute)); got != 5000 {
		t.Fatalf("Sweep removed %d, want 5000", got)
	}
	for i := range m.shards {
		if p := m.shards[i].peakBuckets; p != 0 {
			t.Fatalf("shard %d still sized for %d buckets after emptying", i, p)
		}
	}
}

func TestMemoryConcurrentWithSweepAndBans(t *testing.T) {
	// Decisions, offences and sweeps racing on the same keys: -race must
	// stay quiet and budgets must never be exceeded while time advances.
	clk := newClock()
	start := clk.Now()
	m := newTestMemory(t, MemoryConfig{Now: clk.Now, MaxKeys: 4096, Ban: BanPolicy{Threshold: 1000}})
	ctx := context.Background()
	var admitted atomic.Int64
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			m.Sweep(start.Add(time.Duration(i%3) * time.Second))
		}
	})
	var workers sync.WaitGroup
	for g := range 4 {
		workers.Go(func() {
			for i := range 300 {
				key := fmt.Sprint("k", i%7)
				if i%5 == 0 {
					if _, err := m.Penalize(ctx, key); err != nil {
						t.Error(err)
						return
					}
				}
				d, err := m.Allow(ctx, []Rule{
					{Tier: TierIP, Key: key, Limit: lim("1000/h")},
					{Tier: TierGlobal, Key: "all", Limit: lim("50/h")},
					{Tier: TierSender, Key: fmt.Sprint("s", g), Limit: lim("1000/h")},
				})
				if err != nil {
					t.Error(err)
					return
				}
				if d.Allowed {
					admitted.Add(1)
				}
			}
		})
	}
	workers.Wait()
	close(stop)
	wg.Wait()
	if got := admitted.Load(); got != 50 {
		t.Errorf("admitted %d, want exactly the global budget 50", got)
	}
}

func TestMemorySingleRuleFastPathMatchesGeneralPath(t *testing.T) {
	// The same decisions through allowOne (one rule) and allowLocked (the
	// rule plus an unlimited one) must agree step for step.
	clk := newClock()
	start := clk.Now()
	fast := newTestMemory(t, MemoryConfig{Now: clk.Now, Ban: BanPolicy{Threshold: 3}})
	slow := newTestMemory(t, MemoryConfig{Now: clk.Now, Ban: BanPolicy{Threshold: 3}})
	ctx := context.Background()
	r := Rule{Tier: TierIP, Key: "k", Limit: lim("3/m")}
	pad := Rule{Tier: TierForm, Key: "f"}
	for i := range 120 {
		clk.Set(start.Add(time.Duration(i) * 7 * time.Second))
		if i%40 == 39 { // offences now and then, enough for a ban
			for range 3 {
				a, _ := fast.Penalize(ctx, "k")
				b, _ := slow.Penalize(ctx, "k")
				if a != b {
					t.Fatalf("step %d: Penalize %s vs %s", i, a, b)
				}
			}
		}
		df, err := fast.Allow(ctx, []Rule{r})
		if err != nil {
			t.Fatal(err)
		}
		ds, err := slow.Allow(ctx, []Rule{r, pad})
		if err != nil {
			t.Fatal(err)
		}
		if df != ds {
			t.Fatalf("step %d: fast %+v, general %+v", i, df, ds)
		}
	}
}
