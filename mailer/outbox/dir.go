package outbox

import (
	"cmp"
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

// DirConfig configures a directory spool.
type DirConfig struct {
	// Path is the spool directory (required); created with mode 0700.
	Path string
	// Now is the clock used to stamp Enqueued. Zero value: time.Now.
	Now func() time.Time
}

// Dir is the default Queue: one file per message in a local directory.
//
// Writes go to tmp/, are fsynced, renamed into queue/ and the directory is
// fsynced, so a message is either fully queued or absent after a crash.
// One process owns a spool at a time (an flock on Path/lock, released by
// the kernel if the process dies); a second NewDir on the same path fails.
// The in-memory index is rebuilt from queue/ at open, so messages that were
// in flight when a process died are simply due again.
type Dir struct {
	path string
	now  func() time.Time
	lock *os.File

	queueSync, deadSync *groupSync

	mu       sync.Mutex
	closed   bool
	index    map[string]*dirEntry
	inflight int
	dead     int
}

type dirEntry struct {
	meta     Message // Raw is not kept in memory
	inflight bool
}

var _ Queue = (*Dir)(nil)

// NewDir opens (creating if needed) the spool at cfg.Path.
func NewDir(cfg DirConfig) (*Dir, error) {
	if cfg.Path == "" {
		return nil, errors.New("outbox: DirConfig.Path is required")
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
	d := &Dir{path: cfg.Path, now: cfg.Now, lock: lock, index: map[string]*dirEntry{},
		queueSync: newGroupSync(filepath.Join(cfg.Path, dirQueue)),
		deadSync:  newGroupSync(filepath.Join(cfg.Path, dirDead))}
	if err := d.load(); err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
}

// load removes half-written files and indexes queue/ and dead/.
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
	for _, e := range queued {
		name := e.Name()
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
		d.index[m.ID] = &dirEntry{meta: *m}
	}
	return nil
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

// Enqueue implements Queue. Each file is fsynced (concurrent callers'
// fsyncs run in parallel and share journal commits); the directory fsync
// is shared by the whole batch and by every concurrent caller (groupSync).
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
	tmps := make([]string, 0, len(msgs))
	cleanup := func() {
		for _, t := range tmps {
			os.Remove(t)
		}
	}
	for _, m := range msgs {
		b, err := encodeEntry(m)
		if err != nil {
			cleanup()
			return fmt.Errorf("outbox: encoding message: %w", err)
		}
		t, err := d.writeFile(b)
		if err != nil {
			cleanup()
			return fmt.Errorf("outbox: writing spool: %w", err)
		}
		tmps = append(tmps, t)
	}
	for i, m := range msgs {
		if err := os.Rename(tmps[i], d.queuePath(m.ID)); err != nil {
			for _, done := range msgs[:i] {
				os.Remove(d.queuePath(done.ID))
			}
			cleanup()
			return fmt.Errorf("outbox: writing spool: %w", err)
		}
	}
	if err := d.queueSync.Sync(); err != nil {
		for _, m := range msgs {
			os.Remove(d.queuePath(m.ID))
		}
		return fmt.Errorf("outbox: syncing spool: %w", err)
	}
	d.mu.Lock()
	for _, m := range msgs {
		meta := *m
		meta.Raw = nil
		d.index[m.ID] = &dirEntry{meta: meta}
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
	var due []*dirEntry
	for _, e := range d.index {
		if !e.inflight && !e.meta.NextAttempt.After(now) {
			due = append(due, e)
		}
	}
	slices.SortFunc(due, func(a, b *dirEntry) int {
		return cmp.Or(a.meta.NextAttempt.Compare(b.meta.NextAttempt),
			a.meta.Enqueued.Compare(b.meta.Enqueued), strings.Compare(a.meta.ID, b.meta.ID))
	})
	if len(due) > max {
		due = due[:max]
	}
	out := make([]*Message, 0, len(due))
	for _, e := range due {
		b, err := os.ReadFile(d.queuePath(e.meta.ID))
		if errors.Is(err, os.ErrNotExist) {
			// Removed behind our back (by hand): nothing left to send.
			delete(d.index, e.meta.ID)
			continue
		}
		if err != nil {
			return out, fmt.Errorf("outbox: reading spool: %w", err)
		}
		m, err := decodeEntry(b)
		if err != nil {
			delete(d.index, e.meta.ID)
			if qerr := d.moveCorrupt(e.meta.ID+msgExt, err); qerr != nil {
				return out, qerr
			}
			d.dead++
			continue
		}
		e.inflight = true
		d.inflight++
		out = append(out, m)
	}
	return out, nil
}

// release clears the in-flight mark of id; the caller holds d.mu.
func (d *Dir) release(id string) *dirEntry {
	e := d.index[id]
	if e != nil && e.inflight {
		e.inflight = false
		d.inflight--
	}
	return e
}

// Ack implements Queue: unlink, then fsync the directory, so a recorded
// delivery stays recorded across a crash.
func (d *Dir) Ack(ctx context.Context, m *Message) error {
	if err := os.Remove(d.queuePath(m.ID)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("outbox: removing delivered message: %w", err)
	}
	if err := d.queueSync.Sync(); err != nil {
		return fmt.Errorf("outbox: syncing spool: %w", err)
	}
	d.mu.Lock()
	d.release(m.ID)
	delete(d.index, m.ID)
	d.mu.Unlock()
	return nil
}

// Retry implements Queue: the file is rewritten atomically with the new
// attempt count and due time.
func (d *Dir) Retry(ctx context.Context, m *Message, next time.Time) error {
	m.NextAttempt = next
	b, err := encodeEntry(m)
	if err != nil {
		return fmt.Errorf("outbox: encoding message: %w", err)
	}
	t, err := d.writeFile(b)
	if err != nil {
		return fmt.Errorf("outbox: writing spool: %w", err)
	}
	if err := os.Rename(t, d.queuePath(m.ID)); err != nil {
		os.Remove(t)
		return fmt.Errorf("outbox: writing spool: %w", err)
	}
	if err := d.queueSync.Sync(); err != nil {
		return fmt.Errorf("outbox: syncing spool: %w", err)
	}
	d.mu.Lock()
	if e := d.release(m.ID); e != nil {
		e.meta = *m
		e.meta.Raw = nil
	}
	d.mu.Unlock()
	return nil
}

// Dead implements Queue: the message and its reason are written to dead/
// before it leaves queue/, so a crash in between leaves a duplicate dead
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
	if err := os.Remove(d.queuePath(m.ID)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("outbox: removing dead message: %w", err)
	}
	if err := d.queueSync.Sync(); err != nil {
		return fmt.Errorf("outbox: syncing spool: %w", err)
	}
	d.mu.Lock()
	d.release(m.ID)
	delete(d.index, m.ID)
	d.dead++
	d.mu.Unlock()
	return nil
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

// Close releases the spool lock. Messages stay on disk.
func (d *Dir) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil
	}
	d.closed = true
	if d.lock != nil {
		_ = syscall.Flock(int(d.lock.Fd()), syscall.LOCK_UN)
		return d.lock.Close()
	}
	return nil
}
