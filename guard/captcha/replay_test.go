package captcha

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: testNow} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestMemoryReplay(t *testing.T) {
	ctx := context.Background()
	type step struct {
		advance time.Duration
		key     string
		ttl     time.Duration
		fresh   bool
		err     error
		len     int
	}
	tests := []struct {
		name  string
		max   int
		steps []step
	}{
		{"a key is fresh once and then used", 10, []step{
			{key: "a", ttl: time.Minute, fresh: true, len: 1},
			{key: "a", ttl: time.Minute, fresh: false, len: 1},
			{advance: 59 * time.Second, key: "a", ttl: time.Minute, fresh: false, len: 1},
		}},
		{"an expired key is evicted and fresh again", 10, []step{
			{key: "a", ttl: time.Hour, fresh: true, len: 1},
			{advance: time.Hour, key: "b", ttl: time.Hour, fresh: true, len: 1},
			{key: "a", ttl: time.Hour, fresh: true, len: 2},
		}},
		// Issue 14: the cache used to refuse new keys when full (503 for
		// every visitor); now a new key evicts the soonest to expire.
		{"a full cache takes a new key and forgets the soonest to expire", 2, []step{
			{key: "a", ttl: time.Minute, fresh: true, len: 1},
			{key: "b", ttl: time.Hour, fresh: true, len: 2},
			{key: "c", ttl: 30 * time.Minute, fresh: true, len: 2},
			{key: "b", ttl: time.Minute, fresh: false, len: 2},
			{key: "c", ttl: time.Minute, fresh: false, len: 2},
			{key: "a", ttl: time.Minute, fresh: true, len: 2}, // evicted: fresh again (evicts c)
			{key: "b", ttl: time.Minute, fresh: false, len: 2},
		}},
		{"a full cache takes new keys once entries expire", 2, []step{
			{key: "a", ttl: 2 * time.Minute, fresh: true, len: 1},
			{key: "b", ttl: time.Hour, fresh: true, len: 2},
			{advance: 2 * time.Minute, key: "c", ttl: time.Minute, fresh: true, len: 2},
			{key: "b", ttl: time.Minute, fresh: false, len: 2},
		}},
		{"a key with a past expiry is still remembered for MinReplayTTL", 2, []step{
			{key: "old", ttl: -time.Second, fresh: true, len: 1},
			{key: "old", ttl: -time.Second, fresh: false, len: 1},
			{advance: MinReplayTTL, key: "old", ttl: -time.Second, fresh: true, len: 1},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newClock()
			r := NewMemoryReplay(tc.max, c.Now)
			for i, s := range tc.steps {
				c.Advance(s.advance)
				fresh, err := r.Use(ctx, s.key, c.Now().Add(s.ttl))
				if s.err != nil {
					if !errors.Is(err, s.err) || !errors.Is(err, ErrUnavailable) {
						t.Fatalf("step %d: err = %v, want %v (and ErrUnavailable)", i, err, s.err)
					}
				} else if err != nil {
					t.Fatalf("step %d: %v", i, err)
				}
				if fresh != s.fresh {
					t.Fatalf("step %d: Use(%q) fresh = %v, want %v", i, s.key, fresh, s.fresh)
				}
				if got := r.Len(); got != s.len {
					t.Fatalf("step %d: Len = %d, want %d", i, got, s.len)
				}
			}
		})
	}
	t.Run("a cancelled context fails closed", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		r := NewMemoryReplay(0, nil)
		if _, err := r.Use(ctx, "k", time.Now().Add(time.Minute)); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("err = %v, want ErrUnavailable", err)
		}
	})
	t.Run("zero arguments take the defaults", func(t *testing.T) {
		r := NewMemoryReplay(0, nil)
		if r.max != DefaultReplayEntries || r.now == nil {
			t.Fatalf("max = %d", r.max)
		}
	})
}

func TestMemoryReplayConcurrentSingleUse(t *testing.T) {
	r := NewMemoryReplay(100, fixedNow)
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := 0
	for range 16 {
		wg.Go(func() {
			fresh, err := r.Use(context.Background(), "same", testNow.Add(time.Minute))
			if err != nil {
				t.Error(err)
			}
			if fresh {
				mu.Lock()
				wins++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if wins != 1 {
		t.Fatalf("%d goroutines used the same key, want exactly 1", wins)
	}
}

// TestMemoryReplayFloodEvicts is issue 14's item 1 in small: one client
// fills the cache with distinct tokens. Every new token is still fresh
// (before, a full cache answered every visitor 503 captcha_unavailable),
// the cache stays at its bound, and the entries evicted are the soonest to
// expire: a token with a long life recorded before the flood survives it
// while the flood's own short-lived tokens are evicted.
func TestMemoryReplayFloodEvicts(t *testing.T) {
	ctx := context.Background()
	c := newClock()
	const max = 1000
	r := NewMemoryReplay(max, c.Now)
	if fresh, err := r.Use(ctx, "long-lived", c.Now().Add(2*time.Hour)); err != nil || !fresh {
		t.Fatalf("%v %v", fresh, err)
	}
	for i := range 10 * max {
		c.Advance(time.Millisecond)
		fresh, err := r.Use(ctx, fmt.Sprint("flood", i), c.Now().Add(10*time.Minute))
		if err != nil || !fresh {
			t.Fatalf("token %d: fresh %v, %v; want fresh", i, fresh, err)
		}
		if i%100 == 0 && r.Len() > max {
			t.Fatalf("Len %d > %d", r.Len(), max)
		}
	}
	if r.Len() != max || r.Evictions() != 9*max+1 {
		t.Fatalf("Len %d, Evictions %d; want %d and %d", r.Len(), r.Evictions(), max, 9*max+1)
	}
	if fresh, _ := r.Use(ctx, "long-lived", c.Now().Add(2*time.Hour)); fresh {
		t.Error("the longest-lived token was evicted before the flood's")
	}
	if fresh, _ := r.Use(ctx, fmt.Sprint("flood", 10*max-1), c.Now().Add(10*time.Minute)); fresh {
		t.Error("the newest token was evicted")
	}
	if fresh, _ := r.Use(ctx, "flood0", c.Now().Add(10*time.Minute)); !fresh {
		t.Error("the soonest to expire was kept")
	}
}

func TestReplayKeyHidesToken(t *testing.T) {
	k := replayKey("altcha", "secret-token-value")
	if strings.Contains(k, "secret-token-value") || !strings.HasPrefix(k, "fg:altcha:") || len(k) != len("fg:altcha:")+64 {
		t.Fatalf("replayKey = %q", k)
	}
}

func BenchmarkMemoryReplayUse(b *testing.B) {
	c := newClock()
	r := NewMemoryReplay(1<<16, c.Now)
	ctx := context.Background()
	keys := make([]string, 1<<12)
	for i := range keys {
		keys[i] = fmt.Sprintf("fg:altcha:%064d", i)
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if i%len(keys) == 0 {
			c.Advance(2 * MinReplayTTL) // the previous round expires
		}
		if _, err := r.Use(ctx, keys[i%len(keys)], c.Now().Add(MinReplayTTL)); err != nil {
			b.Fatal(err)
		}
	}
}

// failingReplay is a replay cache that cannot answer, as the Redis one
// does while Redis is down (a full MemoryReplay no longer fails: it
// evicts).
type failingReplay struct{}

func (failingReplay) Use(context.Context, string, time.Time) (bool, error) {
	return false, fmt.Errorf("%w: replay cache: connection refused", ErrUnavailable)
}

// TestVerifiersFailClosedWhenReplayCacheFails checks every verifier
// refuses with ErrUnavailable, without calling a provider, instead of
// accepting a token it cannot record. (It filled a one-entry MemoryReplay
// until a full one evicted instead of failing.)
func TestVerifiersFailClosedWhenReplayCacheFails(t *testing.T) {
	ctx := context.Background()
	full := func(*testing.T) ReplayCache { return failingReplay{} }
	t.Run("proof-of-work", func(t *testing.T) {
		c := newClock()
		p, err := NewPoW(PoWConfig{Keys: [][]byte{keyA}, MaxNumber: 100, Now: c.Now, Replay: full(t)})
		if err != nil {
			t.Fatal(err)
		}
		ch, _ := p.Challenge("contact", "")
		if err := p.Verify(ctx, Request{Form: "contact", Token: payload(t, ch, solve(t, ch))}); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("Verify = %v, want ErrUnavailable", err)
		}
	})
	t.Run("form token", func(t *testing.T) {
		c := newClock()
		ft, err := NewFormToken(FormTokenConfig{Keys: [][]byte{keyA}, Now: c.Now, Replay: full(t)})
		if err != nil {
			t.Fatal(err)
		}
		tok, _ := ft.Issue("contact")
		c.Advance(time.Minute)
		if err := ft.Verify(ctx, Request{Form: "contact", Token: tok}); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("Verify = %v, want ErrUnavailable", err)
		}
	})
	for _, p := range providers {
		t.Run(p.name, func(t *testing.T) {
			fake, srv := newFake(t, p)
			fake.answer = func(int, map[string]string) (int, string) {
				return 200, answerJSON(true, testNow, "example.test", p.action, ptr(0.9))
			}
			v, err := p.make(srv.URL, full(t), 0)
			if err != nil {
				t.Fatal(err)
			}
			if err := v.Verify(ctx, Request{Token: "tok"}); !errors.Is(err, ErrUnavailable) {
				t.Fatalf("Verify = %v, want ErrUnavailable", err)
			}
			if n := len(fake.calls()); n != 0 {
				t.Errorf("provider called %d times although the token could not be recorded", n)
			}
		})
	}
}
