package redisstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/formguard/formguard/guard/ratelimit"
)

// Offences handed to PenalizeAsync.
const (
	// DefaultMaxAsyncPenalties bounds the offences PenalizeAsync holds
	// (queued or being recorded); past it, new offences are dropped.
	DefaultMaxAsyncPenalties = 1024
	// penaltyWorkers is how many goroutines record offences, each with at
	// most one round trip in flight: a flood of offences occupies at most
	// this many of the client's pooled connections, and the decisions of
	// everyone else keep the rest.
	penaltyWorkers = 2
	// maxPenaltyBatch is how many offences one round trip records: one
	// script run for all their keys, so a batch holds Redis for well under
	// a millisecond.
	maxPenaltyBatch = 32
	// penaltyTimeoutFactor stretches Timeout for a batch: no request waits
	// for it (an Allow waits at most Timeout, see awaitOffences), and a
	// batch cut short loses all its offences.
	penaltyTimeoutFactor = 4
)

// ErrOffenceDropped is passed to PenalizeAsync's done when the offence was
// not recorded because DefaultMaxAsyncPenalties offences were already
// waiting; DroppedOffences counts them.
var ErrOffenceDropped = errors.New("redisstore: offence dropped, too many in flight")

// A flood of honeypot hits from many addresses (issue 14: 20k at 5.6k/s)
// used to start one goroutine and one script run per offence, each under
// the decision Timeout: hundreds of round trips at once, queued for the
// client's pooled connections, timed out and, taken for a Redis outage,
// failed every visitor's decision with 503 limiter_unavailable. So an
// offence is queued, and penaltyWorkers goroutines record the queue in
// batches, one script run per batch with the offences of one key coalesced
// (n offences at one instant, as penalize.go's coalescing does). A recording that fails or times out is counted by the
// caller's done and never marks the store down; a full queue drops the
// offence at once instead of holding the offending request.
//
// pending counts, per key, the offences handed off but not yet recorded,
// and Allow waits for them (at most Timeout) when a TierIP rule names the
// key: the client's next request is decided after its earlier offences,
// as with synchronous Penalize calls. Requests of other clients never wait.

// offence is one PenalizeAsync call waiting to be recorded.
type offence struct {
	key  string
	done func(time.Duration, error)
}

// pendingOffences is one key's offences in flight; idle is closed when the
// last of them is recorded.
type pendingOffences struct {
	n    int
	idle chan struct{}
}

// PenalizeAsync implements ratelimit.AsyncBanner. It never waits for
// Redis: when DefaultMaxAsyncPenalties offences are already in flight, the
// offence is dropped and done gets ErrOffenceDropped before PenalizeAsync
// returns. After Close, the offence is recorded before it returns.
func (s *Store) PenalizeAsync(ctx context.Context, key string, done func(time.Duration, error)) {
	s.bgMu.Lock()
	if s.bgClosed {
		s.bgMu.Unlock()
		ban, err := s.Penalize(context.WithoutCancel(ctx), key)
		if done != nil {
			done(ban, err)
		}
		return
	}
	if s.npending.Load() >= DefaultMaxAsyncPenalties {
		s.bgMu.Unlock()
		s.dropped.Add(1)
		if done != nil {
			done(0, ErrOffenceDropped)
		}
		return
	}
	p := s.pending[key]
	if p == nil {
		p = &pendingOffences{idle: make(chan struct{})}
		s.pending[key] = p
	}
	p.n++
	s.npending.Add(1)
	s.queue = append(s.queue, offence{key: key, done: done})
	if s.workers < penaltyWorkers {
		s.workers++
		s.bg.Add(1)
		go s.penaltyWorker()
	}
	s.bgMu.Unlock()
}

// DroppedOffences is the number of offences PenalizeAsync dropped because
// too many were in flight.
func (s *Store) DroppedOffences() uint64 { return s.dropped.Load() }

// penaltyWorker records queued offences, a batch at a time, until the
// queue is empty.
func (s *Store) penaltyWorker() {
	defer s.bg.Done()
	var batch []offence
	for {
		s.bgMu.Lock()
		n := min(len(s.queue), maxPenaltyBatch)
		if n == 0 {
			s.workers--
			s.queue = nil // let a flood's backing array go
			s.bgMu.Unlock()
			return
		}
		batch = append(batch[:0], s.queue[:n]...)
		clear(s.queue[:n])
		s.queue = s.queue[n:]
		s.bgMu.Unlock()
		s.recordBatch(batch)
	}
}

// recordBatch records a batch of offences, releases the Allow calls
// waiting for them and calls their done functions.
func (s *Store) recordBatch(batch []offence) {
	var keys []string
	var counts []int
	at := make(map[string]int, len(batch))
	for _, o := range batch {
		i, ok := at[o.key]
		if !ok {
			i = len(keys)
			at[o.key] = i
			keys, counts = append(keys, o.key), append(counts, 0)
		}
		counts[i]++
	}
	bans, errs := s.penalizeBatch(keys, counts)

	s.bgMu.Lock()
	for _, k := range keys {
		p := s.pending[k]
		if p.n -= counts[at[k]]; p.n == 0 {
			delete(s.pending, k)
			close(p.idle)
		}
	}
	s.npending.Add(-int64(len(batch)))
	s.bgMu.Unlock()

	next := make([]int, len(keys)) // each key's next result
	for _, o := range batch {
		i := at[o.key]
		var ban time.Duration
		if errs[i] == nil {
			ban = bans[i][next[i]]
		}
		next[i]++
		if o.done != nil {
			o.done(ban, errs[i])
		}
	}
}

// penalizeBatch records counts[i] offences against keys[i] for each i in
// one script run, and returns the bans in force after each offence. While
// the store is degraded it does not try Redis; a key whose run fails is
// recorded locally under FailoverMemory. It never changes the store's
// up or down state: only decisions do.
func (s *Store) penalizeBatch(keys []string, counts []int) ([][]time.Duration, []error) {
	bans := make([][]time.Duration, len(keys))
	errs := make([]error, len(keys))
	if s.down.Load() {
		for i := range keys {
			bans[i], errs[i] = s.penalizeLocal(keys[i], counts[i], errors.New("redis is marked down"))
		}
		return bans, errs
	}
	ctx, cancel := context.WithTimeout(context.Background(), penaltyTimeoutFactor*s.timeout)
	defer cancel()
	// One script run records every key: every key of the store shares
	// its hash tag, so this is one slot under Redis Cluster too.
	rkeys := make([]string, 0, 2*len(keys))
	args := append(make([]any, 0, len(s.banArgs)+len(keys)), s.banArgs...)
	for i, k := range keys {
		record, until := s.banKeys(k)
		rkeys = append(rkeys, record, until)
		args = append(args, counts[i])
	}
	sent := s.clock()
	// Sent as a pipeline of one, which tests tell from decisions to hold
	// it in flight.
	pipe := s.c.Pipeline()
	cmd := pipe.EvalSha(ctx, s.penalize.sha, rkeys, args...)
	_, _ = pipe.Exec(ctx) // the command carries its error
	v, runErr := cmd.Result()
	if isNoScript(runErr) { // Redis restarted: EVAL loads the script again
		v, runErr = s.penalize.run(ctx, s.c, rkeys, args...)
	}
	for i := range keys {
		err := runErr
		if err == nil {
			bans[i], err = s.penaltyReply(keyReply(v, i), counts[i], rkeys[2*i+1], sent)
		}
		if err != nil && !errors.Is(err, ErrBadReply) {
			bans[i], err = s.penalizeLocal(keys[i], counts[i], err)
		}
		errs[i] = err
	}
	return bans, errs
}

// penalizeLocal records n offences in the fallback store, or fails with
// ErrUnavailable wrapping cause when there is none.
func (s *Store) penalizeLocal(key string, n int, cause error) ([]time.Duration, error) {
	if s.mem == nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, cause)
	}
	bans := make([]time.Duration, n)
	for i := range bans {
		var err error
		if bans[i], err = s.mem.Penalize(context.Background(), key); err != nil {
			return nil, err
		}
	}
	return bans, nil
}

// awaitOffences waits until no offence handed to PenalizeAsync for the key
// of any TierIP rule is still in flight, or Timeout has passed: a slow
// offence write must not hold decisions, so past that the decision goes
// ahead without the ban those offences may earn. The common case, nothing
// in flight anywhere, costs one atomic load.
func (s *Store) awaitOffences(ctx context.Context, rules []ratelimit.Rule) error {
	if s.npending.Load() == 0 {
		return nil
	}
	var timeout <-chan time.Time
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
		if timeout == nil {
			t := time.NewTimer(s.timeout)
			defer t.Stop()
			timeout = t.C
		}
		select {
		case <-p.idle:
		case <-timeout:
			return nil
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
