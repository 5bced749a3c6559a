package captcha

import (
	"context"
	"fmt"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// DefaultThrottleWait is how long Throttle lets a verification wait for its
// turn before failing closed.
const DefaultThrottleWait = time.Second

// Per-client shares of a Throttle's budget.
const (
	// ThrottleShare divides the shared budget into each client's share: a
	// client may make at most burst/ThrottleShare calls at once (at least
	// one) and rate/ThrottleShare a second. One client, however many
	// connections it opens, then spends at most an eighth of the budget,
	// and the rest stays for everyone else (issue 14: one banned client
	// at 64 connections spent all of it, and 20 of 20 good visitors got
	// 503). Eight shares, because a real visitor verifies a token or two
	// per form and the default budget (20/s, burst 20) leaves each client
	// 2 at once and 2.5/s: plenty for a person, little for a flood.
	ThrottleShare = 8
	// MaxThrottleClients bounds the clients whose share a Throttle
	// remembers; past it the oldest is forgotten (it starts afresh, with
	// at most one share more).
	MaxThrottleClients = 10_000
)

// Throttle caps how often v may be called with lim, a token bucket that
// several verifiers can share (one per provider account: a third-party
// siteverify quota is per secret, and a flood of garbage tokens would
// otherwise turn into a flood of outgoing calls, spending the quota and the
// service's connections). A verification waits up to maxWait (0 means
// DefaultThrottleWait) for its turn, and fails closed with ErrUnavailable
// when none comes, without calling v. A request without a token is passed
// to v at once: v refuses it without a network call.
//
// Each client (Request.ClientKey) also has its own share of lim (see
// ThrottleShare), checked first, on the request's clock (Request.Now, or
// the system clock when zero): a client over its share fails at once with
// ErrUnavailable, without waiting and without spending lim. The shares
// belong to the returned Verifier, so a client verifying on several
// throttled forms has a share on each. A request without a ClientKey is
// held to lim alone.
//
// The returned Verifier hides v's other methods; wrap only verifiers whose
// Verify is all the guard uses (the siteverify providers).
func Throttle(v Verifier, lim *rate.Limiter, maxWait time.Duration) Verifier {
	if maxWait <= 0 {
		maxWait = DefaultThrottleWait
	}
	return &throttled{
		v: v, lim: lim, wait: maxWait,
		share:      lim.Limit() / ThrottleShare,
		shareBurst: max(1, lim.Burst()/ThrottleShare),
		clients:    make(map[string]*rate.Limiter),
	}
}

type throttled struct {
	v    Verifier
	lim  *rate.Limiter
	wait time.Duration

	share      rate.Limit // each client's rate
	shareBurst int        // each client's burst
	mu         sync.Mutex
	clients    map[string]*rate.Limiter // each client's share
	order      []string                 // clients' keys by arrival, a ring once full
	next       int                      // the oldest in order once full
}

func (t *throttled) Field() string { return t.v.Field() }

func (t *throttled) Verify(ctx context.Context, req Request) error {
	if req.Token == "" {
		return t.v.Verify(ctx, req)
	}
	var own *rate.Reservation
	now := req.Now
	if req.ClientKey != "" {
		if now.IsZero() {
			now = time.Now()
		}
		own = t.client(req.ClientKey).ReserveN(now, 1)
		if !own.OK() || own.DelayFrom(now) > 0 {
			own.CancelAt(now)
			return fmt.Errorf("%w: client over its share of the verification rate cap (%g/s, burst %d)",
				ErrUnavailable, float64(t.share), t.shareBurst)
		}
	}
	wctx, cancel := context.WithTimeout(ctx, t.wait)
	err := t.lim.Wait(wctx) // fails at once when the wait would pass the deadline
	cancel()
	if err != nil {
		if own != nil {
			own.CancelAt(now) // not verified: the client keeps its share
		}
		return fmt.Errorf("%w: over the verification rate cap (%g/s, burst %d): %v",
			ErrUnavailable, float64(t.lim.Limit()), t.lim.Burst(), err)
	}
	return t.v.Verify(ctx, req)
}

// client returns key's share, creating it (and forgetting the oldest
// client when MaxThrottleClients are remembered) on first use.
func (t *throttled) client(key string) *rate.Limiter {
	t.mu.Lock()
	defer t.mu.Unlock()
	if l, ok := t.clients[key]; ok {
		return l
	}
	if len(t.order) < MaxThrottleClients {
		t.order = append(t.order, key)
	} else {
		delete(t.clients, t.order[t.next])
		t.order[t.next] = key
		t.next = (t.next + 1) % len(t.order)
	}
	l := rate.NewLimiter(t.share, t.shareBurst)
	t.clients[key] = l
	return l
}
