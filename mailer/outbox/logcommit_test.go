package outbox

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestDirConcurrentEnqueueSharesFsyncs(t *testing.T) {
	now := t0
	d := openDir(t, t.TempDir(), &now)
	defer d.Close()
	var dirSyncs atomic.Int64
	d.dirSync = func(p string) error { dirSyncs.Add(1); return syncDir(p) }
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
	t.Logf("%d enqueues, %d log fsyncs, %d directory fsyncs", n, d.Fsyncs(), dirSyncs.Load())
	if f := d.Fsyncs() + uint64(dirSyncs.Load()); f > n+1 {
		t.Fatalf("%d fsyncs for %d enqueues", f, n)
	}
}

// While one log fsync runs, every Enqueue that arrives shares the next
// one, and none returns before the fsync covering its record is done.
func TestDirEnqueueGroupCommit(t *testing.T) {
	now := t0
	d := openDir(t, t.TempDir(), &now)
	defer d.Close()
	release := make(chan struct{})
	var calls int
	d.log.sync = func(f *os.File) error {
		calls++ // only ever one round at a time: no lock needed, -race checks it
		if calls == 1 {
			<-release // the first fsync is slow
		}
		return f.Sync()
	}
	var returned atomic.Int64
	var wg sync.WaitGroup
	enqueue := func(i int) {
		defer wg.Done()
		if err := d.Enqueue(context.Background(), msg(i)); err != nil {
			t.Error(err)
		}
		returned.Add(1)
	}
	wg.Add(1)
	go enqueue(0)
	waitFor(t, func() bool { d.log.mu.Lock(); defer d.log.mu.Unlock(); return d.log.running })
	const followers = 20
	for i := range followers {
		wg.Add(1)
		go enqueue(i + 1)
	}
	waitFor(t, func() bool { d.log.mu.Lock(); defer d.log.mu.Unlock(); return len(d.log.pending) == followers })
	if n := returned.Load(); n != 0 {
		t.Fatalf("%d Enqueue calls returned before their fsync", n)
	}
	close(release)
	wg.Wait()
	if got := d.Fsyncs(); got != 2 {
		t.Fatalf("%d fsyncs for %d enqueues, want 2 (the slow one, then one shared)", got, followers+1)
	}
	if s, _ := d.Stats(context.Background(), now); s.Depth != followers+1 {
		t.Fatalf("depth %d", s.Depth)
	}
	// And the shared round is durable: a reopen finds every message.
	d.Close()
	d = openDir(t, d.path, &now)
	defer d.Close()
	if s, _ := d.Stats(context.Background(), now); s.Depth != followers+1 {
		t.Fatalf("after reopen depth %d", s.Depth)
	}
}

// A failed log fsync fails every Enqueue of its round, none is indexed,
// and the next round writes to a fresh segment.
func TestDirEnqueueFsyncError(t *testing.T) {
	now := t0
	d := openDir(t, t.TempDir(), &now)
	defer d.Close()
	failNextSync(d)
	if err := d.Enqueue(context.Background(), msg(1)); err == nil {
		t.Fatal("fsync error swallowed")
	}
	if err := d.Enqueue(context.Background(), msg(2)); err != nil {
		t.Fatal(err)
	}
	if s, _ := d.Stats(context.Background(), now); s.Depth != 1 {
		t.Fatalf("depth %d, want only the message whose fsync succeeded", s.Depth)
	}
	if _, err := os.Stat(filepath.Join(d.path, dirQueue, segName(2))); err != nil {
		t.Fatalf("no fresh segment after a failed fsync: %v", err)
	}
}

// failNextSync makes the spool's next log fsync fail with EIO.
func failNextSync(d *Dir) {
	fail := true
	d.log.sync = func(f *os.File) error { // one round at a time: -race checks it
		if fail {
			fail = false
			return errors.New("EIO")
		}
		return f.Sync()
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

// An Enqueue returns only after its record and the directory entry of the
// segment holding it are durable: the first append to a new segment
// fsyncs queue/ before the record is written and fsynced.
func TestDirEnqueueSyncsSegmentEntryFirst(t *testing.T) {
	now := t0
	d := openDir(t, t.TempDir(), &now)
	defer d.Close()
	var order []string
	var mu sync.Mutex
	note := func(s string) { mu.Lock(); order = append(order, s); mu.Unlock() }
	d.dirSync = func(p string) error { note("dir"); return syncDir(p) }
	d.log.sync = func(f *os.File) error { note("record"); return f.Sync() }
	for i := range 2 {
		if err := d.Enqueue(context.Background(), msg(i)); err != nil {
			t.Fatal(err)
		}
		note("returned")
	}
	want := []string{"dir", "record", "returned", "record", "returned"}
	if !slices.Equal(order, want) {
		t.Fatalf("order %v, want %v", order, want)
	}
}
