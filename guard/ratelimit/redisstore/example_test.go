package redisstore_test

import (
	"context"
	"log/slog"

	"github.com/redis/go-redis/v9"

	"github.com/formguard/formguard/guard/ratelimit"
	"github.com/formguard/formguard/guard/ratelimit/redisstore"
)

// Wiring a Redis store that falls back to stricter local limits when Redis
// is down. (Not run: it needs a Redis server.)
func ExampleNew() {
	client := redis.NewClient(&redis.Options{
		Addr:                  "127.0.0.1:6379",
		MaxRetries:            -1,   // no retries on the hot path
		ContextTimeoutEnabled: true, // required: lets Timeout bound the round trip
	})
	store, err := redisstore.New(redisstore.Config{
		Client:  client,
		Failure: redisstore.FailoverMemory,
		OnFallback: func(active bool) {
			slog.Warn("rate limiter fallback", "active", active)
		},
	})
	if err != nil {
		panic(err)
	}
	defer store.Close()

	perIP, _ := ratelimit.ParseLimit("5/h")
	d, err := store.Allow(context.Background(), []ratelimit.Rule{
		{Tier: ratelimit.TierIP, Key: "hashed-client", Limit: perIP},
	})
	if err != nil || !d.Allowed {
		return // refuse: 503 on error, 429 otherwise
	}
}
