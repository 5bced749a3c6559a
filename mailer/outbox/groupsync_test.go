package outbox

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"testing"
	"time"
)

func TestGroupSyncCoalesces(t *testing.T) {
	g := newGroupSync("unused")
	release := make(chan struct{})
	var calls int
	g.sync = func(string) error {
		calls++ // only ever one fsync at a time: no lock needed, -race checks it
		if calls == 1 {
			<-release // the first fsync is slow
		}
		return nil
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); g.Sync() }()
	waitFor(t, func() bool { g.mu.Lock(); defer g.mu.Unlock(); return g.running })
	const followers = 20
	for range followers {
		wg.Add(1)
		go func() { defer wg.Done(); g.Sync() }()
	}
	waitFor(t, func() bool { g.mu.Lock(); defer g.mu.Unlock(); return g.changed == followers+1 })
	close(release)
	wg.Wait()
	if got := g.Fsyncs(); got != 2 {
		t.Fatalf("%d fsyncs for %d callers, want 2 (the slow one, then one shared)", got, followers+1)
	}
}

func TestGroupSyncError(t *testing.T) {
	g := newGroupSync("unused")
	fail := true
	g.sync = func(string) error {
		if fail {
			fail = false
			return errors.New("EIO")
		}
		return nil
	}
	if err := g.Sync(); err == nil {
		t.Fatal("error swallowed")
	}
	if err := g.Sync(); err != nil {
		t.Fatal(err)
	}
}

func TestDirConcurrentEnqueueSharesFsyncs(t *testing.T) {
	now := t0
	d := openDir(t, t.TempDir(), &now)
	defer d.Close()
	var wg sync.WaitGroup
	const n = 40
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := d.Enqueue(context.Background(), msg(i)); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if s, _ := d.Stats(context.Background(), now); s.Depth != n {
		t.Fatalf("depth %d", s.Depth)
	}
	t.Logf("%d enqueues, %d directory fsyncs", n, d.queueSync.Fsyncs())
	if f := d.queueSync.Fsyncs(); f > n {
		t.Fatalf("%d fsyncs for %d enqueues", f, n)
	}
}

// waitFor polls cond (state owned by other goroutines) with a deadline.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached")
		}
		runtime.Gosched()
	}
}
