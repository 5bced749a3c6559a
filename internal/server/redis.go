package server

import (
	"context"
	"errors"
	"log/slog"

	"github.com/redis/go-redis/v9"

	"github.com/formguard/formguard/guard/captcha"
	"github.com/formguard/formguard/guard/ratelimit"
	"github.com/formguard/formguard/internal/config"
	"github.com/formguard/formguard/mailer/outbox"
)

// redisParts are what redis_url switches to Redis.
type redisParts struct {
	client *redis.Client
	store  ratelimit.Store
	replay captcha.ReplayCache
	queue  outbox.Queue
}

// openRedis is wired to guard/ratelimit/redisstore once that package has
// landed; until then redis_url is refused at start rather than silently
// running with per-process limits.
func openRedis(ctx context.Context, cfg *config.Config, opt Options, log *slog.Logger, onFallback func(bool)) (*redisParts, error) {
	return nil, errors.New("server: redis_url: the Redis rate-limit store is not available in this build yet; unset redis_url")
}
