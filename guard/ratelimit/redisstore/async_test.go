package redisstore

import (
	"context"
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

// TestPenalizeAsyncBackpressure fills every background slot: the next
// offence is recorded before PenalizeAsync returns instead of dropped.
func TestPenalizeAsyncBackpressure(t *testing.T) {
	r := testutil.StartRedis(t)
	s := newStore(t, Config{Client: newClient(t, r), Ban: ratelimit.BanPolicy{Threshold: 1}})
	for range cap(s.bgSlots) {
		s.bgSlots <- struct{}{}
	}
	var called atomic.Bool
	s.PenalizeAsync(context.Background(), "bad", func(ban time.Duration, err error) {
		if err != nil || ban <= 0 {
			t.Errorf("ban %s, %v; want a ban", ban, err)
		}
		called.Store(true)
	})
	if !called.Load() {
		t.Fatal("with every slot taken, PenalizeAsync returned before recording the offence")
	}
	for range cap(s.bgSlots) {
		<-s.bgSlots
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
