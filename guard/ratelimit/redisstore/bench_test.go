package redisstore

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/formguard/formguard/guard/ratelimit"
	"github.com/formguard/formguard/internal/testutil"
)

// BenchmarkAllowFiveTiers is a full guard decision (ip, sender, recipient,
// form, global) in one EVALSHA against a real redis-server on loopback.
func BenchmarkAllowFiveTiers(b *testing.B) {
	r := testutil.StartRedis(b)
	s := newStore(b, Config{Client: newClient(b, r), Timeout: time.Second})
	l := ratelimit.Limit{Count: 1_000_000_000, Period: time.Hour}
	sets := make([][]ratelimit.Rule, 256)
	for i := range sets {
		n := strconv.Itoa(i)
		sets[i] = []ratelimit.Rule{
			{Tier: ratelimit.TierIP, Key: "ip" + n, Limit: l},
			{Tier: ratelimit.TierSender, Key: "snd" + n, Limit: l},
			{Tier: ratelimit.TierRecipient, Key: "rcpt" + n, Limit: l},
			{Tier: ratelimit.TierForm, Key: "contact", Limit: l},
			{Tier: ratelimit.TierGlobal, Key: "all", Limit: l},
		}
	}
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := s.Allow(ctx, sets[i%len(sets)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
