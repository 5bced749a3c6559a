package ratelimit

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"golang.org/x/time/rate"
)

// TestMemoryMatchesRateLimiter checks the memory store's buckets against
// golang.org/x/time/rate, the token bucket they implement inline (see
// bucket): for random limits and random request times, one key through
// Memory.Allow and one rate.Limiter with the same rate and burst must
// admit and refuse exactly the same requests. Two and three tiers are
// checked the same way against one limiter per tier, admitting only when
// every limiter has a token at that instant and then taking one from each
// (all-or-nothing), which is what the store promises.
func TestMemoryMatchesRateLimiter(t *testing.T) {
	ctx := context.Background()
	for seed := uint64(1); seed <= 40; seed++ {
		rng := rand.New(rand.NewPCG(seed, 0x5eed))
		tiers := 1 + int(seed%3)
		rules := make([]Rule, tiers)
		oracles := make([]*rate.Limiter, tiers)
		for i := range rules {
			l := Limit{Count: 1 + rng.IntN(10), Period: time.Duration(1+rng.IntN(120)) * time.Second}
			rules[i] = Rule{Tier: []string{TierIP, TierSender, TierForm}[i], Key: "k", Limit: l}
			// The same nudged rate as newBucket: one ulp above Count/Period.
			r := math.Nextafter(float64(l.Count)/l.Period.Seconds(), math.Inf(1))
			oracles[i] = rate.NewLimiter(rate.Limit(r), l.Count)
		}
		c := newClock()
		m := newTestMemory(t, MemoryConfig{Now: c.Now})
		now := c.Now()
		admitted, refused := 0, 0
		// The first tier's refill interval sets the pace, so every limit
		// sees both bursts it must refuse and gaps it must admit.
		unit := int64(rules[0].Limit.Period) / int64(rules[0].Limit.Count)
		for n := 0; n < 400; n++ {
			// Bursts (same instant), short gaps and long idle periods.
			switch rng.IntN(4) {
			case 0:
			case 1, 2:
				now = now.Add(time.Duration(rng.Int64N(unit/2 + 1)))
			default:
				now = now.Add(time.Duration(rng.Int64N(3*unit + 1)))
			}
			c.Set(now)
			d, err := m.Allow(ctx, rules)
			if err != nil {
				t.Fatal(err)
			}
			want := true
			for _, o := range oracles {
				if o.TokensAt(now) < 1 {
					want = false
				}
			}
			if want {
				for _, o := range oracles {
					if !o.AllowN(now, 1) {
						t.Fatalf("seed %d: oracle limiter refused after TokensAt said yes", seed)
					}
				}
				admitted++
			} else {
				refused++
			}
			if d.Allowed != want {
				t.Fatalf("seed %d request %d at +%s (rules %v): Memory allowed=%v, rate.Limiter allowed=%v",
					seed, n, now.Sub(newClock().Now()), rules, d.Allowed, want)
			}
		}
		if admitted == 0 || refused == 0 {
			t.Fatalf("seed %d: %d admitted, %d refused: the sequence does not exercise both answers", seed, admitted, refused)
		}
	}
}
