package outbox

import (
	"bytes"
	"cmp"
	"container/heap"
	"context"
	"errors"
	"fmt"
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
// queue/<seq>.log (see segment.go for the format). Enqueue, Retry and Dead
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
// Entries of spool format 1, one queue/<ID>.msg file per message (written
// by older versions), are still read and delivered; a Retry moves such an
// entry into the log.
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

	queueSync, deadSync *groupSync
	log                 committer
	trimMu              sync.Mutex // orders segment deletions (see trim)

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

// entry states
const (
	stReady = iota
	stDelayed
	stInflight
	stGone
)

type dirEntry struct {
	meta  Message // Raw is not kept in memory
	state int
	seg   *segment // nil: a format-1 file, queue/<ID>.msg
	off   int64    // Raw's offset in seg
	n     int      // Raw's length
	hidx  int      // index in delayed
}

// segment is one log file.
type segment struct {
	seq  uint64
	f    *os.File
	info os.FileInfo // of f when it was created, to detect a replaced path
	size int64       // bytes written (the committing goroutine only)
	live int         // entries whose current record is in this segment (d.mu)
	// unindexed counts message records written here whose callers have
	// not indexed them yet (d.mu): the segment is not empty meanwhile.
	unindexed int
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
		queueSync: newGroupSync(filepath.Join(cfg.Path, dirQueue)),
		deadSync:  newGroupSync(filepath.Join(cfg.Path, dirDead)), nextSeq: 1}
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

// load removes half-written files, indexes queue/ (format-1 files, then
// the log segments in order) and counts dead/.
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
	var entries []*dirEntry
	var seqs []uint64
	for _, e := range queued {
		name := e.Name()
		if seq, ok := parseSegName(name); ok {
			seqs = append(seqs, seq)
			continue
		}
		if !strings.HasSuffix(name, msgExt) {
			continue
		}
		b, err := os.ReadFile(filepath.Join(d.path, dirQueue, name))
		if err != nil {
			return fmt.Errorf("outbox: reading spool: %w", err)
		}
		m, err := decodeEntry(b)
		if err == nil && m.ID+msgExt != name {
			err = fmt.Errorf("%w: file name does not match ID", errCorrupt)
		}
		if err != nil {
			// Keep the bytes for a human, out of the delivery path.
			if err := d.moveCorrupt(name, err); err != nil {
				return err
			}
			continue
		}
		m.Raw = nil
		e := &dirEntry{meta: *m}
		d.index[m.ID] = e
	}
	slices.Sort(seqs)
	var superseded []string // format-1 files replaced by a log record
	for _, seq := range seqs {
		if err := d.loadSegment(seq, &superseded); err != nil {
			return err
		}
		d.nextSeq = seq + 1
	}
	for _, id := range superseded {
		_ = os.Remove(d.queuePath(id))
	}
	for _, e := range d.index {
		entries = append(entries, e)
	}
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

// loadSegment replays one segment into the index.
func (d *Dir) loadSegment(seq uint64, superseded *[]string) error {
	name := filepath.Join(d.path, dirQueue, segName(seq))
	b, err := os.ReadFile(name)
	if err != nil {
		return fmt.Errorf("outbox: reading spool: %w", err)
	}
	f, err := os.Open(name)
	if err != nil {
		return fmt.Errorf("outbox: reading spool: %w", err)
	}
	s := &segment{seq: seq, f: f, size: int64(len(b))}
	d.segs = append(d.segs, s)
	for off := 0; off < len(b); {
		r, n, err := decodeRecord(b[off:], off)
		if err != nil {
			// Bytes after the last completed fsync were never acknowledged:
			// a record torn by a crash ends the segment. A record whose
			// header is intact but whose payload fails its checksum is
			// damage: skipped, the rest still read. Either way, when more
			// records follow, a copy is kept for a human.
			var skip int
			if errors.Is(err, errChecksum) {
				skip = n
			}
			if bytes.Contains(b[off+1:], []byte(segMagic)) {
				dst := filepath.Join(d.path, dirDead, strings.TrimSuffix(segName(seq), segExt)+".corrupt")
				_ = os.WriteFile(dst, b, 0o600)
				_ = os.WriteFile(dst+".reason", []byte(fmt.Sprintf("offset %d: %v\n", off, err)), 0o600)
			}
			if skip == 0 {
				break
			}
			off += skip
			continue
		}
		off += n
		old := d.index[recordID(r)]
		if old != nil {
			if old.seg != nil {
				old.seg.live--
			} else {
				*superseded = append(*superseded, old.meta.ID)
			}
		}
		switch r.kind {
		case recDone:
			delete(d.index, r.id)
		case recMessage:
			m := r.msg
			e := &dirEntry{seg: s, off: int64(r.rawOff), n: len(m.Raw)}
			m.Raw = nil
			e.meta = *m
			d.index[m.ID] = e
			s.live++
		}
	}
	return nil
}

func recordID(r record) string {
	if r.kind == recDone {
		return r.id
	}
	return r.msg.ID
}

func (d *Dir) moveCorrupt(name string, cause error) error {
	src := filepath.Join(d.path, dirQueue, name)
	dst := filepath.Join(d.path, dirDead, strings.TrimSuffix(name, msgExt)+".corrupt")
	if err := os.Rename(src, dst); err != nil {
		return fmt.Errorf("outbox: quarantining corrupt entry: %w", err)
	}
	_ = os.WriteFile(dst+".reason", []byte(cause.Error()+"\n"), 0o600)
	return nil
}

// writeFile writes b to tmp/, fsyncs it and returns the temp path.
func (d *Dir) writeFile(b []byte) (string, error) {
	f, err := os.CreateTemp(filepath.Join(d.path, dirTmp), "w-*")
	if err != nil {
		return "", err
	}
	name := f.Name()
	if _, err = f.Write(b); err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(name)
		return "", err
	}
	return name, nil
}

// syncDir fsyncs a directory so renames and unlinks in it are durable.
func syncDir(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func (d *Dir) queuePath(id string) string { return filepath.Join(d.path, dirQueue, id+msgExt) }

// schedule puts e where Claim finds it: ready when it has no due time,
// otherwise in the delayed heap. The caller holds d.mu (or owns d).
func (d *Dir) schedule(e *dirEntry) {
	if e.meta.NextAttempt.IsZero() {
		e.state = stReady
		d.ready = append(d.ready, e)
		return
	}
	e.state = stDelayed
	heap.Push(&d.delayed, e)
}

// unschedule takes e out of the ready list or the heap; the caller holds
// d.mu.
func (d *Dir) unschedule(e *dirEntry) {
	if e.state == stDelayed {
		heap.Remove(&d.delayed, e.hidx)
	}
	if e.state == stInflight {
		d.inflight--
	}
	e.state = stGone // a stale pointer left in ready is skipped
}

// put indexes a freshly written record of m at seg/off and schedules it;
// the caller holds d.mu. It returns the ID of a format-1 file it
// superseded, if any.
func (d *Dir) put(m *Message, seg *segment, off int64) (legacy string) {
	if old := d.index[m.ID]; old != nil {
		d.unschedule(old)
		if old.seg != nil {
			old.seg.live--
		} else {
			legacy = m.ID
		}
	}
	e := &dirEntry{meta: *m, seg: seg, off: off, n: len(m.Raw)}
	e.meta.Raw = nil
	seg.live++
	seg.unindexed--
	d.index[m.ID] = e
	d.schedule(e)
	return legacy
}

// drop removes e from the index; the caller holds d.mu.
func (d *Dir) drop(e *dirEntry) {
	d.unschedule(e)
	if e.seg != nil {
		e.seg.live--
	}
	if d.index[e.meta.ID] == e {
		delete(d.index, e.meta.ID)
	}
}

var recordPool = sync.Pool{New: func() any { b := make([]byte, 0, 8<<10); return &b }}

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
	// The record buffer is free again once append returns (the write is
	// done), so it is pooled.
	bp := recordPool.Get().(*[]byte)
	defer func() {
		if cap(*bp) <= 256<<10 {
			recordPool.Put(bp)
		}
	}()
	b := (*bp)[:0]
	offs := make([]int, len(msgs))
	for i, m := range msgs {
		var err error
		if b, offs[i], err = appendMessageRecord(b, m); err != nil {
			return fmt.Errorf("outbox: encoding message: %w", err)
		}
	}
	*bp = b
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
		if errors.Is(err, os.ErrNotExist) {
			// A format-1 file removed behind our back (by hand): nothing
			// left to send.
			d.drop(e)
			continue
		}
		if errors.Is(err, errCorrupt) {
			d.drop(e)
			if qerr := d.moveCorrupt(e.meta.ID+msgExt, err); qerr != nil {
				return out, qerr
			}
			d.dead++
			continue
		}
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
	if e.seg == nil {
		b, err := os.ReadFile(d.queuePath(e.meta.ID))
		if err != nil {
			return nil, err
		}
		m, err := decodeEntry(b)
		if err == nil && m.ID != e.meta.ID {
			err = fmt.Errorf("%w: file name does not match ID", errCorrupt)
		}
		return m, err
	}
	m := e.meta
	m.Raw = make([]byte, e.n)
	if _, err := e.seg.f.ReadAt(m.Raw, e.off); err != nil {
		return nil, err
	}
	m.To = slices.Clone(m.To)
	return &m, nil
}

// Ack implements Queue: a done record in the log, left to the next group
// commit round (for a format-1 file: an unlink and a directory fsync,
// waited for). Once that round's fsync completes the delivery stays
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
	inLog := e != nil && e.seg != nil
	d.mu.Unlock()
	if inLog {
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
	} else {
		if err := os.Remove(d.queuePath(m.ID)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		if err := d.queueSync.Sync(); err != nil {
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
	legacy := d.put(m, seg, base+int64(off))
	d.mu.Unlock()
	if legacy != "" {
		// The log record supersedes the file; if this unlink is lost in a
		// crash, the next open removes the file again.
		_ = os.Remove(d.queuePath(legacy))
	}
	d.trim()
	return nil
}

// Dead implements Queue: the message and its reason are written to dead/
// before it leaves the queue, so a crash in between leaves a duplicate dead
// letter at worst, never a lost one.
func (d *Dir) Dead(ctx context.Context, m *Message, reason string) error {
	m.LastError = reason
	b, err := encodeEntry(m)
	if err != nil {
		return fmt.Errorf("outbox: encoding message: %w", err)
	}
	t, err := d.writeFile(b)
	if err != nil {
		return fmt.Errorf("outbox: writing dead letter: %w", err)
	}
	if err := os.Rename(t, filepath.Join(d.path, dirDead, m.ID+msgExt)); err != nil {
		os.Remove(t)
		return fmt.Errorf("outbox: writing dead letter: %w", err)
	}
	if err := d.deadSync.Sync(); err != nil {
		return fmt.Errorf("outbox: syncing spool: %w", err)
	}
	if err := d.finish(m, false); err != nil {
		return fmt.Errorf("outbox: removing dead message: %w", err)
	}
	d.mu.Lock()
	d.dead++
	d.mu.Unlock()
	return nil
}

// trim deletes the oldest segments while they hold no live entry. They go
// strictly in order, each unlink made durable before the next: a done
// record in a later segment must never vanish while the record it cancels
// could still reappear. The current segment goes too once it is empty (an
// empty queue leaves an empty queue/), but only while no log write is in
// progress; the next append starts a new one.
func (d *Dir) trim() {
	d.trimMu.Lock()
	defer d.trimMu.Unlock()
	for {
		d.mu.Lock()
		if len(d.segs) == 0 || d.segs[0].live > 0 || d.segs[0].unindexed > 0 {
			d.mu.Unlock()
			return
		}
		s := d.segs[0]
		if s == d.cur {
			d.mu.Unlock()
			if !d.detachCurrent(s) {
				return
			}
			d.mu.Lock()
		}
		d.segs = d.segs[1:]
		d.mu.Unlock()
		// s is no longer current, so no append can reach it; no live entry
		// points into it, so no Claim reads it.
		s.f.Close()
		if err := os.Remove(filepath.Join(d.path, dirQueue, segName(s.seq))); err != nil {
			return // left for the next open, which replays it harmlessly
		}
		if err := d.queueSync.Sync(); err != nil {
			return
		}
	}
}

// detachCurrent stops appends to s, the current segment, if it is still
// empty and no log write is in progress (one could be writing records
// into it that are not indexed yet).
func (d *Dir) detachCurrent(s *segment) bool {
	c := &d.log
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.running {
		return false
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cur != s || len(d.segs) == 0 || d.segs[0] != s || s.live > 0 || s.unindexed > 0 {
		return false
	}
	d.cur = nil
	return true
}

// DeadLetters returns the dead-lettered messages, each with its reason in
// LastError, for inspection and tests.
func (d *Dir) DeadLetters() ([]*Message, error) {
	entries, err := os.ReadDir(filepath.Join(d.path, dirDead))
	if err != nil {
		return nil, fmt.Errorf("outbox: reading dead letters: %w", err)
	}
	var out []*Message
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), msgExt) {
			continue
		}
		b, err := os.ReadFile(filepath.Join(d.path, dirDead, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("outbox: reading dead letters: %w", err)
		}
		m, err := decodeEntry(b)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, nil
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
