package redisstore

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/formguard/formguard/guard/ratelimit"
	"github.com/formguard/formguard/internal/testutil"
)

// TestUniqueScriptMatchesGeneral drives the same decisions (no key listed
// twice) through the fast script and, on another prefix of the same Redis,
// through the general one, and expects the same answers. The two stores'
// calls run at slightly different instants of Redis's clock, so durations
// may differ by the wall time of a few calls.
func TestUniqueScriptMatchesGeneral(t *testing.T) {
	r := testutil.StartRedis(t)
	c := newClient(t, r)
	fast := newStore(t, Config{Client: c, Prefix: "fast"})
	general := newStore(t, Config{Client: c, Prefix: "general"})
	general.allowUnique = general.allow // every decision takes the general script
	pool := []ratelimit.Rule{
		{Tier: ratelimit.TierIP, Key: "a", Limit: lim("3/m")},
		{Tier: ratelimit.TierSender, Key: "s", Limit: lim("2/10s")},
		{Tier: ratelimit.TierRecipient, Key: "r", Limit: lim("3/10s")}, // a fractional interval
		{Tier: ratelimit.TierGlobal, Key: "g", Limit: lim("4/m")},
	}
	rng := rand.New(rand.NewPCG(3, 4))
	ctx := context.Background()
	admitted, refused := 0, 0
	for step := range 120 {
		if adv := time.Duration(rng.IntN(3)) * 5 * time.Second; adv > 0 {
			shiftTime(t, c, "fast", adv)
			shiftTime(t, c, "general", adv)
		}
		var rules []ratelimit.Rule
		for _, p := range pool {
			if rng.IntN(2) == 0 {
				rules = append(rules, p)
			}
		}
		df, err := fast.Allow(ctx, rules)
		if err != nil {
			t.Fatal(err)
		}
		dg, err := general.Allow(ctx, rules)
		if err != nil {
			t.Fatal(err)
		}
		if df.Allowed != dg.Allowed || df.Rule != dg.Rule || df.Tightest != dg.Tightest ||
			df.Remaining != dg.Remaining || !within(df.Reset, dg.Reset, time.Second) ||
			!within(df.RetryAfter, dg.RetryAfter, time.Second) {
			t.Fatalf("step %d rules %v:\nunique  %+v\ngeneral %+v", step, rules, df, dg)
		}
		if df.Allowed {
			admitted++
		} else if len(rules) > 0 {
			refused++
		}
	}
	if admitted < 20 || refused < 20 {
		t.Errorf("scenario too one-sided to compare: %d admitted, %d refused", admitted, refused)
	}
}

func within(a, b, tol time.Duration) bool { return a-b < tol && b-a < tol }

func TestRepeats(t *testing.T) {
	for _, tt := range []struct {
		keys []string
		want bool
	}{
		{nil, false},
		{[]string{"a"}, false},
		{[]string{"a", "b", "c"}, false},
		{[]string{"a", "b", "a"}, true},
		{[]string{"a", "a"}, true},
	} {
		if got := repeats(tt.keys); got != tt.want {
			t.Errorf("repeats(%q) = %v, want %v", tt.keys, got, tt.want)
		}
	}
}
