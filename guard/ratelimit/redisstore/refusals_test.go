package redisstore

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/formguard/formguard/guard/ratelimit"
	"github.com/formguard/formguard/internal/testutil"
)

// cachedStore is a store with the refusal cache whose client counts the
// commands it sends, so a test can tell a local answer from Redis's.
func cachedStore(t *testing.T, r *testutil.Redis, cfg Config) (*Store, *countHook) {
	t.Helper()
	c := newClient(t, r)
	h := &countHook{}
	c.AddHook(h)
	cfg.Client = c
	return newStore(t, cfg), h
}

// evals counts the scripts a hooked client ran (EVALSHA, or EVAL after
// NOSCRIPT); connection set-up commands are not decisions.
func evals(h *countHook) int {
	n := 0
	for _, c := range h.names() {
		if c == "evalsha" || c == "eval" {
			n++
		}
	}
	return n
}

// allowN calls s.Allow and fails the test on error.
func allowN(t *testing.T, s *Store, rules []ratelimit.Rule) ratelimit.Decision {
	t.Helper()
	d, err := s.Allow(context.Background(), rules)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// sameDecision compares a local answer with Redis's for the same decision
// at nearly the same instant: every field equal, except that durations
// measured on two clocks may differ by at most span (the wall time the
// test spent between the calls) plus a millisecond.
func sameDecision(t *testing.T, local, redis ratelimit.Decision, span time.Duration) {
	t.Helper()
	within := func(a, b time.Duration) bool { return (a - b).Abs() <= span+time.Millisecond }
	if local.Allowed != redis.Allowed || local.Rule != redis.Rule || local.Tightest != redis.Tightest ||
		local.Remaining != redis.Remaining || local.Banned != redis.Banned ||
		!within(local.RetryAfter, redis.RetryAfter) || !within(local.Reset, redis.Reset) {
		t.Errorf("local answer differs from Redis's (span %s):\nlocal %+v\nredis %+v", span, local, redis)
	}
}

func TestRefusalAnsweredLocally(t *testing.T) {
	r := testutil.StartRedis(t)
	s, sent := cachedStore(t, r, Config{})
	ref := newStore(t, Config{Client: newClient(t, r), RefusalHorizon: -1})
	ip := ratelimit.Rule{Tier: ratelimit.TierIP, Key: "ip", Limit: lim("100/h")}
	snd := ratelimit.Rule{Tier: ratelimit.TierSender, Key: "snd", Limit: lim("1/h")}
	all := ratelimit.Rule{Tier: ratelimit.TierGlobal, Key: "all", Limit: lim("1000/h")}
	rules := []ratelimit.Rule{ip, snd, all}

	start := time.Now()
	if d := allowN(t, s, rules); !d.Allowed {
		t.Fatalf("first decision: %+v", d)
	}
	first := allowN(t, s, rules)
	if first.Allowed || first.Rule != 1 {
		t.Fatalf("second decision: %+v, want refused by the sender rule", first)
	}
	if n := evals(sent); n != 3 { // NOSCRIPT, EVAL, EVALSHA
		t.Fatalf("%d scripts run for the first two decisions, want 3", n)
	}

	cmdBefore := commandCalls(t, newClient(t, r))
	local := allowN(t, s, rules)
	// The same bucket elsewhere in a call whose first rule has no limit
	// (so it has no bucket either): Rule is an index into this call.
	reordered := []ratelimit.Rule{{Tier: ratelimit.TierForm, Key: "f"}, all, snd}
	again := allowN(t, s, reordered)
	redisAnswer := allowN(t, ref, rules)
	span := time.Since(start)
	cmdAfter := commandCalls(t, newClient(t, r))
	if n := evals(sent); n != 3 {
		t.Errorf("the cached store ran %d scripts after the refusal, want none: %v", n-3, sent.names())
	}
	if got := cmdAfter["evalsha"] - cmdBefore["evalsha"]; got != 1 {
		t.Errorf("Redis ran %d EVALSHA for two local answers and one reference decision, want 1", got)
	}
	sameDecision(t, local, first, span)
	sameDecision(t, local, redisAnswer, span)
	if again.Allowed || again.Rule != 2 || again.Tightest != 2 || again.Remaining != 0 {
		t.Errorf("refused bucket at index 2 of a reordered call: %+v", again)
	}
	refAgain := allowN(t, ref, reordered)
	sameDecision(t, again, refAgain, time.Since(start))

	t.Run("a decision without the refused bucket goes to Redis", func(t *testing.T) {
		n := evals(sent)
		other := ratelimit.Rule{Tier: ratelimit.TierSender, Key: "other", Limit: lim("1/h")}
		d := allowN(t, s, []ratelimit.Rule{ip, other, all})
		if !d.Allowed {
			t.Errorf("another sender: %+v", d)
		}
		if got := evals(sent) - n; got != 1 {
			t.Errorf("another sender: %d commands, want 1", got)
		}
		// Same key and tier, another limit: another bucket.
		d = allowN(t, s, []ratelimit.Rule{{Tier: ratelimit.TierSender, Key: "snd", Limit: lim("2/h")}})
		if !d.Allowed {
			t.Errorf("the same sender under another limit: %+v", d)
		}
	})
}

func TestRefusalCacheUntilT(t *testing.T) {
	r := testutil.StartRedis(t)
	clk := &fakeClock{t: time.Unix(1_800_000_000, 0)}
	// A horizon longer than the wait, so only T ends the entry.
	s, sent := cachedStore(t, r, Config{Now: clk.Now, RefusalHorizon: 2 * time.Hour})
	rules := []ratelimit.Rule{{Tier: ratelimit.TierIP, Key: "ip", Limit: lim("2/h")}}
	allowN(t, s, rules)
	allowN(t, s, rules)
	if d := allowN(t, s, rules); d.Allowed || !near(d.RetryAfter, 30*time.Minute) {
		t.Fatalf("refused by Redis: %+v", d)
	}
	n := evals(sent)
	clk.Add(29*time.Minute + 59*time.Second)
	d := allowN(t, s, rules)
	if d.Allowed || d.RetryAfter <= 0 || d.RetryAfter > time.Second || !near(d.Reset, 30*time.Minute+time.Second) {
		t.Errorf("a second before T: %+v, want refused with about a second to wait", d)
	}
	if got := evals(sent) - n; got != 0 {
		t.Errorf("a second before T: %d commands, want 0", got)
	}
	shiftTime(t, newClient(t, r), DefaultPrefix, 30*time.Minute)
	clk.Add(time.Second)
	if d := allowN(t, s, rules); !d.Allowed {
		t.Errorf("at T: %+v, want admitted", d)
	}
	if got := evals(sent) - n; got != 1 {
		t.Errorf("at T: %d commands, want 1 (Redis asked again)", got)
	}
}

func TestRefusalHorizonHonoursManualReset(t *testing.T) {
	r := testutil.StartRedis(t)
	admin := newClient(t, r)
	ctx := context.Background()
	rule := ratelimit.Rule{Tier: ratelimit.TierSender, Key: "snd", Limit: lim("1/h")}
	rules := []ratelimit.Rule{rule}

	t.Run("bucket", func(t *testing.T) {
		clk := &fakeClock{t: time.Unix(1_800_000_000, 0)}
		s, sent := cachedStore(t, r, Config{Prefix: "reset", Now: clk.Now})
		allowN(t, s, rules)
		if d := allowN(t, s, rules); d.Allowed {
			t.Fatalf("refused by Redis: %+v", d)
		}
		if err := admin.Del(ctx, s.ruleKey(&rule)).Err(); err != nil {
			t.Fatal(err)
		}
		n := evals(sent)
		clk.Add(DefaultRefusalHorizon - time.Millisecond)
		if d := allowN(t, s, rules); d.Allowed || evals(sent) != n {
			t.Errorf("within the horizon: %+v after %d commands, want a local refusal", d, evals(sent)-n)
		}
		clk.Add(time.Millisecond)
		if d := allowN(t, s, rules); !d.Allowed || evals(sent) != n+1 {
			t.Errorf("past the horizon: %+v after %d commands, want Redis's admission", d, evals(sent)-n)
		}
	})

	t.Run("ban", func(t *testing.T) {
		clk := &fakeClock{t: time.Unix(1_800_000_000, 0)}
		s, sent := cachedStore(t, r, Config{Prefix: "unban", Now: clk.Now,
			Ban: ratelimit.BanPolicy{Threshold: 1, Base: time.Hour, Max: time.Hour}, RefusalHorizon: time.Minute})
		ref := newStore(t, Config{Client: admin, Prefix: "unban", RefusalHorizon: -1})
		ip := []ratelimit.Rule{
			{Tier: ratelimit.TierGlobal, Key: "all", Limit: lim("100/h")},
			{Tier: ratelimit.TierIP, Key: "bad"},
		}
		start := time.Now()
		ban, err := s.Penalize(ctx, "bad")
		if err != nil || !near(ban, time.Hour) {
			t.Fatalf("Penalize = %s, %v", ban, err)
		}
		n := evals(sent)
		local := allowN(t, s, ip)
		want := allowN(t, ref, ip)
		if evals(sent) != n {
			t.Errorf("a banned client's decision sent %v, want none", sent.names())
		}
		if !want.Banned || want.Rule != 1 {
			t.Fatalf("Redis's answer: %+v", want)
		}
		sameDecision(t, local, want, time.Since(start))
		_, until := s.banKeys("bad")
		if err := admin.Del(ctx, until).Err(); err != nil {
			t.Fatal(err)
		}
		clk.Add(time.Minute - time.Millisecond)
		if d := allowN(t, s, ip); !d.Banned || evals(sent) != n {
			t.Errorf("within the horizon: %+v, want a local ban refusal", d)
		}
		clk.Add(time.Millisecond)
		if d := allowN(t, s, ip); !d.Allowed || evals(sent) != n+1 {
			t.Errorf("past the horizon: %+v after %d commands, want Redis's admission", d, evals(sent)-n)
		}
	})
}

func TestRefusalFromRedisBanIsCached(t *testing.T) {
	r := testutil.StartRedis(t)
	policy := ratelimit.BanPolicy{Threshold: 1, Base: time.Hour, Max: time.Hour}
	s, sent := cachedStore(t, r, Config{Ban: policy})
	other := newStore(t, Config{Client: newClient(t, r), Ban: policy})
	rules := []ratelimit.Rule{
		{Tier: ratelimit.TierIP, Key: "good", Limit: lim("100/h")},
		{Tier: ratelimit.TierIP, Key: "bad", Limit: lim("100/h")},
	}
	if _, err := other.Penalize(context.Background(), "bad"); err != nil { // banned by another process
		t.Fatal(err)
	}
	start := time.Now()
	first := allowN(t, s, rules)
	if !first.Banned || first.Rule != 1 {
		t.Fatalf("Redis's answer: %+v", first)
	}
	n := evals(sent)
	local := allowN(t, s, rules)
	if evals(sent) != n {
		t.Errorf("second decision sent %v, want none", sent.names())
	}
	sameDecision(t, local, first, time.Since(start))
	if d := allowN(t, s, rules[:1]); !d.Allowed {
		t.Errorf("the other client: %+v", d)
	}
}

func TestRefusalCacheOff(t *testing.T) {
	r := testutil.StartRedis(t)
	s, sent := cachedStore(t, r, Config{RefusalHorizon: -1})
	rules := []ratelimit.Rule{{Tier: ratelimit.TierIP, Key: "ip", Limit: lim("1/h")}}
	for range 4 {
		allowN(t, s, rules)
	}
	if n := evals(sent); n != 5 { // NOSCRIPT, EVAL, then one EVALSHA each
		t.Errorf("%d scripts run for 4 decisions without the cache, want 5", n)
	}
	if s.refused != nil {
		t.Error("negative RefusalHorizon left a cache")
	}
}

func TestRefusalCacheBound(t *testing.T) {
	r := testutil.StartRedis(t)
	clk := &fakeClock{t: time.Unix(1_800_000_000, 0)}
	const max = 10
	s, sent := cachedStore(t, r, Config{Now: clk.Now, RefusalMaxKeys: max})
	rule := func(i int) []ratelimit.Rule {
		return []ratelimit.Rule{{Tier: ratelimit.TierSender, Key: "k" + strconv.Itoa(i), Limit: lim("1/h")}}
	}
	for i := range 3 * max {
		allowN(t, s, rule(i))
		if d := allowN(t, s, rule(i)); d.Allowed {
			t.Fatalf("key %d: %+v", i, d)
		}
		if n := s.refused.len(); n > max {
			t.Fatalf("after %d refused keys the cache holds %d entries, bound %d", i+1, n, max)
		}
	}
	if n := s.refused.len(); n != max {
		t.Errorf("cache holds %d entries, want it full at %d", n, max)
	}
	// Keys past the bound are refused by Redis every time, still correctly.
	n := evals(sent)
	if d := allowN(t, s, rule(3*max-1)); d.Allowed || evals(sent) != n+1 {
		t.Errorf("an uncached refused key: %+v after %d commands, want Redis's refusal", d, evals(sent)-n)
	}
	// Once the entries expire, a full cache makes room for new ones.
	clk.Add(DefaultRefusalHorizon)
	allowN(t, s, rule(3*max-1))
	if n := s.refused.len(); n != 1 {
		t.Errorf("after every entry expired and one refusal: %d entries, want 1", n)
	}
	n = evals(sent)
	if d := allowN(t, s, rule(3*max-1)); d.Allowed || evals(sent) != n {
		t.Errorf("the newly cached key: %+v after %d commands, want a local refusal", d, evals(sent)-n)
	}
}

func TestRefusalCacheConcurrent(t *testing.T) {
	r := testutil.StartRedis(t)
	var clock atomic.Int64
	base := time.Unix(1_800_000_000, 0)
	now := func() time.Time { return base.Add(time.Duration(clock.Load())) }
	s, _ := cachedStore(t, r, Config{Now: now, RefusalMaxKeys: 8, RefusalHorizon: time.Second,
		Timeout: 5 * time.Second, Ban: ratelimit.BanPolicy{Threshold: 3}})
	shared := ratelimit.Rule{Tier: ratelimit.TierForm, Key: "f", Limit: lim("30/h")}
	var admitted atomic.Int64
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			ctx := context.Background()
			for i := range 40 {
				own := ratelimit.Rule{Tier: ratelimit.TierSender, Key: "s" + strconv.Itoa((g+i)%12), Limit: lim("2/h")}
				d, err := s.Allow(ctx, []ratelimit.Rule{own, shared})
				if err != nil {
					t.Error(err)
					return
				}
				if d.Allowed {
					admitted.Add(1)
				}
				if i%7 == 0 { // bans, cached and looked up alongside
					bad := "bad" + strconv.Itoa(g%3)
					_, err1 := s.Penalize(ctx, bad)
					_, err2 := s.Allow(ctx, []ratelimit.Rule{{Tier: ratelimit.TierIP, Key: bad}})
					if err := errors.Join(err1, err2); err != nil {
						t.Error(err)
						return
					}
				}
				clock.Add(int64(50 * time.Millisecond))
			}
		})
	}
	wg.Wait()
	// 12 senders at 2/h: exactly 24 admissions, however many refusals
	// were answered locally (the shared 30/h is never reached).
	if got := admitted.Load(); got != 24 {
		t.Errorf("admitted %d, want exactly 24", got)
	}
	if n := s.refused.len(); n > 8 {
		t.Errorf("cache holds %d entries, bound 8", n)
	}
}

func TestRefusalHitDoesNotAllocate(t *testing.T) {
	r := testutil.StartRedis(t)
	s, sent := cachedStore(t, r, Config{RefusalHorizon: time.Hour})
	rules := []ratelimit.Rule{
		{Tier: ratelimit.TierIP, Key: "ip", Limit: lim("1/h")},
		{Tier: ratelimit.TierSender, Key: "snd", Limit: lim("100/h")},
		{Tier: ratelimit.TierGlobal, Key: "all", Limit: lim("1000/h")},
	}
	allowN(t, s, rules)
	allowN(t, s, rules)
	n := evals(sent)
	ctx := context.Background()
	allocs := testing.AllocsPerRun(200, func() {
		if d, err := s.Allow(ctx, rules); err != nil || d.Allowed {
			t.Fatalf("%+v %v", d, err)
		}
	})
	if evals(sent) != n {
		t.Fatalf("the refused decisions went to Redis")
	}
	if allocs != 0 && !raceEnabled {
		t.Errorf("a locally refused decision allocates %.1f times, want 0", allocs)
	}
}

func TestDegradedProbeSkipsCache(t *testing.T) {
	r := testutil.StartRedis(t)
	clk := &fakeClock{t: time.Unix(1_800_000_000, 0)}
	var events []bool
	s, _ := cachedStore(t, r, Config{Now: clk.Now, OnFallback: func(b bool) { events = append(events, b) }})
	rules := []ratelimit.Rule{{Tier: ratelimit.TierIP, Key: "ip", Limit: lim("1/h")}}
	allowN(t, s, rules)
	allowN(t, s, rules) // refused and cached
	r.Stop()
	if _, err := s.Allow(context.Background(), []ratelimit.Rule{{Tier: ratelimit.TierIP, Key: "x", Limit: lim("1/h")}}); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("with Redis down: %v", err)
	}
	clk.Add(DefaultProbeInterval)
	// The probe must reach Redis: a cached refusal would say nothing about
	// whether Redis is back.
	if _, err := s.Allow(context.Background(), rules); !errors.Is(err, ErrUnavailable) {
		t.Errorf("the probe with Redis still down: %v, want ErrUnavailable (not a cached answer)", err)
	}
	if !s.Degraded() || len(events) != 1 {
		t.Errorf("degraded %v, events %v: a cached answer must not count as Redis answering", s.Degraded(), events)
	}
}
