package redisstore

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/formguard/formguard/guard/ratelimit"
	"github.com/formguard/formguard/internal/testutil"
)

// gateHook holds the first EVALSHA it sees (alone or in a pipeline) until
// open returns true (or a few seconds pass), and counts the EVALSHAs sent.
type gateHook struct {
	open   func() bool
	armed  atomic.Bool
	evals  atomic.Int64
	waited atomic.Bool
}

func (h *gateHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *gateHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.gate([]redis.Cmder{cmd})
		return next(ctx, cmd)
	}
}

func (h *gateHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.gate(cmds)
		return next(ctx, cmds)
	}
}

func (h *gateHook) gate(cmds []redis.Cmder) {
	evals := 0
	for _, c := range cmds {
		if c.Name() == "evalsha" {
			evals++
		}
	}
	if evals == 0 {
		return
	}
	h.evals.Add(int64(evals))
	if h.armed.CompareAndSwap(true, false) {
		for deadline := time.Now().Add(5 * time.Second); !h.open() && time.Now().Before(deadline); {
			time.Sleep(time.Millisecond)
		}
		h.waited.Store(h.open())
	}
}

// TestPenalizeCoalesced sends many concurrent offences for one key while
// the first is held in flight: the rest go out as one script run, and the
// bans the callers get are exactly those of as many calls one after
// another (ratelimit.Memory's on a frozen clock is the reference).
func TestPenalizeCoalesced(t *testing.T) {
	r := testutil.StartRedis(t)
	c := redis.NewClient(&redis.Options{Addr: r.Addr, MaxRetries: -1, ContextTimeoutEnabled: true, PoolSize: 4})
	t.Cleanup(func() { _ = c.Close() })
	policy := ratelimit.BanPolicy{Threshold: 3, Window: 10 * time.Minute, Base: time.Minute, Max: 8 * time.Minute}
	s := newStore(t, Config{Client: c, Ban: policy, Timeout: 10 * time.Second})
	ctx := context.Background()
	if _, err := s.Penalize(ctx, "warm-up"); err != nil { // loads the script
		t.Fatal(err)
	}
	const n = 40
	h := &gateHook{open: func() bool {
		s.penMu.Lock()
		defer s.penMu.Unlock()
		line := s.pens["bad"]
		return line != nil && line.next != nil && line.next.n == n-1
	}}
	h.armed.Store(true)
	c.AddHook(h)

	got := make([]time.Duration, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			d, err := s.Penalize(ctx, "bad")
			if err != nil {
				t.Error(err)
			}
			got[i] = d
		})
	}
	wg.Wait()
	if !h.waited.Load() {
		t.Fatal("the other callers never all joined the batch behind the first call")
	}
	if e := h.evals.Load(); e != 2 {
		t.Errorf("%d script runs for %d concurrent offences, want 2 (the first, then one batch)", e, n)
	}
	if len(s.pens) != 0 {
		t.Errorf("%d keys still marked in flight", len(s.pens))
	}

	frozen := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	mem, err := ratelimit.NewMemory(ratelimit.MemoryConfig{Ban: policy, Now: func() time.Time { return frozen }})
	if err != nil {
		t.Fatal(err)
	}
	defer mem.Close()
	want := make([]time.Duration, n)
	for i := range want {
		if want[i], err = mem.Penalize(ctx, "bad"); err != nil {
			t.Fatal(err)
		}
	}
	slices.Sort(got)
	for i := range want {
		if (want[i] == 0) != (got[i] == 0) || (want[i] > 0 && !near(got[i], want[i])) {
			t.Fatalf("bans after %d concurrent offences, sorted:\n got %v\nwant %v (one after another)", n, got, want)
		}
	}
	// The ban in force is the longest, as with calls one after another.
	d, err := s.Allow(ctx, []ratelimit.Rule{{Tier: ratelimit.TierIP, Key: "bad"}})
	if err != nil || !d.Banned || !near(d.RetryAfter, want[n-1]) {
		t.Errorf("after the offences: %+v %v, want banned for ≈%s", d, err, want[n-1])
	}
}

// TestPenalizeCoalescedRedisDown: a failed batch fails every caller in it,
// and each falls back on its own (FailoverMemory records each offence).
// Failed penalties do not mark the store down (issue 14: offence floods
// took decisions down with them); before, this test wanted Degraded().
func TestPenalizeCoalescedRedisDown(t *testing.T) {
	r := testutil.StartRedis(t)
	policy := ratelimit.BanPolicy{Threshold: 5, Window: time.Hour, Base: time.Hour, Max: time.Hour}
	s := newStore(t, Config{Client: newClient(t, r), Ban: policy, Failure: FailoverMemory, Timeout: time.Second})
	r.Stop()
	var banned atomic.Int64
	var wg sync.WaitGroup
	for range 5 {
		wg.Go(func() {
			d, err := s.Penalize(context.Background(), "bad")
			if err != nil {
				t.Error(err)
			}
			if d > 0 {
				banned.Add(1)
			}
		})
	}
	wg.Wait()
	if s.Degraded() {
		t.Error("failed penalties marked the store down")
	}
	// Five offences, threshold five: the fifth, whoever it was, banned.
	if banned.Load() != 1 {
		t.Errorf("%d callers saw a ban, want 1 (every offence recorded locally)", banned.Load())
	}
}
