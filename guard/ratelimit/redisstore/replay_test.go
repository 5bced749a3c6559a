package redisstore

import (
	"context"
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
