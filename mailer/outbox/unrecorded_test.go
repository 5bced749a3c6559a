package outbox

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/formguard/formguard/internal/testutil"
)

// ackFails wraps a real queue and fails its next n Acks, as a queue does
// while Redis is down or the disk refuses writes: the delivery succeeded
// but could not be recorded.
type ackFails struct {
	Queue
	n, acks atomic.Int32
}

var errQueueDown = errors.New("queue down (injected)")

func (q *ackFails) Ack(ctx context.Context, m *Message) error {
	q.acks.Add(1)
	if q.n.Add(-1) >= 0 {
		return errQueueDown
	}
	return q.Queue.Ack(ctx, m)
}

func countingWorker(t *testing.T, q Queue, sent *atomic.Int32) *Worker {
	t.Helper()
	w, err := NewWorker(WorkerConfig{
		Queue: q, Logger: slog.New(slog.DiscardHandler),
		Handler: func(context.Context, *Message) error { sent.Add(1); return nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// deliverOnce queues msg(1) in q and runs a counting worker's first round,
// which must send it; it returns the send count and the worker.
func deliverOnce(t *testing.T, q Queue) (*atomic.Int32, *Worker) {
	t.Helper()
	ctx := context.Background()
	if err := q.Enqueue(ctx, msg(1)); err != nil {
		t.Fatal(err)
	}
	sent := new(atomic.Int32)
	w := countingWorker(t, q, sent)
	if n := w.Process(ctx); n != 1 || sent.Load() != 1 {
		t.Fatalf("first round handled %d, sent %d", n, sent.Load())
	}
	return sent, w
}

// TestWorkerRecordsDeliveryAgain: a delivery whose Ack fails is recorded
// again on the worker's next round, and the message is sent once.
func TestWorkerRecordsDeliveryAgain(t *testing.T) {
	ctx := context.Background()
	now := t0
	dir := t.TempDir()
	d := openDir(t, dir, &now)
	q := &ackFails{Queue: d}
	q.n.Store(1)
	sent, w := deliverOnce(t, q)
	w.Process(ctx) // the queue is back: the outcome is recorded first
	if sent.Load() != 1 || q.acks.Load() != 2 {
		t.Fatalf("after recovery: sent %d, acks %d; want 1, 2", sent.Load(), q.acks.Load())
	}
	// On disk: reopened, the spool holds nothing to deliver (without the
	// second Ack it would hold the message, to be sent again).
	d.Close()
	d2 := openDir(t, dir, &now)
	defer d2.Close()
	if st, err := d2.Stats(ctx, now); err != nil || st.Depth != 0 {
		t.Fatalf("reopened spool: depth %d (%v), want 0", st.Depth, err)
	}
}

// TestWorkerNeverResendsUnrecordedDelivery: on a Redis stream the message
// whose Ack failed is claimed again once ClaimIdle passes. The worker
// knows it was delivered: it records it, it does not send it again.
func TestWorkerNeverResendsUnrecordedDelivery(t *testing.T) {
	srv := testutil.StartRedis(t)
	ctx := context.Background()
	q := &ackFails{Queue: newRedisQueue(t, srv.Addr, "w1", 20*time.Millisecond)}
	q.n.Store(2) // the attempt's Ack and the next round's retry both fail
	sent, w := deliverOnce(t, q)
	// Redis's idle clock must pass ClaimIdle before the message can be
	// claimed again; poll.
	deadline := time.Now().Add(5 * time.Second)
	for {
		w.runOnce(ctx)
		st, err := q.Stats(ctx, time.Now())
		if err == nil && st.Depth == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still queued after 5 s: %+v %v (acks %d)", st, err, q.acks.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if sent.Load() != 1 {
		t.Fatalf("sent %d times, want once", sent.Load())
	}
	if q.acks.Load() < 3 {
		t.Fatalf("%d Acks: the reclaimed message was not recorded through the claim path", q.acks.Load())
	}
}
