package captcha_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strconv"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/formguard/formguard/guard/captcha"
	"github.com/formguard/formguard/guard/ratelimit/redisstore"
	"github.com/formguard/formguard/internal/testutil"
)

// TestSharedReplayAcrossInstances runs two service instances (two PoW and
// two FormToken verifiers with the same keys) against one real Redis: a
// token used on one instance must be refused by the other.
func TestSharedReplayAcrossInstances(t *testing.T) {
	if testing.Short() {
		t.Skip("starts redis-server")
	}
	srv := testutil.StartRedis(t)
	ctx := context.Background()
	newInstance := func() (*captcha.PoW, *captcha.FormToken) {
		rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
		t.Cleanup(func() { rdb.Close() })
		replay := redisstore.NewReplayCache(rdb, "fgtest")
		pow, err := captcha.NewPoW(captcha.PoWConfig{Keys: [][]byte{exampleKey}, MaxNumber: 500, Replay: replay})
		if err != nil {
			t.Fatal(err)
		}
		ft, err := captcha.NewFormToken(captcha.FormTokenConfig{Keys: [][]byte{exampleKey}, MinFill: -1, Replay: replay})
		if err != nil {
			t.Fatal(err)
		}
		return pow, ft
	}
	powA, ftA := newInstance()
	powB, ftB := newInstance()

	t.Run("proof-of-work", func(t *testing.T) {
		ch, err := powA.Challenge("contact", "")
		if err != nil {
			t.Fatal(err)
		}
		tok := solvePayload(t, ch)
		if err := powB.Verify(ctx, captcha.Request{Form: "contact", Token: tok}); err != nil {
			t.Fatalf("instance B: %v", err)
		}
		if err := powA.Verify(ctx, captcha.Request{Form: "contact", Token: tok}); !errors.Is(err, captcha.ErrReplayed) {
			t.Fatalf("instance A after B: %v, want ErrReplayed", err)
		}
	})
	t.Run("form token", func(t *testing.T) {
		tok, err := ftA.Issue("contact")
		if err != nil {
			t.Fatal(err)
		}
		if err := ftA.Verify(ctx, captcha.Request{Form: "contact", Token: tok}); err != nil {
			t.Fatalf("instance A: %v", err)
		}
		if err := ftB.Verify(ctx, captcha.Request{Form: "contact", Token: tok}); !errors.Is(err, captcha.ErrReplayed) {
			t.Fatalf("instance B after A: %v, want ErrReplayed", err)
		}
	})
	t.Run("redis down fails closed", func(t *testing.T) {
		ch, _ := powA.Challenge("contact", "")
		tok := solvePayload(t, ch)
		srv.Stop()
		if err := powA.Verify(ctx, captcha.Request{Form: "contact", Token: tok}); !errors.Is(err, captcha.ErrUnavailable) {
			t.Fatalf("Verify with Redis down = %v, want ErrUnavailable", err)
		}
	})
}

func solvePayload(t *testing.T, ch captcha.Challenge) string {
	t.Helper()
	for n := range ch.MaxNumber + 1 {
		sum := sha256.Sum256([]byte(ch.Salt + strconv.FormatInt(n, 10)))
		if hex.EncodeToString(sum[:]) == ch.Challenge {
			b, _ := json.Marshal(captcha.PoWPayload{Algorithm: ch.Algorithm, Challenge: ch.Challenge,
				Number: n, Salt: ch.Salt, Signature: ch.Signature})
			return base64.StdEncoding.EncodeToString(b)
		}
	}
	t.Fatal("unsolvable challenge")
	return ""
}
