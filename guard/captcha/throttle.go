package captcha

import (
	"context"
	"fmt"
	"time"

	"golang.org/x/time/rate"
)

// DefaultThrottleWait is how long Throttle lets a verification wait for its
// turn before failing closed.
const DefaultThrottleWait = time.Second

// Throttle caps how often v may be called with lim, a token bucket that
// several verifiers can share (one per provider account: a third-party
// siteverify quota is per secret, and a flood of garbage tokens would
// otherwise turn into a flood of outgoing calls, spending the quota and the
// service's connections). A verification waits up to maxWait (0 means
// DefaultThrottleWait) for its turn, and fails closed with ErrUnavailable
// when none comes, without calling v. A request without a token is passed
// to v at once: v refuses it without a network call.
//
// The returned Verifier hides v's other methods; wrap only verifiers whose
// Verify is all the guard uses (the siteverify providers).
func Throttle(v Verifier, lim *rate.Limiter, maxWait time.Duration) Verifier {
	if maxWait <= 0 {
		maxWait = DefaultThrottleWait
	}
	return &throttled{v: v, lim: lim, wait: maxWait}
}

type throttled struct {
	v    Verifier
	lim  *rate.Limiter
	wait time.Duration
}

func (t *throttled) Field() string { return t.v.Field() }

func (t *throttled) Verify(ctx context.Context, req Request) error {
	if req.Token == "" {
		return t.v.Verify(ctx, req)
	}
	wctx, cancel := context.WithTimeout(ctx, t.wait)
	err := t.lim.Wait(wctx) // fails at once when the wait would pass the deadline
	cancel()
	if err != nil {
		return fmt.Errorf("%w: over the verification rate cap (%g/s, burst %d): %v",
			ErrUnavailable, float64(t.lim.Limit()), t.lim.Burst(), err)
	}
	return t.v.Verify(ctx, req)
}
