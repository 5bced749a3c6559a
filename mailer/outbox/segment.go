package outbox

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

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

// loadSegment replays one segment into the index.
func (d *Dir) loadSegment(seq uint64) error {
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
		if old := d.index[recordID(r)]; old != nil {
			old.seg.live--
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

// current returns the segment appends go to, starting a new one when there
// is none or it is full. Only the committer's leader calls it.
func (d *Dir) current() (*segment, error) {
	d.mu.Lock()
	cur, seq := d.cur, d.nextSeq
	d.mu.Unlock()
	if cur != nil && cur.size < d.segLimit {
		return cur, nil
	}
	name := filepath.Join(d.path, dirQueue, segName(seq))
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, err
	}
	// The new file's directory entry must be durable before any record in
	// it is acknowledged.
	if err := d.dirSync(filepath.Join(d.path, dirQueue)); err != nil {
		f.Close()
		os.Remove(name)
		return nil, fmt.Errorf("syncing spool: %w", err)
	}
	info, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	s := &segment{seq: seq, f: f, info: info}
	d.mu.Lock()
	d.nextSeq = seq + 1
	d.segs = append(d.segs, s)
	d.cur = s
	d.mu.Unlock()
	d.trim() // the old current segment may be empty already
	return s, nil
}

// check makes sure the segment's path still leads to the open file. A file
// descriptor outlives its name: without this, appends to a spool whose
// directory was removed, moved or replaced (or whose segment was deleted
// by hand) would "succeed" into a file nobody will ever read. One stat per
// round, not per message.
func (s *segment) check(d *Dir) error {
	st, err := os.Stat(filepath.Join(d.path, dirQueue, segName(s.seq)))
	if err != nil {
		return err
	}
	if !os.SameFile(st, s.info) {
		return fmt.Errorf("%s was replaced", segName(s.seq))
	}
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
		if err := d.dirSync(filepath.Join(d.path, dirQueue)); err != nil {
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
