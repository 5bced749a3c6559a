package redisstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/formguard/formguard/guard/captcha"
)

// minReplayTTL keeps a used token remembered at least this long even when
// its stated expiry is already past (clock skew between hosts), so a
// token can never be fresh twice.
const minReplayTTL = time.Minute

// ReplayCache is a captcha.ReplayCache shared by every process using the
// same Redis: one SET NX PXAT per token.
type ReplayCache struct {
	c       redis.UniversalClient
	base    string
	timeout time.Duration
	now     func() time.Time
}

var _ captcha.ReplayCache = (*ReplayCache)(nil)

// NewReplayCache returns a replay cache storing used tokens under
// PREFIX:rp: ("" means DefaultPrefix). Each call is bounded by
// DefaultTimeout (see SetTimeout); any Redis error is returned (callers
// fail closed).
func NewReplayCache(client redis.UniversalClient, prefix string) *ReplayCache {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	return &ReplayCache{c: client, base: prefix + ":rp:", timeout: DefaultTimeout, now: time.Now}
}

// SetTimeout bounds each later call by d; d <= 0 restores DefaultTimeout.
// Call it before the cache is shared between goroutines.
func (rc *ReplayCache) SetTimeout(d time.Duration) {
	if d <= 0 {
		d = DefaultTimeout
	}
	rc.timeout = d
}

// Use implements captcha.ReplayCache: SET key 1 NX PXAT expiry is atomic,
// so of any number of concurrent uses across hosts exactly one is fresh.
func (rc *ReplayCache) Use(ctx context.Context, key string, expiry time.Time) (bool, error) {
	if rc.c == nil {
		return false, fmt.Errorf("%w: nil client", ErrBadConfig)
	}
	if floor := rc.now().Add(minReplayTTL); expiry.Before(floor) {
		expiry = floor
	}
	ctx, cancel := context.WithTimeout(ctx, rc.timeout)
	defer cancel()
	err := rc.c.Do(ctx, "SET", rc.base+hashHex("replay", key), "1", "NX", "PXAT", expiry.UnixMilli()).Err()
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, redis.Nil):
		return false, nil
	default:
		return false, fmt.Errorf("%w: replay cache: %w", ErrUnavailable, err)
	}
}
