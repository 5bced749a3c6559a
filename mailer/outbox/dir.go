package outbox

import (
	"cmp"
	"container/heap"
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Spool subdirectories and file suffix.
const (
	dirTmp   = "tmp"
	dirQueue = "queue"
	dirDead  = "dead"
	lockName = "lock"
	msgExt   = ".msg"
)

// DefaultSegmentSize is the size at which the directory spool starts a new
// log segment.
const DefaultSegmentSize = 16 << 20

// DefaultMaxPendingAcks is DirConfig.MaxPendingAcks' default.
const DefaultMaxPendingAcks = 8

// DirConfig configures a directory spool.
type DirConfig struct {
	// Path is the spool directory (required); created with mode 0700.
	Path string
	// Now is the clock used to stamp Enqueued. Zero value: time.Now.
	Now func() time.Time
	// SegmentSize is the size at which a new log segment is started.
	// Zero value: DefaultSegmentSize.
	SegmentSize int64
	// MaxPendingAcks bounds the delivery records Ack leaves to a later
	// group commit round at once; while that many are not yet on disk,
	// Ack waits for the disk as Enqueue does. A crash resends the
	// deliveries whose record was not on disk, so this bounds how many a
	// crash can resend beyond the deliveries in progress. Zero value:
	// DefaultMaxPendingAcks; negative: every Ack waits.
	MaxPendingAcks int
}

// Dir is the default Queue: a local directory holding an append-only log.
//
// Enqueue, Retry, Ack and Dead append records to the current log segment,
// queue/<seq>.log (see record.go for the format). Enqueue, Retry and Dead
// return once an fsync that covers their record has completed; Ack leaves
// its record to the next round and returns at once (a delivery worker
// does not wait for the disk between two messages), unless
// DirConfig.MaxPendingAcks records are waiting already. Concurrent callers share
// one write and one fsync (group commit): while one fsync runs, every
// record that arrives meanwhile is written by the next one. A new segment's
// directory entry is fsynced before any record in it is acknowledged, so
// an acknowledged message survives kill -9 and power loss. A segment whose
// messages are all delivered, dead-lettered or superseded is deleted,
// oldest first.
//
// One process owns a spool at a time (an flock on Path/lock, released by
// the kernel if the process dies); a second NewDir on the same path fails.
// The in-memory index is rebuilt from queue/ at open, so messages that were
// in flight when a process died are simply due again.
type Dir struct {
	path     string
	now      func() time.Time
	lock     *os.File
	segLimit int64

	dirSync func(path string) error // syncDir; replaceable in tests
	log     committer
	trimMu  sync.Mutex // orders segment deletions (see trim)

	mu       sync.Mutex
	closed   bool
	index    map[string]*dirEntry
	ready    []*dirEntry // due and not in flight, oldest first; stale items skipped
	readyAt  int         // ready[:readyAt] are consumed
	delayed  entryHeap   // not due before NextAttempt
	segs     []*segment  // oldest first
	cur      *segment    // where appends go; nil: start a new one
	nextSeq  uint64
	inflight int
	dead     int
}

var _ Queue = (*Dir)(nil)

// NewDir opens (creating if needed) the spool at cfg.Path.
func NewDir(cfg DirConfig) (*Dir, error) {
	if cfg.Path == "" {
		return nil, errors.New("outbox: DirConfig.Path is required")
	}
	if cfg.SegmentSize < 0 {
		return nil, errors.New("outbox: DirConfig.SegmentSize must not be negative")
	}
	if cfg.SegmentSize == 0 {
		cfg.SegmentSize = DefaultSegmentSize
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	for _, sub := range []string{"", dirTmp, dirQueue, dirDead} {
		if err := os.MkdirAll(filepath.Join(cfg.Path, sub), 0o700); err != nil {
			return nil, fmt.Errorf("outbox: creating spool: %w", err)
		}
	}
	lock, err := os.OpenFile(filepath.Join(cfg.Path, lockName), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("outbox: opening spool lock: %w", err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		lock.Close()
		return nil, fmt.Errorf("outbox: spool %s is in use by another process: %w", cfg.Path, err)
	}
	d := &Dir{path: cfg.Path, now: cfg.Now, lock: lock, segLimit: cfg.SegmentSize, index: map[string]*dirEntry{},
		dirSync: syncDir, nextSeq: 1}
	d.log.init()
	d.log.asyncMax = cfg.MaxPendingAcks
	if d.log.asyncMax == 0 {
		d.log.asyncMax = DefaultMaxPendingAcks
	}
	if err := d.load(); err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
}

// load removes half-written files, replays the log segments in order and
// counts dead/.
func (d *Dir) load() error {
	tmp, err := os.ReadDir(filepath.Join(d.path, dirTmp))
	if err != nil {
		return fmt.Errorf("outbox: reading spool: %w", err)
	}
	for _, e := range tmp {
		// Never renamed, so never acknowledged to a caller: safe to drop.
		_ = os.Remove(filepath.Join(d.path, dirTmp, e.Name()))
	}
	dead, err := os.ReadDir(filepath.Join(d.path, dirDead))
	if err != nil {
		return fmt.Errorf("outbox: reading spool: %w", err)
	}
	for _, e := range dead {
		if strings.HasSuffix(e.Name(), msgExt) {
			d.dead++
		}
	}
	queued, err := os.ReadDir(filepath.Join(d.path, dirQueue))
	if err != nil {
		return fmt.Errorf("outbox: reading spool: %w", err)
	}
	for _, e := range queued { // sorted by name, so in sequence order
		if seq, ok := parseSegName(e.Name()); ok {
			if err := d.loadSegment(seq); err != nil {
				return err
			}
			d.nextSeq = seq + 1
		}
	}
	entries := slices.Collect(maps.Values(d.index))
	slices.SortFunc(entries, func(a, b *dirEntry) int {
		return cmp.Or(a.meta.NextAttempt.Compare(b.meta.NextAttempt),
			a.meta.Enqueued.Compare(b.meta.Enqueued), strings.Compare(a.meta.ID, b.meta.ID))
	})
	for _, e := range entries {
		d.schedule(e)
	}
	d.trim()
	return nil
}

// Enqueue implements Queue: every message of the batch in one log append,
// made durable by an fsync shared with every concurrent caller.
func (d *Dir) Enqueue(ctx context.Context, msgs ...*Message) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	now := d.now()
	for _, m := range msgs {
		if err := prepare(m, now); err != nil {
			return err
		}
	}
	d.mu.Lock()
	closed := d.closed
	d.mu.Unlock()
	if closed {
		return ErrClosed
	}
	var b []byte
	offs := make([]int, len(msgs))
	for i, m := range msgs {
		var err error
		if b, offs[i], err = appendMessageRecord(b, m); err != nil {
			return fmt.Errorf("outbox: encoding message: %w", err)
		}
	}
	seg, base, err := d.log.append(d, b, len(msgs))
	if err != nil {
		return fmt.Errorf("outbox: writing spool: %w", err)
	}
	d.mu.Lock()
	for i, m := range msgs {
		d.put(m, seg, base+int64(offs[i]))
	}
	d.mu.Unlock()
	return nil
}

// Claim implements Queue.
func (d *Dir) Claim(ctx context.Context, now time.Time, max int) ([]*Message, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil, ErrClosed
	}
	for len(d.delayed) > 0 && !d.delayed[0].meta.NextAttempt.After(now) {
		e := heap.Pop(&d.delayed).(*dirEntry)
		e.state = stReady
		d.ready = append(d.ready, e)
	}
	var out []*Message
	for len(out) < max && d.readyAt < len(d.ready) {
		e := d.ready[d.readyAt]
		d.ready[d.readyAt] = nil
		d.readyAt++
		if e.state != stReady || d.index[e.meta.ID] != e {
			continue // claimed, rescheduled or removed since it was queued here
		}
		m, err := d.read(e)
		if err != nil {
			d.readyAt-- // try again later
			d.ready[d.readyAt] = e
			return out, fmt.Errorf("outbox: reading spool: %w", err)
		}
		e.state = stInflight
		d.inflight++
		out = append(out, m)
	}
	if d.readyAt > 1024 && d.readyAt*2 > len(d.ready) {
		d.ready = append(d.ready[:0:0], d.ready[d.readyAt:]...)
		d.readyAt = 0
	}
	return out, nil
}

// read returns the message of e with its Raw; the caller holds d.mu (so
// e's segment, which holds a live entry, is not deleted meanwhile).
func (d *Dir) read(e *dirEntry) (*Message, error) {
	m := e.meta
	m.Raw = make([]byte, e.n)
	if _, err := e.seg.f.ReadAt(m.Raw, e.off); err != nil {
		return nil, err
	}
	m.To = slices.Clone(m.To)
	return &m, nil
}

// Ack implements Queue: a done record in the log, left to the next group
// commit round. Once that round's fsync completes the delivery stays
// recorded across a crash; before it, a crash resends the message.
func (d *Dir) Ack(ctx context.Context, m *Message) error {
	if err := d.finish(m, true); err != nil {
		return fmt.Errorf("outbox: recording delivery: %w", err)
	}
	return nil
}

// finish records that m left the queue and drops it from the index. With
// async, a log record is left to the next group commit round instead of
// waited for (Ack): the delivery is then on disk exactly when it would have
// been had the caller waited, so a crash before that round resends it
// either way (the duplicate window Ack documents), but the delivery worker
// does not queue behind the spool's fsyncs between two messages.
func (d *Dir) finish(m *Message, async bool) error {
	d.mu.Lock()
	e := d.index[m.ID]
	d.mu.Unlock()
	if e != nil {
		rec := appendDoneRecord(nil, m.ID)
		var err error
		if async {
			err = d.log.appendAsync(d, rec)
		} else {
			_, _, err = d.log.append(d, rec, 0)
		}
		if err != nil {
			return err
		}
	}
	d.mu.Lock()
	if e != nil && d.index[m.ID] == e {
		d.drop(e)
	}
	d.mu.Unlock()
	d.trim()
	return nil
}

// Retry implements Queue: the message is appended again with its new
// attempt count and due time, superseding the earlier record.
func (d *Dir) Retry(ctx context.Context, m *Message, next time.Time) error {
	m.NextAttempt = next
	b, off, err := appendMessageRecord(make([]byte, 0, len(m.Raw)+512), m)
	if err != nil {
		return fmt.Errorf("outbox: encoding message: %w", err)
	}
	seg, base, err := d.log.append(d, b, 1)
	if err != nil {
		return fmt.Errorf("outbox: writing spool: %w", err)
	}
	d.mu.Lock()
	d.put(m, seg, base+int64(off))
	d.mu.Unlock()
	d.trim()
	return nil
}

// Stats implements Queue.
func (d *Dir) Stats(ctx context.Context, now time.Time) (Stats, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := Stats{Depth: len(d.index), InFlight: d.inflight, Dead: d.dead}
	for _, e := range d.index {
		if s.Oldest.IsZero() || e.meta.Enqueued.Before(s.Oldest) {
			s.Oldest = e.meta.Enqueued
		}
	}
	if !s.Oldest.IsZero() {
		s.OldestAge = max(now.Sub(s.Oldest), 0)
	}
	return s, nil
}

// Fsyncs reports how many fsyncs of log segments the spool has issued
// since it was opened (for metrics and benchmarks: with group commit, many
// messages share one).
func (d *Dir) Fsyncs() uint64 { return d.log.Fsyncs() }

// Close waits for a log write in progress, then closes the segments and
// releases the spool lock. Messages stay on disk.
func (d *Dir) Close() error {
	d.log.close()
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil
	}
	d.closed = true
	for _, s := range d.segs {
		s.f.Close()
	}
	if d.lock != nil {
		_ = syscall.Flock(int(d.lock.Fd()), syscall.LOCK_UN)
		return d.lock.Close()
	}
	return nil
}
