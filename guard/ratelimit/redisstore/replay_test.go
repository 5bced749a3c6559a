package redisstore

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/formguard/formguard/internal/testutil"
)

func TestReplayCacheOnceAcrossClients(t *testing.T) {
	r := testutil.StartRedis(t)
	caches := []*ReplayCache{
		NewReplayCache(newClient(t, r), ""),
		NewReplayCache(newClient(t, r), ""),
	}
	for _, c := range caches {
		c.timeout = testTimeout // this test is about once-only, not latency
	}
	ctx := context.Background()
	expiry := time.Now().Add(10 * time.Minute)
	var fresh atomic.Int64
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			ok, err := caches[i%2].Use(ctx, "token-1", expiry)
			if err != nil {
				t.Error(err)
			}
			if ok {
				fresh.Add(1)
			}
		})
	}
	wg.Wait()
	if fresh.Load() != 1 {
		t.Fatalf("token was fresh %d times across two clients, want exactly once", fresh.Load())
	}

	tests := []struct {
		name   string
		cache  int
		key    string
		expiry time.Time
		want   bool
	}{
		{"another token is fresh", 1, "token-2", expiry, true},
		{"that token is then used on the other client", 0, "token-2", expiry, false},
		{"an already expired token is still remembered once used", 0, "token-3", time.Now().Add(-time.Hour), true},
		{"and is not fresh again", 1, "token-3", time.Now().Add(-time.Hour), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := caches[tt.cache].Use(ctx, tt.key, tt.expiry)
			if err != nil || got != tt.want {
				t.Fatalf("Use = %v, %v; want %v", got, err, tt.want)
			}
		})
	}

	t.Run("the key expires at the token's expiry", func(t *testing.T) {
		at := time.Now().Add(5 * time.Minute)
		if _, err := caches[0].Use(ctx, "token-4", at); err != nil {
			t.Fatal(err)
		}
		c := newClient(t, r)
		got, err := c.PExpireTime(ctx, "fg:rp:"+hashHex("replay", "token-4")).Result()
		if err != nil {
			t.Fatal(err)
		}
		if got != time.Duration(at.UnixMilli())*time.Millisecond {
			t.Errorf("PEXPIRETIME = %d, want %d", got.Milliseconds(), at.UnixMilli())
		}
	})

	t.Run("redis down fails closed", func(t *testing.T) {
		r.Stop()
		ok, err := caches[0].Use(ctx, "token-5", expiry)
		if err == nil || ok {
			t.Fatalf("Use with Redis down = %v, %v; want an error", ok, err)
		}
	})
}

// TestReplayKeysExpire checks the replay cache's keys have a bounded life
// (issue 14: one client's tokens must not pile up in Redis): every key
// carries a TTL, and a key whose expiry has passed is gone, so its token
// is fresh again (the verifier refuses it as expired by then).
func TestReplayKeysExpire(t *testing.T) {
	r := testutil.StartRedis(t)
	rc := NewReplayCache(newClient(t, r), "fgexp")
	rc.timeout = testTimeout
	// The cache's clock runs an hour behind, so that an expiry a moment
	// from now is past the MinReplayTTL floor and the key dies quickly.
	rc.now = func() time.Time { return time.Now().Add(-time.Hour) }
	ctx := context.Background()
	for i := range 50 {
		if fresh, err := rc.Use(ctx, fmt.Sprint("t", i), time.Now().Add(300*time.Millisecond)); err != nil || !fresh {
			t.Fatalf("%v %v", fresh, err)
		}
	}
	c := newClient(t, r)
	keys, err := c.Keys(ctx, "fgexp:rp:*").Result()
	if err != nil || len(keys) != 50 {
		t.Fatalf("%d keys, %v; want 50", len(keys), err)
	}
	for _, k := range keys {
		if ttl, err := c.PTTL(ctx, k).Result(); err != nil || ttl <= 0 || ttl > 300*time.Millisecond {
			t.Fatalf("%s: PTTL %s, %v; want a TTL of at most 300ms", k, ttl, err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		n, err := c.DBSize(ctx).Result()
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d replay keys still there after their expiry", n)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if fresh, err := rc.Use(ctx, "t0", time.Now().Add(time.Minute)); err != nil || !fresh {
		t.Fatalf("expired key: fresh %v, %v; want fresh", fresh, err)
	}
}
