package redisstore

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/formguard/formguard/guard/ratelimit"
	"github.com/formguard/formguard/internal/testutil"
)

// TestParityWithMemory drives the same pseudo-random decisions through the
// Redis store (GCRA on Redis's clock, advanced by shifting stored state)
// and the in-memory store (token buckets on an injected clock) and expects
// the same answers: both implement one budget shape.
func TestParityWithMemory(t *testing.T) {
	r := testutil.StartRedis(t)
	c := newClient(t, r)
	now := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	// The Redis store's clock (its refusal cache's) moves with Redis's
	// shifted one.
	rs := newStore(t, Config{Client: c, Prefix: "parity", Now: func() time.Time { return now }})
	mem, err := ratelimit.NewMemory(ratelimit.MemoryConfig{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	defer mem.Close()

	// Whole-second emission intervals and whole-second steps put every
	// refill boundary on a step, so the few milliseconds Redis's real clock
	// moves during the test never change an answer.
	pool := []ratelimit.Rule{
		{Tier: ratelimit.TierIP, Key: "a", Limit: lim("3/m")},     // 20s
		{Tier: ratelimit.TierIP, Key: "b", Limit: lim("2/10s")},   // 5s
		{Tier: ratelimit.TierSender, Key: "s", Limit: lim("5/h")}, // 12m
		{Tier: ratelimit.TierGlobal, Key: "g", Limit: lim("4/m")}, // 15s
	}
	rng := rand.New(rand.NewPCG(1, 2))
	ctx := context.Background()
	admitted, refused := 0, 0
	for step := range 150 {
		if adv := time.Duration(rng.IntN(4)) * 5 * time.Second; adv > 0 {
			now = now.Add(adv)
			shiftTime(t, c, "parity", adv)
		}
		var rules []ratelimit.Rule
		for _, p := range pool {
			if rng.IntN(2) == 0 {
				rules = append(rules, p)
			}
		}
		dm, err := mem.Allow(ctx, rules)
		if err != nil {
			t.Fatal(err)
		}
		dr, err := rs.Allow(ctx, rules)
		if err != nil {
			t.Fatal(err)
		}
		// Redis's clock runs on by a few ms, so its durations may be
		// slightly shorter; everything else must match exactly.
		if dm.Allowed != dr.Allowed || dm.Rule != dr.Rule || dm.Tightest != dr.Tightest ||
			dm.Remaining != dr.Remaining || !nearOrEqual(dr.Reset, dm.Reset) ||
			!nearOrEqual(dr.RetryAfter, dm.RetryAfter) {
			t.Fatalf("step %d rules %v:\nmemory %+v\nredis  %+v", step, rules, dm, dr)
		}
		if dm.Allowed {
			admitted++
		} else if len(rules) > 0 {
			refused++
		}
	}
	if admitted < 20 || refused < 20 {
		t.Errorf("scenario too one-sided to compare: %d admitted, %d refused", admitted, refused)
	}
}

func nearOrEqual(got, want time.Duration) bool { return got == want || near(got, want) }
