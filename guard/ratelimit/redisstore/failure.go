package redisstore

import (
	"context"
	"fmt"

	"github.com/formguard/formguard/guard/ratelimit"
)

// Only decisions move the store between up and down: Allow marks it down
// when Redis fails a decision and up when one succeeds. Offence writes
// never do (Penalize, penalizeBatch): under a flood they are many, in the
// background, and a slow one says little about the decisions, which a
// store marked down would fail for everyone (issue 14).

// tryRedis reports whether this call should go to Redis: always while up;
// while down, only for the one caller that wins the next probe slot.
func (s *Store) tryRedis() bool {
	if !s.down.Load() {
		return true
	}
	now := s.now().UnixNano()
	next := s.nextProbe.Load()
	return now >= next && s.nextProbe.CompareAndSwap(next, now+int64(s.probeEvery))
}

func (s *Store) markDown() {
	s.nextProbe.Store(s.now().UnixNano() + int64(s.probeEvery))
	if !s.down.Swap(true) && s.onFallback != nil {
		s.onFallback(true)
	}
}

func (s *Store) markUp() {
	if s.down.Load() && s.down.Swap(false) && s.onFallback != nil {
		s.onFallback(false)
	}
}

func (s *Store) degradedAllow(ctx context.Context, rules []ratelimit.Rule, cause error) (ratelimit.Decision, error) {
	if s.mem == nil {
		return ratelimit.Decision{}, fmt.Errorf("%w: %w", ErrUnavailable, cause)
	}
	strict := make([]ratelimit.Rule, len(rules))
	for i, r := range rules {
		if !r.Limit.IsZero() {
			r.Limit.Count = max(1, r.Limit.Count/s.factor)
		}
		strict[i] = r
	}
	d, err := s.mem.Allow(ctx, strict)
	if err != nil {
		return d, fmt.Errorf("%w: fallback: %w (redis: %w)", ErrUnavailable, err, cause)
	}
	return d, nil
}
