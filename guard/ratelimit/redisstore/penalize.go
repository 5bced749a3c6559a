package redisstore

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Under a flood of abusive requests from one client, every request reports
// an offence for the same key, and each Penalize would be a round trip.
// So calls for a key coalesce: while one call for the key is in flight,
// later calls join one batch, and when the call in flight returns the
// batch goes out as ONE script run recording all its offences, one after
// another at one instant (penalizeSrc's n). Each caller gets the ban in
// force after its own offence: exactly what the same calls would get one
// after another at that instant, so the escalation is unchanged. A caller
// waits for at most the call in flight and its batch's, each bounded by
// Timeout.

// penaltyLine is a key with a call in flight; next is the batch waiting
// for it, nil until a second caller comes.
type penaltyLine struct {
	next *penaltyBatch
}

// penaltyBatch is the offences of one script run. Its first caller sends
// it once turn is closed; the others wait for done.
type penaltyBatch struct {
	n    int
	turn chan struct{}
	done chan struct{}
	res  []time.Duration
	err  error
}

// Penalize implements ratelimit.Banner in one EVALSHA, shared with the
// other calls for the same key that arrive while one is in flight. A
// penalty never changes whether the store is up or down (only decisions
// do): while down it is recorded locally under FailoverMemory, else it
// fails; when Redis fails it, it is recorded locally or fails likewise.
func (s *Store) Penalize(ctx context.Context, key string) (time.Duration, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("redisstore: %w", err)
	}
	var cause error
	if s.down.Load() {
		cause = errors.New("redis is marked down")
	} else {
		ban, err := s.penalizeRedis(ctx, key)
		if err == nil || errors.Is(err, ErrBadReply) {
			return ban, err
		}
		if ctx.Err() != nil {
			return 0, fmt.Errorf("redisstore: %w", ctx.Err())
		}
		cause = err
	}
	bans, err := s.penalizeLocal(key, 1, cause)
	if err != nil {
		return 0, err
	}
	return bans[0], nil
}

func (s *Store) penalizeRedis(ctx context.Context, key string) (time.Duration, error) {
	s.penMu.Lock()
	line, busy := s.pens[key]
	if !busy {
		line = &penaltyLine{}
		s.pens[key] = line
		s.penMu.Unlock()
		return s.sendPenalties(ctx, key, line, &penaltyBatch{n: 1, done: make(chan struct{})})
	}
	b := line.next
	if b == nil {
		b = &penaltyBatch{turn: make(chan struct{}), done: make(chan struct{})}
		line.next = b
	}
	my := b.n
	b.n++
	s.penMu.Unlock()
	if my > 0 {
		<-b.done
		if b.err != nil {
			return 0, b.err
		}
		return b.res[my], nil
	}
	<-b.turn
	return s.sendPenalties(ctx, key, line, b)
}

// sendPenalties sends batch b for key, closes it to joiners first, and
// passes the turn to the next batch (or retires the line) when done.
func (s *Store) sendPenalties(ctx context.Context, key string, line *penaltyLine, b *penaltyBatch) (time.Duration, error) {
	s.penMu.Lock()
	if line.next == b {
		line.next = nil
	}
	n := b.n
	s.penMu.Unlock()

	// The run records other callers' offences too: it does not end with
	// this caller's context, only with Timeout.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.timeout)
	b.res, b.err = s.runPenalize(rctx, key, n)
	cancel()

	s.penMu.Lock()
	if next := line.next; next != nil {
		close(next.turn)
	} else {
		delete(s.pens, key)
	}
	s.penMu.Unlock()
	close(b.done)
	if b.err != nil {
		return 0, b.err
	}
	return b.res[0], nil
}

// runPenalize records n offences against key in one script run and
// returns the ban in force after each.
func (s *Store) runPenalize(ctx context.Context, key string, n int) ([]time.Duration, error) {
	record, until := s.banKeys(key)
	sent := s.clock()
	v, err := s.penalize.run(ctx, s.c, []string{record, until}, append(s.banArgs[:len(s.banArgs):len(s.banArgs)], n)...)
	if err != nil {
		return nil, err
	}
	return s.penaltyReply(keyReply(v, 0), n, until, sent)
}

// keyReply is the i-th key's part of penalizeSrc's reply, or v itself
// when v is not the list of them (which penaltyReply then refuses).
func keyReply(v any, i int) any {
	if rep, ok := v.([]any); ok && i < len(rep) {
		return rep[i]
	}
	return v
}

// penaltyReply decodes penalizeSrc's reply for n offences against the key
// whose ban-until key is until, sent at sent (the refusal cache's clock),
// and remembers the ban it reports.
func (s *Store) penaltyReply(v any, n int, until string, sent int64) ([]time.Duration, error) {
	rep, ok := v.([]any)
	if !ok || len(rep) != n {
		return nil, fmt.Errorf("%w: %v", ErrBadReply, v)
	}
	res := make([]time.Duration, n)
	for i, x := range rep {
		us, ok := x.(int64)
		if !ok {
			return nil, fmt.Errorf("%w: %v", ErrBadReply, v)
		}
		res[i] = time.Duration(us) * time.Microsecond
	}
	if ban := res[n-1]; ban > 0 && s.refused != nil {
		// The ban in force after the last offence (a ban only grows).
		// Measured from before the call was sent, it ends no later than on
		// Redis's clock (less its last µs, for the fraction TIME drops).
		end := sent + int64(ban-time.Microsecond)
		s.refused.put(until, end, end, sent)
	}
	return res, nil
}
