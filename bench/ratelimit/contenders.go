package main

import (
	"context"
	"time"

	"github.com/go-chi/httprate"
	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"
	"github.com/sethvargo/go-limiter/memorystore"
	"github.com/throttled/throttled/v2"
	"github.com/throttled/throttled/v2/store/memstore"
	ulule "github.com/ulule/limiter/v3"
	ulmem "github.com/ulule/limiter/v3/drivers/store/memory"
	ulredis "github.com/ulule/limiter/v3/drivers/store/redis"

	"github.com/formguard/formguard/guard/ratelimit"
	"github.com/formguard/formguard/guard/ratelimit/redisstore"
)

// limiter is one contender configured for one limit. decide makes one
// request's decision over keys (one key per tier). Ours decides all tiers
// in one call; peers have no multi-key API, so they are called once per
// tier, which is what a caller of theirs would have to do (and still
// without all-or-nothing).
type limiter struct {
	decide func(ctx context.Context, keys []string) (bool, error)
	close  func()
}

type contender struct {
	name  string
	ours  bool
	redis bool
	make  func(env *env, l ratelimit.Limit) (limiter, error)
}

type env struct {
	rdb *redis.Client
	pid int // redis-server's, for its CPU time
}

var tiers = []string{ratelimit.TierIP, ratelimit.TierSender, ratelimit.TierRecipient, ratelimit.TierForm, ratelimit.TierGlobal}

// perKey adapts a single-key peer: every tier is one more call.
func perKey(one func(ctx context.Context, key string) (bool, error)) func(context.Context, []string) (bool, error) {
	return func(ctx context.Context, keys []string) (bool, error) {
		ok := true
		for _, k := range keys {
			allowed, err := one(ctx, k)
			if err != nil {
				return false, err
			}
			ok = ok && allowed
		}
		return ok, nil
	}
}

// oursDecide turns keys into Rules in a slice it reuses, as the guard
// does per request (the bench drives one decision at a time).
func oursDecide(s ratelimit.Store, l ratelimit.Limit) func(context.Context, []string) (bool, error) {
	rules := make([]ratelimit.Rule, 0, len(tiers))
	return func(ctx context.Context, keys []string) (bool, error) {
		rules = rules[:0]
		for i, k := range keys {
			rules = append(rules, ratelimit.Rule{Tier: tiers[i%len(tiers)], Key: k, Limit: l})
		}
		d, err := s.Allow(ctx, rules)
		return d.Allowed, err
	}
}

var contenders = []contender{
	{name: "formguard Memory", ours: true, make: func(_ *env, l ratelimit.Limit) (limiter, error) {
		m, err := ratelimit.NewMemory(ratelimit.MemoryConfig{})
		if err != nil {
			return limiter{}, err
		}
		return limiter{decide: oursDecide(m, l), close: func() { _ = m.Close() }}, nil
	}},
	{name: "sethvargo/go-limiter memorystore", make: func(_ *env, l ratelimit.Limit) (limiter, error) {
		st, err := memorystore.New(&memorystore.Config{Tokens: uint64(l.Count), Interval: l.Period, SweepInterval: time.Hour})
		if err != nil {
			return limiter{}, err
		}
		return limiter{decide: perKey(func(ctx context.Context, k string) (bool, error) {
			_, _, _, ok, err := st.Take(ctx, k)
			return ok, err
		}), close: func() { _ = st.Close(context.Background()) }}, nil
	}},
	{name: "throttled/v2 memstore GCRA", make: func(_ *env, l ratelimit.Limit) (limiter, error) {
		st, err := memstore.NewCtx(0)
		if err != nil {
			return limiter{}, err
		}
		rl, err := throttled.NewGCRARateLimiterCtx(st, throttled.RateQuota{
			MaxRate: throttled.PerDuration(l.Count, l.Period), MaxBurst: l.Count - 1,
		})
		if err != nil {
			return limiter{}, err
		}
		return limiter{decide: perKey(func(ctx context.Context, k string) (bool, error) {
			limited, _, err := rl.RateLimitCtx(ctx, k, 1)
			return !limited, err
		}), close: func() {}}, nil
	}},
	{name: "ulule/limiter/v3 memory", make: func(_ *env, l ratelimit.Limit) (limiter, error) {
		lim := ulule.New(ulmem.NewStore(), ulule.Rate{Period: l.Period, Limit: int64(l.Count)})
		return limiter{decide: perKey(func(ctx context.Context, k string) (bool, error) {
			c, err := lim.Get(ctx, k)
			return !c.Reached, err
		}), close: func() {}}, nil
	}},
	{name: "go-chi/httprate local counter", make: func(_ *env, l ratelimit.Limit) (limiter, error) {
		rl := httprate.NewRateLimiter(l.Count, l.Period)
		counter := rl.Counter()
		return limiter{decide: perKey(func(_ context.Context, k string) (bool, error) {
			// What httprate's handler does per request: read the sliding
			// window rate, then count the request in the current window.
			ok, _, err := rl.Status(k)
			if err != nil || !ok {
				return false, err
			}
			return true, counter.Increment(k, time.Now().UTC().Truncate(l.Period))
		}), close: func() {}}, nil
	}},
	{name: "formguard redisstore", ours: true, redis: true, make: func(e *env, l ratelimit.Limit) (limiter, error) {
		s, err := redisstore.New(redisstore.Config{Client: e.rdb, Prefix: "fgbench", Timeout: 2 * time.Second})
		if err != nil {
			return limiter{}, err
		}
		return limiter{decide: oursDecide(s, l), close: func() { _ = s.Close() }}, nil
	}},
	{name: "go-redis/redis_rate/v10", redis: true, make: func(e *env, l ratelimit.Limit) (limiter, error) {
		rl := redis_rate.NewLimiter(e.rdb)
		lim := redis_rate.Limit{Rate: l.Count, Burst: l.Count, Period: l.Period}
		return limiter{decide: perKey(func(ctx context.Context, k string) (bool, error) {
			res, err := rl.Allow(ctx, k, lim)
			if err != nil {
				return false, err
			}
			return res.Allowed > 0, nil
		}), close: func() {}}, nil
	}},
	{name: "ulule/limiter/v3 redis", redis: true, make: func(e *env, l ratelimit.Limit) (limiter, error) {
		st, err := ulredis.NewStoreWithOptions(e.rdb, ulule.StoreOptions{Prefix: "ulule", MaxRetry: 0})
		if err != nil {
			return limiter{}, err
		}
		lim := ulule.New(st, ulule.Rate{Period: l.Period, Limit: int64(l.Count)})
		return limiter{decide: perKey(func(ctx context.Context, k string) (bool, error) {
			c, err := lim.Get(ctx, k)
			return !c.Reached, err
		}), close: func() {}}, nil
	}},
}
