package ratelimit

import (
	"math"
	"time"
)

// bucket is one key's token bucket, guarded by its shard's lock. It keeps
// golang.org/x/time/rate's representation and arithmetic (tokens at the
// instant last, refilled at rate per second, capped at burst), so it gives
// exactly the answers a rate.Limiter gave, without the limiter's own mutex
// and time.Time arithmetic: the shard lock already excludes every other
// writer, and two more lock pairs per bucket were most of a decision's
// cost.
type bucket struct {
	tokens float64 // tokens held at last
	last   int64   // Unix ns of the last admitted event; 0 for a fresh bucket
	rate   float64 // tokens per second
	burst  float64 // Count
}

// newBucket returns a full bucket for l.
func newBucket(l Limit) *bucket {
	// One ulp above Count/Period so that float rounding never leaves a
	// bucket a hair short of a token at the exact instant it is due.
	r := math.Nextafter(float64(l.Count)/l.Period.Seconds(), math.Inf(1))
	return &bucket{tokens: float64(l.Count), rate: r, burst: float64(l.Count)}
}

// tokensAt is the tokens b holds at t (rate.Limiter.TokensAt): an instant
// before last counts as last.
func (b *bucket) tokensAt(t int64) float64 {
	elapsed := t - b.last
	if elapsed <= 0 {
		return b.tokens
	}
	tokens := b.tokens + time.Duration(elapsed).Seconds()*b.rate
	return min(tokens, b.burst)
}

// take removes one token at t from a bucket holding tokens at t (the
// caller checked that one is due), as rate.Limiter.AllowN(t, 1) does.
func (b *bucket) take(t int64, tokens float64) {
	b.tokens = tokens - 1
	b.last = t
}

// durationFor converts a token amount to the time l takes to refill it,
// rounded up to the nanosecond but tolerant of float noise.
func durationFor(l Limit, tokens float64) time.Duration {
	if tokens <= 0 {
		return 0
	}
	ns := tokens * float64(l.Period) / float64(l.Count)
	if ns >= math.MaxInt64 {
		return math.MaxInt64
	}
	return time.Duration(math.Ceil(ns - 1e-3))
}

// waitFor is how long until a bucket holding tokens has a whole token.
func waitFor(l Limit, tokens float64) time.Duration {
	if tokens >= 1 {
		return 0
	}
	return durationFor(l, 1-tokens)
}

// resetFor is how long until a bucket holding tokens is full again.
func resetFor(l Limit, tokens float64) time.Duration {
	return durationFor(l, float64(l.Count)-tokens)
}

// remaining is the number of whole tokens in a bucket holding tokens,
// counting a token as whole exactly when waitFor would say it is due.
func remaining(l Limit, tokens float64) int {
	if tokens <= 0 {
		return 0
	}
	n := math.Floor(tokens)
	if durationFor(l, n+1-tokens) == 0 {
		n++
	}
	return int(n)
}

// loss ranks what forgetting b at now gives up, for eviction (see
// evictOne): the events it has counted and not yet refilled. A bucket
// that is full again loses nothing, an exhausted one its whole Count.
func (b *bucket) loss(now int64) float64 { return b.burst - b.tokensAt(now) }
