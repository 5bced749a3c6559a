package mailer

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/formguard/formguard/internal/testutil"
	"github.com/formguard/formguard/mailer/outbox"
	"github.com/redis/go-redis/v9"
)

// Two instances share one Redis stream and one relay: every message is
// delivered, and none twice.
func TestTwoInstancesOnOneRedisStream(t *testing.T) {
	srv := testutil.StartRedis(t)
	relay := newSink(t, "")
	key := loadKey(t, "ed25519.pem")
	ctx := context.Background()
	var mailers []*Mailer
	for _, name := range []string{"web-1", "web-2"} {
		c := redis.NewClient(&redis.Options{Addr: srv.Addr})
		t.Cleanup(func() { c.Close() })
		q, err := outbox.NewRedis(ctx, outbox.RedisConfig{Client: c, Consumer: name})
		if err != nil {
			t.Fatal(err)
		}
		m, err := New(Config{
			Domain: testDomain, SiteName: "Example", DKIM: DKIM{Selector: "s1", Signer: key},
			Transport: smtpTo(t, relay.Addr), Outbox: q, Workers: 3,
			Retry:  Retry{PollInterval: 5 * time.Millisecond},
			Logger: slog.New(slog.DiscardHandler),
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.Close() })
		m.Start(ctx)
		mailers = append(mailers, m)
	}
	const n = 40
	for i := range n {
		if err := mailers[i%2].Deliver(ctx, contact(fmt.Sprintf("sub-%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	got := relay.wait(n)
	for _, m := range mailers {
		m.Close()
	}
	seen := map[string]int{}
	for _, r := range relay.messages() {
		verifyDKIM(t, r.Data, key.Public())
		seen[header(t, r.Data, "Message-Id")[0]]++
	}
	if len(got) != n || len(seen) != n {
		t.Fatalf("delivered %d messages, %d distinct; want %d once each", len(relay.messages()), len(seen), n)
	}
	for id, c := range seen {
		if c != 1 {
			t.Errorf("%s delivered %d times", id, c)
		}
	}
}
