package outbox

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/formguard/formguard/internal/testutil"
	"github.com/redis/go-redis/v9"
)

func newRedisQueue(t *testing.T, addr, consumer string, idle time.Duration) *Redis {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { c.Close() })
	q, err := NewRedis(context.Background(), RedisConfig{Client: c, Consumer: consumer, ClaimIdle: idle})
	if err != nil {
		t.Fatal(err)
	}
	return q
}

func TestRedisTwoWorkersNeverBothDeliver(t *testing.T) {
	srv := testutil.StartRedis(t)
	ctx := context.Background()
	qa := newRedisQueue(t, srv.Addr, "a", 0)
	qb := newRedisQueue(t, srv.Addr, "b", 0)

	const n = 60
	var mu sync.Mutex
	delivered := map[string][]string{}
	done := make(chan struct{})
	handler := func(name string) Handler {
		return func(ctx context.Context, m *Message) error {
			mu.Lock()
			defer mu.Unlock()
			delivered[m.ID] = append(delivered[m.ID], name)
			if len(delivered) == n {
				close(done)
			}
			return nil
		}
	}
	wa, _ := NewWorker(WorkerConfig{Queue: qa, Handler: handler("a"), Concurrency: 3, PollInterval: 5 * time.Millisecond})
	wb, _ := NewWorker(WorkerConfig{Queue: qb, Handler: handler("b"), Concurrency: 3, PollInterval: 5 * time.Millisecond})
	wa.Start(ctx)
	wb.Start(ctx)
	defer wa.Close()
	defer wb.Close()
	for i := range n {
		q := qa
		if i%2 == 1 {
			q = qb
		}
		if err := q.Enqueue(ctx, msg(i)); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("not all delivered")
	}
	wa.Close()
	wb.Close()
	mu.Lock()
	defer mu.Unlock()
	by := map[string]int{}
	for id, who := range delivered {
		if len(who) != 1 {
			t.Errorf("%s delivered %d times by %v", id, len(who), who)
		}
		by[who[0]]++
	}
	t.Logf("deliveries by worker: %v", by)
	if s, _ := qa.Stats(ctx, time.Now()); s.Depth != 0 || s.InFlight != 0 {
		t.Errorf("stats after delivery = %+v", s)
	}
}

func TestRedisReclaimsCrashedConsumer(t *testing.T) {
	srv := testutil.StartRedis(t)
	ctx := context.Background()
	crashed := newRedisQueue(t, srv.Addr, "crashed", time.Hour)
	for i := range 3 {
		if err := crashed.Enqueue(ctx, msg(i)); err != nil {
			t.Fatal(err)
		}
	}
	got, err := crashed.Claim(ctx, time.Now(), 10)
	if err != nil || len(got) != 3 {
		t.Fatalf("claim = %d, %v", len(got), err)
	}
	// "crashed" never acks. A live instance with a short lease takes over;
	// idle time is Redis's own clock, so poll briefly.
	live := newRedisQueue(t, srv.Addr, "live", 20*time.Millisecond)
	var claimed []*Message
	deadline := time.Now().Add(5 * time.Second)
	for len(claimed) < 3 && time.Now().Before(deadline) {
		more, err := live.Claim(ctx, time.Now(), 10)
		if err != nil {
			t.Fatal(err)
		}
		claimed = append(claimed, more...)
		if len(claimed) < 3 {
			time.Sleep(10 * time.Millisecond)
		}
	}
	if len(claimed) != 3 {
		t.Fatalf("reclaimed %d of 3", len(claimed))
	}
	for _, m := range claimed {
		if err := live.Ack(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	if s, _ := live.Stats(ctx, time.Now()); s.Depth != 0 || s.InFlight != 0 {
		t.Fatalf("stats = %+v", s)
	}
}

func TestRedisRetryAndDead(t *testing.T) {
	srv := testutil.StartRedis(t)
	ctx := context.Background()
	q := newRedisQueue(t, srv.Addr, "c", time.Hour)
	now := time.Now()
	a, b := msg(1), msg(2)
	a.Enqueued = now.Add(-time.Minute)
	if err := q.Enqueue(ctx, a, b); err != nil {
		t.Fatal(err)
	}
	s, _ := q.Stats(ctx, now)
	if s.Depth != 2 || s.OldestAge < time.Minute-time.Millisecond || s.OldestAge > time.Minute+time.Millisecond {
		t.Fatalf("stats = %+v", s)
	}
	got, _ := q.Claim(ctx, now, 10)
	if len(got) != 2 {
		t.Fatalf("claimed %d", len(got))
	}
	got[0].Attempts, got[0].LastError = 1, "451 later"
	if err := q.Retry(ctx, got[0], now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := q.Dead(ctx, got[1], "550 unknown user"); err != nil {
		t.Fatal(err)
	}
	if early, _ := q.Claim(ctx, now.Add(time.Minute), 10); len(early) != 0 {
		t.Fatalf("retried message due early")
	}
	due, _ := q.Claim(ctx, now.Add(time.Hour), 10)
	if len(due) != 1 || due[0].ID != got[0].ID || due[0].Attempts != 1 || string(due[0].Raw) != string(got[0].Raw) {
		t.Fatalf("due = %+v", due)
	}
	dl, _ := q.DeadLetters(ctx, 10)
	if len(dl) != 1 || dl[0].LastError != "550 unknown user" {
		t.Fatalf("dead = %+v", dl)
	}
	s, _ = q.Stats(ctx, now)
	if s.Depth != 1 || s.Dead != 1 || s.InFlight != 1 {
		t.Fatalf("stats = %+v", s)
	}
}

func FuzzDecodeRedis(f *testing.F) {
	v, _ := encodeRedis(&Message{ID: "abc", From: "a@b", To: []string{"c@d"}, Raw: []byte("x")})
	f.Add(v)
	f.Add(`{"raw":"eA=="}`)
	f.Fuzz(func(t *testing.T, s string) {
		m, err := decodeRedis(s)
		if err != nil {
			return
		}
		if !validID(m.ID) || m.From == "" || len(m.To) == 0 || len(m.Raw) == 0 {
			t.Fatalf("accepted %+v", m)
		}
		_ = fmt.Sprint(m)
	})
}

func TestRedisRecreatesGroupAfterRestart(t *testing.T) {
	srv := testutil.StartRedis(t)
	ctx := context.Background()
	q := newRedisQueue(t, srv.Addr, "c", time.Hour)
	srv.Restart(t) // no persistence: the stream and group are gone
	var err error
	deadline := time.Now().Add(5 * time.Second)
	for {
		// The client reconnects on its own; the first call may see the old
		// connection's error.
		if err = q.Enqueue(ctx, msg(1)); err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	got, err := q.Claim(ctx, time.Now(), 10)
	if err != nil || len(got) != 1 {
		t.Fatalf("claim after restart = %d, %v", len(got), err)
	}
	if err := q.Ack(ctx, got[0]); err != nil {
		t.Fatal(err)
	}
}
