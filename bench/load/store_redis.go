package main

import (
	"time"

	"github.com/formguard/formguard/guard/ratelimit"
	"github.com/formguard/formguard/guard/ratelimit/redisstore"
	"github.com/redis/go-redis/v9"
)

func init() { newRedisStore = redisStore }

// redisStore is the guard's Redis store as the service would build it:
// no client-side retries on the hot path, fail closed, the default
// per-call timeout unless -redis-timeout is set.
func redisStore(addr string, timeout time.Duration) (ratelimit.Store, func(), error) {
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, ContextTimeoutEnabled: true})
	s, err := redisstore.New(redisstore.Config{Client: c, Timeout: timeout})
	if err != nil {
		c.Close()
		return nil, nil, err
	}
	return s, func() { s.Close(); c.Close() }, nil
}
