package server

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/redis/go-redis/v9"

	"github.com/formguard/formguard/guard/captcha"
	"github.com/formguard/formguard/guard/ratelimit"
	"github.com/formguard/formguard/guard/ratelimit/redisstore"
	"github.com/formguard/formguard/internal/config"
	"github.com/formguard/formguard/mailer/outbox"
)

// redisParts are what redis_url switches to Redis: rate limits (one Lua
// call per decision), the single-use token cache and, unless mail.outbox
// is dir, the outbox (a stream shared by every instance; queue is nil
// otherwise).
type redisParts struct {
	client *redis.Client
	store  ratelimit.Store
	replay captcha.ReplayCache
	queue  outbox.Queue
}

// openRedis connects to cfg.RedisURL and builds the Redis-backed parts. A
// Redis that does not answer at start-up is an error: the service starts
// only when it can keep its promises.
func openRedis(ctx context.Context, cfg *config.Config, opt Options, log *slog.Logger) (rp *redisParts, err error) {
	// go-redis logs pool errors with the log package; keep stderr JSON.
	redisLog.Store(log)
	redisLogOnce.Do(func() { redis.SetLogger(redisLogger{}) })
	ropt, err := redis.ParseURL(cfg.RedisURL)
	if err != nil {
		return nil, fmt.Errorf("server: redis_url: %v", err)
	}
	// Per-call timeouts must bound socket I/O, and the limiter must never
	// retry a script whose reply was lost (it would consume twice).
	ropt.ContextTimeoutEnabled = true
	ropt.MaxRetries = -1
	client := redis.NewClient(ropt)
	defer func() {
		if err != nil {
			_ = client.Close()
		}
	}()
	pctx, cancel := context.WithTimeout(ctx, RedisStartTimeout)
	err = client.Ping(pctx).Err()
	cancel()
	if err != nil {
		return nil, fmt.Errorf("server: redis at %s does not answer: %w", ropt.Addr, err)
	}
	failure := redisstore.FailClosed
	if cfg.Limits.RedisFallback {
		failure = redisstore.FailoverMemory
	}
	store, err := redisstore.New(redisstore.Config{
		Client: client, Prefix: RedisPrefix, Failure: failure, Now: opt.Now,
		Timeout: cfg.Limits.RedisTimeout, FallbackMaxKeys: cfg.Limits.MemoryKeys,
		OnFallback: func(active bool) {
			if active {
				log.Warn("rate limits: redis unreachable", "policy", failure.String())
			} else {
				log.Info("rate limits: redis answers again")
			}
		},
	})
	if err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	var queue outbox.Queue
	if cfg.Mail.Outbox == config.OutboxKindRedis {
		qctx, cancel := context.WithTimeout(ctx, RedisStartTimeout)
		queue, err = outbox.NewRedis(qctx, outbox.RedisConfig{Client: client, Stream: RedisPrefix + ":outbox", Now: opt.Now})
		cancel()
		if err != nil {
			_ = store.Close()
			return nil, fmt.Errorf("server: %w", err)
		}
	}
	replay := redisstore.NewReplayCache(client, RedisPrefix)
	replay.SetTimeout(cfg.Limits.RedisTimeout)
	return &redisParts{client: client, store: store, replay: replay, queue: queue}, nil
}

// go-redis's logger is process-wide: it is set once, and forwards to the
// logger of the most recently opened Service.
var (
	redisLog     atomic.Pointer[slog.Logger]
	redisLogOnce sync.Once
)

// redisLogger sends go-redis's own messages (connection pool errors) to
// slog as warnings. They carry addresses, never data or passwords.
type redisLogger struct{}

func (redisLogger) Printf(ctx context.Context, format string, v ...any) {
	if l := redisLog.Load(); l != nil {
		l.WarnContext(ctx, "redis client", "detail", fmt.Sprintf(format, v...))
	}
}
