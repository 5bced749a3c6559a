package redisstore

import (
	"context"
	"encoding/binary"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
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

// TestStoredTATFormat: buckets are written as 8-byte doubles, and a decimal
// TAT left by an older version is read as what it says (an upgrade keeps
// every budget), by both scripts.
func TestStoredTATFormat(t *testing.T) {
	r := testutil.StartRedis(t)
	c := newClient(t, r)
	ctx := context.Background()
	for _, general := range []bool{false, true} {
		name := "unique script"
		if general {
			name = "general script"
		}
		t.Run(name, func(t *testing.T) {
			s := newStore(t, Config{Client: c, Prefix: strings.ReplaceAll(name, " ", "-")})
			if general {
				s.allowUnique = s.allow
			}
			rule := ratelimit.Rule{Tier: ratelimit.TierSender, Key: "s", Limit: lim("3/h")}
			key := s.ruleKey(&rule)
			d, err := s.Allow(ctx, []ratelimit.Rule{rule})
			if err != nil || !d.Allowed || d.Remaining != 2 {
				t.Fatalf("first decision %+v %v", d, err)
			}
			raw, err := c.Get(ctx, key).Bytes()
			if err != nil || len(raw) != 8 {
				t.Fatalf("stored TAT %q %v, want 8 bytes", raw, err)
			}
			us, _, _ := decodeTAT(raw)
			// Rewrite it as an older version would have: a decimal.
			ttl := c.PTTL(ctx, key).Val()
			if err := c.Set(ctx, key, strconv.FormatFloat(us, 'g', 17, 64), ttl).Err(); err != nil {
				t.Fatal(err)
			}
			d, err = s.Allow(ctx, []ratelimit.Rule{rule})
			if err != nil || !d.Allowed || d.Remaining != 1 {
				t.Fatalf("after a decimal TAT: %+v %v, want remaining 1 (the earlier event counted)", d, err)
			}
			if raw, _ := c.Get(ctx, key).Bytes(); len(raw) != 8 {
				t.Errorf("rewritten TAT %q, want 8 bytes again", raw)
			}
		})
	}
}

func TestAppendLimit(t *testing.T) {
	b := appendLimit(nil, lim("3/10s"))
	if len(b) != 16 {
		t.Fatalf("len %d, want 16", len(b))
	}
	period := math.Float64frombits(binary.LittleEndian.Uint64(b[:8]))
	step := math.Float64frombits(binary.LittleEndian.Uint64(b[8:]))
	if period != 10e6 || step != 10e6/3.0 {
		t.Errorf("period %v step %v, want 1e7 and 1e7/3", period, step)
	}
	// A sub-microsecond period still counts as one microsecond, as before.
	b = appendLimit(nil, ratelimit.Limit{Count: 2, Period: time.Nanosecond})
	if p := math.Float64frombits(binary.LittleEndian.Uint64(b[:8])); p != 1 {
		t.Errorf("sub-µs period packed as %v, want 1", p)
	}
}

// TestBanOnlyDecision: a TierIP rule without a limit still carries the ban,
// so the script runs with no bucket at all (an empty packed-limits argument).
func TestBanOnlyDecision(t *testing.T) {
	r := testutil.StartRedis(t)
	s := newStore(t, Config{Client: newClient(t, r), Ban: ratelimit.BanPolicy{Threshold: 1, Base: time.Minute}})
	ctx := context.Background()
	rules := []ratelimit.Rule{{Tier: ratelimit.TierIP, Key: "ip"}}
	if d, err := s.Allow(ctx, rules); err != nil || !d.Allowed || d.Tightest != -1 {
		t.Fatalf("before any offence: %+v %v", d, err)
	}
	if _, err := s.Penalize(ctx, "ip"); err != nil {
		t.Fatal(err)
	}
	d, err := s.Allow(ctx, rules)
	if err != nil || d.Allowed || !d.Banned || d.Rule != 0 || !near(d.RetryAfter, time.Minute) {
		t.Fatalf("banned: %+v %v", d, err)
	}
}
