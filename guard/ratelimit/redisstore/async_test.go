package redisstore

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/formguard/formguard/guard/ratelimit"
	"github.com/formguard/formguard/internal/testutil"
)

// TestPenalizeAsyncOrdersNextDecision hands a client's offences to the
// background while every script run is held in flight, then decides the
// client's next request: Allow must wait for the offences and refuse with
// the ban they earned, while another client's request is decided at once.
func TestPenalizeAsyncOrdersNextDecision(t *testing.T) {
	r := testutil.StartRedis(t)
	c := redis.NewClient(&redis.Options{Addr: r.Addr, MaxRetries: -1, ContextTimeoutEnabled: true, PoolSize: 8})
	t.Cleanup(func() { _ = c.Close() })
	var release atomic.Bool
	h := &gateHook{open: release.Load}
	c.AddHook(h)
	policy := ratelimit.BanPolicy{Threshold: 3, Window: 10 * time.Minute, Base: time.Minute, Max: 8 * time.Minute}
	s := newStore(t, Config{Client: c, Ban: policy, Timeout: 10 * time.Second})
	ctx := context.Background()
	if _, err := s.Penalize(ctx, "warm-up"); err != nil { // loads the script
		t.Fatal(err)
	}
	h.armed.Store(true) // hold the next script run until released

	var mu sync.Mutex
	var bans []time.Duration
	var called sync.WaitGroup
	called.Add(policy.Threshold)
	returned := make(chan struct{})
	go func() {
		for range policy.Threshold {
			s.PenalizeAsync(ctx, "bad", func(ban time.Duration, err error) {
				defer called.Done()
				if err != nil {
					t.Error(err)
				}
				mu.Lock()
				bans = append(bans, ban)
				mu.Unlock()
			})
		}
		close(returned)
	}()
	select {
	case <-returned: // PenalizeAsync did not wait for the held round trip
	case <-time.After(3 * time.Second):
		t.Fatal("PenalizeAsync waited for Redis")
	}

	// Wait until the first offence's script run is the one held.
	for deadline := time.Now().Add(3 * time.Second); h.evals.Load() < 2; {
		if time.Now().After(deadline) {
			t.Fatal("no offence reached Redis")
		}
		time.Sleep(time.Millisecond)
	}

	rules := func(key string) []ratelimit.Rule {
		return []ratelimit.Rule{{Tier: ratelimit.TierIP, Key: key, Limit: lim("100/h")}}
	}
	// Another client is not held up by "bad"'s offences in flight.
	if d, err := s.Allow(ctx, rules("good")); err != nil || !d.Allowed {
		t.Fatalf("other client: %+v %v", d, err)
	}
	decided := make(chan ratelimit.Decision, 1)
	go func() {
		d, err := s.Allow(ctx, rules("bad"))
		if err != nil {
			t.Error(err)
		}
		decided <- d
	}()
	select {
	case d := <-decided:
		t.Fatalf("the offender's next request was decided before its offences were recorded: %+v", d)
	case <-time.After(100 * time.Millisecond):
	}
	release.Store(true)
	select {
	case d := <-decided:
		if d.Allowed || !d.Banned || !near(d.RetryAfter, time.Minute) {
			t.Fatalf("after %d offences: %+v, want banned for ≈1m", policy.Threshold, d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Allow still waiting after the offences were released")
	}
	if !h.waited.Load() {
		t.Fatal("the gate never held a script run: the test proved nothing")
	}
	// done runs after the offence is recorded (and Allow released), so
	// the last callback may still be on its way.
	callbacks := make(chan struct{})
	go func() { called.Wait(); close(callbacks) }()
	select {
	case <-callbacks:
	case <-time.After(5 * time.Second):
		t.Fatal("not every done callback ran")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(bans) != policy.Threshold {
		t.Fatalf("done called %d times, want %d", len(bans), policy.Threshold)
	}
	var banned int
	for _, b := range bans {
		if b > 0 {
			banned++
		}
	}
	if banned != 1 {
		t.Fatalf("bans reported %v: want exactly the last offence to report the ban", bans)
	}
}

// TestPenalizeAsyncDropsWhenFull holds every batch in flight and hands
// over DefaultMaxAsyncPenalties offences: the next one is dropped at
// once, with ErrOffenceDropped and counted, instead of the caller waiting
// for Redis (before, it was recorded in the caller: issue 14).
func TestPenalizeAsyncDropsWhenFull(t *testing.T) {
	r := testutil.StartRedis(t)
	c := newClient(t, r)
	h := &heldPipelines{release: make(chan struct{})}
	c.AddHook(h)
	s := newStore(t, Config{Client: c, Ban: ratelimit.BanPolicy{Threshold: 1}, Timeout: 10 * time.Second})
	ctx := context.Background()
	if _, err := s.Penalize(ctx, "warm-up"); err != nil { // loads the script
		t.Fatal(err)
	}
	var recorded, failed atomic.Int64
	count := func(_ time.Duration, err error) {
		if err != nil {
			failed.Add(1)
		} else {
			recorded.Add(1)
		}
	}
	for i := range DefaultMaxAsyncPenalties {
		s.PenalizeAsync(ctx, fmt.Sprint("k", i), count)
	}
	var got error
	called := false
	start := time.Now()
	s.PenalizeAsync(ctx, "one too many", func(_ time.Duration, err error) { called, got = true, err })
	if !called || !errors.Is(got, ErrOffenceDropped) {
		t.Fatalf("with %d offences in flight: called %v, err %v; want ErrOffenceDropped at once",
			DefaultMaxAsyncPenalties, called, got)
	}
	if time.Since(start) > time.Second || s.DroppedOffences() != 1 {
		t.Fatalf("took %s, DroppedOffences %d", time.Since(start), s.DroppedOffences())
	}
	close(h.release)
	_ = s.Close()
	if h.held.Load() == 0 {
		t.Fatal("no batch was held: the test proved nothing")
	}
	if recorded.Load() != DefaultMaxAsyncPenalties || failed.Load() != 0 {
		t.Fatalf("recorded %d, failed %d; want all %d queued offences recorded",
			recorded.Load(), failed.Load(), DefaultMaxAsyncPenalties)
	}
}

// TestOffenceFloodKeepsDeciding is issue 14's item 4: a burst of 20k
// offences from distinct keys while visitors' decisions go on. Offences may
// be dropped, but no decision fails and the store is never marked down.
func TestOffenceFloodKeepsDeciding(t *testing.T) {
	r := testutil.StartRedis(t)
	s := newStore(t, Config{Client: newClient(t, r), Timeout: 200 * time.Millisecond})
	ctx := context.Background()
	var allowErrs, decided, degraded atomic.Int64
	stop := make(chan struct{})
	var visitors sync.WaitGroup
	for g := range 4 {
		visitors.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				rules := []ratelimit.Rule{
					{Tier: ratelimit.TierIP, Key: fmt.Sprint("visitor", g, "-", i), Limit: lim("5/h")},
					{Tier: ratelimit.TierForm, Key: "contact", Limit: lim("1000000/h")},
				}
				if _, err := s.Allow(ctx, rules); err != nil {
					if allowErrs.Add(1) == 1 {
						t.Errorf("decision failed during the flood: %v", err)
					}
				}
				decided.Add(1)
				if s.Degraded() {
					degraded.Add(1)
				}
			}
		})
	}
	const n = 20_000
	var recorded, dropped, failed atomic.Int64
	var done sync.WaitGroup
	done.Add(n)
	for i := range n {
		s.PenalizeAsync(ctx, fmt.Sprint("flood", i), func(_ time.Duration, err error) {
			defer done.Done()
			switch {
			case err == nil:
				recorded.Add(1)
			case errors.Is(err, ErrOffenceDropped):
				dropped.Add(1)
			default:
				failed.Add(1)
			}
		})
		if i%1000 == 0 {
			runtime.Gosched()
		}
	}
	done.Wait()
	close(stop)
	visitors.Wait()
	t.Logf("%d offences: %d recorded, %d dropped, %d failed; %d decisions", n, recorded.Load(), dropped.Load(), failed.Load(), decided.Load())
	if allowErrs.Load() != 0 || degraded.Load() != 0 || s.Degraded() {
		t.Fatalf("%d decisions failed, store seen degraded %d times", allowErrs.Load(), degraded.Load())
	}
	if recorded.Load() == 0 || decided.Load() == 0 {
		t.Fatal("nothing recorded or nothing decided: the test proved nothing")
	}
	if uint64(dropped.Load()) != s.DroppedOffences() {
		t.Errorf("DroppedOffences %d, done saw %d", s.DroppedOffences(), dropped.Load())
	}
}

// heldPipelines holds every pipeline of script runs (the background
// offence batches) until release is closed or its context ends; single
// commands (decisions) and the client's own pipelines (a new connection's
// handshake) pass at once. held counts the pipelines it held.
type heldPipelines struct {
	release chan struct{}
	held    atomic.Int64
}

func (h *heldPipelines) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (h *heldPipelines) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (h *heldPipelines) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if len(cmds) > 0 && cmds[0].Name() == "evalsha" {
			h.held.Add(1)
			select {
			case <-h.release:
			case <-ctx.Done():
				for _, c := range cmds {
					c.SetErr(ctx.Err())
				}
				return ctx.Err()
			}
		}
		return next(ctx, cmds)
	}
}

// TestSlowPenaltiesDoNotHoldDecisions: offence writes that time out fail
// (counted by done), but the offender's next decision waits for them at
// most Timeout and then decides without error, and the store stays up.
func TestSlowPenaltiesDoNotHoldDecisions(t *testing.T) {
	r := testutil.StartRedis(t)
	c := newClient(t, r)
	c.AddHook(&heldPipelines{release: make(chan struct{})})
	const timeout = 100 * time.Millisecond
	s := newStore(t, Config{Client: c, Timeout: timeout, Ban: ratelimit.BanPolicy{Threshold: 1}})
	ctx := context.Background()
	errs := make(chan error, 10)
	for range 10 {
		s.PenalizeAsync(ctx, "bad", func(_ time.Duration, err error) { errs <- err })
	}
	start := time.Now()
	d, err := s.Allow(ctx, []ratelimit.Rule{{Tier: ratelimit.TierIP, Key: "bad", Limit: lim("5/h")}})
	if took := time.Since(start); err != nil || !d.Allowed || took < timeout || took > 10*timeout {
		t.Fatalf("offender's decision with its offences stuck: %+v %v after %s; want admitted after about %s",
			d, err, took, timeout)
	}
	for range 10 {
		if err := <-errs; !errors.Is(err, ErrUnavailable) {
			t.Fatalf("stuck offence: %v, want ErrUnavailable", err)
		}
	}
	if s.Degraded() {
		t.Fatal("penalty timeouts marked the store down")
	}
	if d, err := s.Allow(ctx, []ratelimit.Rule{{Tier: ratelimit.TierIP, Key: "good", Limit: lim("5/h")}}); err != nil || !d.Allowed {
		t.Fatalf("another client after the penalty timeouts: %+v %v", d, err)
	}
}

// TestPausedRedisPenaltiesDoNotMarkDown pauses Redis's writes (CLIENT
// PAUSE WRITE, from another connection) while offences are recorded: they
// time out, and once Redis writes again decisions are made on Redis at
// once: the failed penalties did not mark the store down.
func TestPausedRedisPenaltiesDoNotMarkDown(t *testing.T) {
	r := testutil.StartRedis(t)
	s := newStore(t, Config{Client: newClient(t, r), Timeout: 50 * time.Millisecond})
	ctx := context.Background()
	if _, err := s.Penalize(ctx, "warm-up"); err != nil { // loads the script
		t.Fatal(err)
	}
	admin := newClient(t, r)
	if err := admin.Do(ctx, "CLIENT", "PAUSE", "5000", "WRITE").Err(); err != nil {
		t.Fatal(err)
	}
	paused := time.Now()
	_, err := s.Penalize(ctx, "sync")
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Penalize with writes paused: %v, want ErrUnavailable", err)
	}
	errs := make(chan error, 50)
	for i := range 50 {
		s.PenalizeAsync(ctx, fmt.Sprint("k", i), func(_ time.Duration, err error) { errs <- err })
	}
	failed := 0
	for range 50 {
		if err := <-errs; err != nil {
			failed++
		}
	}
	if failed == 0 || time.Since(paused) > 5*time.Second {
		t.Fatalf("%d of 50 offences failed in %s: the pause did not hold them, the test proved nothing",
			failed, time.Since(paused))
	}
	if s.Degraded() {
		t.Fatal("failed penalties marked the store down")
	}
	if err := admin.Do(ctx, "CLIENT", "UNPAUSE").Err(); err != nil {
		t.Fatal(err)
	}
	if d, err := s.Allow(ctx, []ratelimit.Rule{{Tier: ratelimit.TierIP, Key: "visitor", Limit: lim("5/h")}}); err != nil || !d.Allowed {
		t.Fatalf("first decision after the pause: %+v %v", d, err)
	}
}

// TestPenalizeAsyncCloseDrains checks that Close returns only after every
// offence handed off has been recorded in Redis.
func TestPenalizeAsyncCloseDrains(t *testing.T) {
	r := testutil.StartRedis(t)
	const n = 50
	policy := ratelimit.BanPolicy{Threshold: n, Window: time.Hour, Base: time.Minute, Max: time.Hour}
	s, err := New(Config{Client: newClient(t, r), Ban: policy, Timeout: testTimeout})
	if err != nil {
		t.Fatal(err)
	}
	var done atomic.Int64
	for i := range n {
		s.PenalizeAsync(context.Background(), "k"+string(rune('a'+i%5)), func(time.Duration, error) { done.Add(1) })
	}
	_ = s.Close()
	if got := done.Load(); got != n {
		t.Fatalf("Close returned with %d of %d offences recorded", got, n)
	}
	// After Close, offences are recorded in the caller.
	var after atomic.Bool
	s.PenalizeAsync(context.Background(), "late", func(time.Duration, error) { after.Store(true) })
	if !after.Load() {
		t.Fatal("PenalizeAsync after Close did not record the offence before returning")
	}
	// Ten offences per key were recorded in Redis: one more bans.
	s2 := newStore(t, Config{Client: newClient(t, r), Ban: ratelimit.BanPolicy{Threshold: n/5 + 1, Window: time.Hour, Base: time.Minute, Max: time.Hour}})
	if ban, err := s2.Penalize(context.Background(), "ka"); err != nil || ban <= 0 {
		t.Fatalf("11th offence of ka: ban %s, %v; want a ban (the 10 async ones were not all recorded)", ban, err)
	}
}

// TestPenaltyBatchOfManyKeys: offences of several keys recorded in one
// script run give each key what the memory store gives the same offences
// one after another: each caller's ban, and the ban each key is left with.
func TestPenaltyBatchOfManyKeys(t *testing.T) {
	r := testutil.StartRedis(t)
	c := newClient(t, r)
	h := &heldPipelines{release: make(chan struct{})}
	c.AddHook(h)
	policy := ratelimit.BanPolicy{Threshold: 3, Window: 10 * time.Minute, Base: time.Minute, Max: 8 * time.Minute}
	s := newStore(t, Config{Client: c, Ban: policy, Timeout: 10 * time.Second})
	mem, err := ratelimit.NewMemory(ratelimit.MemoryConfig{Ban: policy})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mem.Close() })
	ctx := context.Background()
	counts := map[string]int{"one": 1, "three": 3, "seven": 7, "two": 2}
	type result struct {
		key string
		ban time.Duration
	}
	results := make(chan result, 16)
	for k, n := range counts {
		for range n {
			s.PenalizeAsync(ctx, k, func(ban time.Duration, err error) {
				if err != nil {
					t.Error(err)
				}
				results <- result{k, ban}
			})
		}
	}
	close(h.release)
	got := map[string][]time.Duration{}
	for range 13 {
		r := <-results
		got[r.key] = append(got[r.key], r.ban)
	}
	for k, n := range counts {
		for i := range n {
			want, err := mem.Penalize(ctx, k)
			if err != nil {
				t.Fatal(err)
			}
			// Redis's bans run from its clock, a moment later: equal to a
			// second.
			if d := got[k][i] - want; d < -time.Second || d > time.Second || (want == 0) != (got[k][i] == 0) {
				t.Errorf("key %s offence %d: ban %s, memory store says %s", k, i+1, got[k][i], want)
			}
		}
		d, err := s.Allow(ctx, []ratelimit.Rule{{Tier: ratelimit.TierIP, Key: k, Limit: lim("5/h")}})
		if err != nil || d.Banned != (n >= policy.Threshold) {
			t.Errorf("key %s after %d offences: %+v %v", k, n, d, err)
		}
	}
}
