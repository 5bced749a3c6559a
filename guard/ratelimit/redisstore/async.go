package redisstore

import (
	"context"
	"fmt"
	"time"

	"github.com/formguard/formguard/guard/ratelimit"
)

// DefaultMaxAsyncPenalties bounds the offences PenalizeAsync keeps in
// flight at once; past it, an offence is recorded before PenalizeAsync
// returns.
const DefaultMaxAsyncPenalties = 1024

// A flood of honeypot or injection hits from one client used to hold each
// request for a Penalize round trip whose result changes nothing in the
// answer. PenalizeAsync lets the request go and records the offence in the
// background; the offences of one key still coalesce into shared script
// runs (penalize.go). pending counts, per key, the offences handed off but
// not yet recorded, and Allow waits for them when a TierIP rule names the
// key: the client's next request is decided after its earlier offences,
// exactly as with synchronous Penalize calls. Requests of other clients
// never wait.

// pendingOffences is one key's offences in flight; idle is closed when the
// last of them is recorded.
type pendingOffences struct {
	n    int
	idle chan struct{}
}

// PenalizeAsync implements ratelimit.AsyncBanner.
func (s *Store) PenalizeAsync(ctx context.Context, key string, done func(time.Duration, error)) {
	ctx = context.WithoutCancel(ctx)
	s.bgMu.Lock()
	if s.bgClosed {
		s.bgMu.Unlock()
		s.penalizeNow(ctx, key, done)
		return
	}
	select {
	case s.bgSlots <- struct{}{}:
	default:
		// Backpressure: recording falls behind, so this caller waits for
		// its own offence rather than the offence being dropped.
		s.bgMu.Unlock()
		s.penalizeNow(ctx, key, done)
		return
	}
	p := s.pending[key]
	if p == nil {
		p = &pendingOffences{idle: make(chan struct{})}
		s.pending[key] = p
	}
	p.n++
	s.npending.Add(1)
	s.bg.Add(1)
	s.bgMu.Unlock()
	go func() {
		defer s.bg.Done()
		ban, err := s.Penalize(ctx, key)
		s.bgMu.Lock()
		if p.n--; p.n == 0 {
			delete(s.pending, key)
			close(p.idle)
		}
		s.npending.Add(-1)
		s.bgMu.Unlock()
		<-s.bgSlots
		if done != nil {
			done(ban, err)
		}
	}()
}

func (s *Store) penalizeNow(ctx context.Context, key string, done func(time.Duration, error)) {
	ban, err := s.Penalize(ctx, key)
	if done != nil {
		done(ban, err)
	}
}

// awaitOffences waits until no offence handed to PenalizeAsync for the key
// of any TierIP rule is still in flight. The common case, nothing in
// flight anywhere, costs one atomic load.
func (s *Store) awaitOffences(ctx context.Context, rules []ratelimit.Rule) error {
	if s.npending.Load() == 0 {
		return nil
	}
	for i := range rules {
		if rules[i].Tier != ratelimit.TierIP {
			continue
		}
		s.bgMu.Lock()
		p := s.pending[rules[i].Key]
		s.bgMu.Unlock()
		if p == nil {
			continue
		}
		select {
		case <-p.idle:
		case <-ctx.Done():
			return fmt.Errorf("redisstore: %w", ctx.Err())
		}
	}
	return nil
}

// drainOffences stops handing offences to the background and waits for
// those in flight to be recorded.
func (s *Store) drainOffences() {
	s.bgMu.Lock()
	s.bgClosed = true
	s.bgMu.Unlock()
	s.bg.Wait()
}
