package outbox

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"
)

// claimAll enqueues n messages and claims them all.
func claimAll(t *testing.T, d *Dir, now time.Time, n int) []*Message {
	t.Helper()
	ctx := context.Background()
	for i := range n {
		if err := d.Enqueue(ctx, msg(i)); err != nil {
			t.Fatal(err)
		}
	}
	ms, err := d.Claim(ctx, now, n)
	if err != nil || len(ms) != n {
		t.Fatalf("claimed %d, err %v", len(ms), err)
	}
	return ms
}

// reopenRefs closes d, opens its spool again and returns the refs of
// every message it holds.
func reopenRefs(t *testing.T, d *Dir, now time.Time) map[string]bool {
	t.Helper()
	d.Close()
	r := openDir(t, d.path, &now)
	defer r.Close()
	got, err := r.Claim(context.Background(), now, 100)
	if err != nil {
		t.Fatal(err)
	}
	refs := map[string]bool{}
	for _, m := range got {
		refs[m.Ref] = true
	}
	return refs
}

// stuckRound starts an Enqueue of msg(9) whose round blocks in its fsync
// until release is closed; enqueued gets the Enqueue's result.
func stuckRound(t *testing.T, d *Dir) (release chan struct{}, enqueued chan error) {
	t.Helper()
	release, enqueued = make(chan struct{}), make(chan error, 1)
	blocked := true
	d.log.sync = func(f *os.File) error {
		if blocked { // one round at a time: no lock needed, -race checks it
			blocked = false
			<-release
		}
		return f.Sync()
	}
	go func() { enqueued <- d.Enqueue(context.Background(), msg(9)) }()
	waitFor(t, func() bool { d.log.mu.Lock(); defer d.log.mu.Unlock(); return d.log.running })
	return release, enqueued
}

// waitRoundAfter waits until a round has run since Fsyncs was before and
// the committer is idle again.
func waitRoundAfter(t *testing.T, d *Dir, before uint64) {
	t.Helper()
	waitFor(t, func() bool { return d.Fsyncs() > before })
	waitFor(t, func() bool { d.log.mu.Lock(); defer d.log.mu.Unlock(); return !d.log.running })
}

// Ack does not wait for the spool's fsync: while a round is stuck in its
// fsync, an Ack returns, the message leaves the queue at once, and its
// record is written by the next round, so a reopened spool does not hold
// it.
func TestDirAckDoesNotWaitForFsync(t *testing.T) {
	ctx := context.Background()
	now := t0
	d := openDir(t, t.TempDir(), &now)
	defer d.Close()
	ms := claimAll(t, d, now, 2)

	release, enqueued := stuckRound(t, d)

	acked := make(chan error, 1)
	go func() { acked <- d.Ack(ctx, ms[0]) }()
	select {
	case err := <-acked:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		close(release)
		t.Fatal("Ack waited for the fsync in progress")
	}
	// ms[0] left the queue at once; msg 9 is indexed only once its round
	// is durable, so ms[1] is all that is left.
	if s, _ := d.Stats(ctx, now); s.Depth != 1 {
		t.Fatalf("depth %d after the Ack, want 1 (ms[1])", s.Depth)
	}
	fsyncsBefore := d.Fsyncs()
	close(release)
	if err := <-enqueued; err != nil {
		t.Fatal(err)
	}
	// The Ack's record is written by a round of its own after the stuck one.
	waitRoundAfter(t, d, fsyncsBefore)
	if refs := reopenRefs(t, d, now); len(refs) != 2 || !refs[ms[1].Ref] || !refs["sub9"] {
		t.Fatalf("after reopen: %v, want %s and sub9 (not the acked %s)", refs, ms[1].Ref, ms[0].Ref)
	}
}

// An Ack with no other caller around is written by a background round on
// its own, without waiting for Close or another append.
func TestDirAckWrittenWithoutOtherCallers(t *testing.T) {
	ctx := context.Background()
	now := t0
	d := openDir(t, t.TempDir(), &now)
	defer d.Close()
	ms := claimAll(t, d, now, 1)
	before := d.Fsyncs()
	if err := d.Ack(ctx, ms[0]); err != nil {
		t.Fatal(err)
	}
	waitRoundAfter(t, d, before)
	// The record is on disk now: a copy of the spool taken before Close
	// (which would drain it anyway) no longer holds the message.
	copyPath := t.TempDir()
	copyDir(t, d.path, copyPath)
	c := openDir(t, copyPath, &now)
	defer c.Close()
	if s, _ := c.Stats(ctx, now); s.Depth != 0 {
		t.Fatalf("a copy of the spool after the Ack's round holds %d messages", s.Depth)
	}
}

// Close drains Acks still pending; an Ack after Close fails.
func TestDirCloseDrainsAcks(t *testing.T) {
	ctx := context.Background()
	now := t0
	d := openDir(t, t.TempDir(), &now)
	ms := claimAll(t, d, now, 50)
	for _, m := range ms[:49] {
		if err := d.Ack(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	d.Close()
	if err := d.Ack(ctx, ms[49]); !errors.Is(err, ErrClosed) {
		t.Fatalf("Ack after Close: %v", err)
	}
	d = openDir(t, d.path, &now)
	defer d.Close()
	got, err := d.Claim(ctx, now, 50)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Ref != ms[49].Ref {
		t.Fatalf("after reopen %d messages, want only %s (acked after Close)", len(got), ms[49].Ref)
	}
}

// A round that fails loses the Ack it carried: the message is delivered
// but back after a restart (the duplicate window Queue.Ack documents),
// never lost; the spool goes on in a fresh segment.
func TestDirAckRoundFailure(t *testing.T) {
	ctx := context.Background()
	now := t0
	d := openDir(t, t.TempDir(), &now)
	defer d.Close()
	// A third message stays queued, so that its segment is not deleted
	// once the other two are acked (which would take them along).
	ms := claimAll(t, d, now, 3)
	failNextSync(d)
	before := d.Fsyncs()
	if err := d.Ack(ctx, ms[0]); err != nil {
		t.Fatal(err)
	}
	waitRoundAfter(t, d, before)
	if err := d.Ack(ctx, ms[1]); err != nil {
		t.Fatal(err)
	}
	if refs := reopenRefs(t, d, now); len(refs) != 2 || !refs[ms[0].Ref] || !refs[ms[2].Ref] {
		t.Fatalf("after reopen %v, want %s (its Ack's round failed) and %s (never acked)", refs, ms[0].Ref, ms[2].Ref)
	}
}

// copyDir copies the spool's files (one level of subdirectories), minus
// the lock file, so that a second Dir can open the copy while the first
// still holds the original.
func copyDir(t *testing.T, from, to string) {
	t.Helper()
	entries, err := os.ReadDir(from)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		src, dst := from+"/"+e.Name(), to+"/"+e.Name()
		if e.IsDir() {
			if err := os.MkdirAll(dst, 0o700); err != nil {
				t.Fatal(err)
			}
			copyDir(t, src, dst)
			continue
		}
		if e.Name() == "lock" {
			continue
		}
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// At most MaxPendingAcks records wait for a later round: the next Ack
// waits for the disk, so a crash can resend no more than that many
// deliveries beyond those in progress.
func TestDirMaxPendingAcks(t *testing.T) {
	for _, limit := range []int{3, -1} {
		ctx := context.Background()
		now := t0
		d, err := NewDir(DirConfig{Path: t.TempDir(), Now: func() time.Time { return now }, MaxPendingAcks: limit})
		if err != nil {
			t.Fatal(err)
		}
		ms := claimAll(t, d, now, 5)
		release, enqueued := stuckRound(t, d)
		free := max(limit, 0)
		for i := range free {
			if err := d.Ack(ctx, ms[i]); err != nil {
				t.Fatal(err)
			}
		}
		acked := make(chan error, 1)
		go func() { acked <- d.Ack(ctx, ms[free]) }()
		waitFor(t, func() bool { d.log.mu.Lock(); defer d.log.mu.Unlock(); return len(d.log.pending) == free+1 })
		d.log.mu.Lock()
		waits := !d.log.pending[free].async
		d.log.mu.Unlock()
		if !waits {
			t.Fatalf("limit %d: Ack %d left to a later round while %d records wait for the disk", limit, free+1, free)
		}
		select {
		case err := <-acked:
			t.Fatalf("limit %d: Ack %d returned (%v) while %d records wait for the disk", limit, free+1, err, free)
		default:
		}
		close(release)
		if err := <-acked; err != nil {
			t.Fatal(err)
		}
		if err := <-enqueued; err != nil {
			t.Fatal(err)
		}
		d.Close()
		d, err = NewDir(DirConfig{Path: d.path, Now: func() time.Time { return now }})
		if err != nil {
			t.Fatal(err)
		}
		if s, _ := d.Stats(ctx, now); s.Depth != 5-(free+1)+1 {
			t.Fatalf("limit %d: depth %d after reopen, want %d", limit, s.Depth, 5-(free+1)+1)
		}
		d.Close()
	}
}
