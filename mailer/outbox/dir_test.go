package outbox

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func msg(i int) *Message {
	return &Message{
		Ref: fmt.Sprintf("sub%d", i), From: "bounces@example.test",
		To:  []string{fmt.Sprintf("r%d@example.org", i)},
		Raw: []byte(fmt.Sprintf("Subject: %d\r\n\r\nbody %d\r\n", i, i)),
	}
}

func openDir(t *testing.T, path string, now *time.Time) *Dir {
	t.Helper()
	d, err := NewDir(DirConfig{Path: path, Now: func() time.Time { return *now }})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestDirLifecycle(t *testing.T) {
	ctx := context.Background()
	now := t0
	path := t.TempDir()
	d := openDir(t, path, &now)
	defer d.Close()

	a, b, c := msg(1), msg(2), msg(3)
	if err := d.Enqueue(ctx, a); err != nil {
		t.Fatal(err)
	}
	now = now.Add(time.Second)
	if err := d.Enqueue(ctx, b); err != nil {
		t.Fatal(err)
	}
	c.Enqueued = now.Add(time.Second) // a caller may stamp its own time
	if err := d.Enqueue(ctx, c); err != nil {
		t.Fatal(err)
	}
	s, _ := d.Stats(ctx, now.Add(time.Minute))
	if s.Depth != 3 || !s.Oldest.Equal(t0) || s.OldestAge != time.Minute+time.Second {
		t.Fatalf("stats = %+v", s)
	}

	got, err := d.Claim(ctx, now, 2)
	if err != nil || len(got) != 2 || got[0].ID != a.ID || got[1].ID != b.ID || string(got[0].Raw) != string(a.Raw) {
		t.Fatalf("claim = %v, %v", got, err)
	}
	// Claimed messages are not handed out twice.
	again, _ := d.Claim(ctx, now, 10)
	if len(again) != 1 || again[0].ID != c.ID {
		t.Fatalf("second claim = %v", again)
	}
	if s, _ := d.Stats(ctx, now); s.InFlight != 3 {
		t.Fatalf("in flight = %d", s.InFlight)
	}

	if err := d.Ack(ctx, got[0]); err != nil {
		t.Fatal(err)
	}
	got[1].Attempts, got[1].LastError = 1, "451 try later"
	if err := d.Retry(ctx, got[1], now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := d.Dead(ctx, again[0], "550 no such user"); err != nil {
		t.Fatal(err)
	}
	if due, _ := d.Claim(ctx, now.Add(time.Minute), 10); len(due) != 0 {
		t.Fatalf("retried message due early: %v", due)
	}
	due, _ := d.Claim(ctx, now.Add(time.Hour), 10)
	if len(due) != 1 || due[0].ID != b.ID || due[0].Attempts != 1 || due[0].LastError != "451 try later" {
		t.Fatalf("due after retry = %+v", due)
	}
	s, _ = d.Stats(ctx, now)
	if s.Depth != 1 || s.Dead != 1 {
		t.Fatalf("stats = %+v", s)
	}
	dl, err := d.DeadLetters()
	if err != nil || len(dl) != 1 || dl[0].LastError != "550 no such user" || string(dl[0].Raw) != string(c.Raw) {
		t.Fatalf("dead letters = %+v, %v", dl, err)
	}
}

func TestDirReopenRestoresQueue(t *testing.T) {
	ctx := context.Background()
	now := t0
	path := t.TempDir()
	d := openDir(t, path, &now)
	for i := range 5 {
		if err := d.Enqueue(ctx, msg(i)); err != nil {
			t.Fatal(err)
		}
	}
	// Claimed but never acked: the process "died" mid-delivery.
	if _, err := d.Claim(ctx, now, 3); err != nil {
		t.Fatal(err)
	}
	// A half-written file from a crash during Enqueue.
	os.WriteFile(filepath.Join(path, dirTmp, "w-123"), []byte("partial"), 0o600)
	d.Close()

	d = openDir(t, path, &now)
	defer d.Close()
	got, err := d.Claim(ctx, now, 10)
	if err != nil || len(got) != 5 {
		t.Fatalf("after reopen claimed %d, %v; want 5", len(got), err)
	}
	if left, _ := os.ReadDir(filepath.Join(path, dirTmp)); len(left) != 0 {
		t.Fatalf("tmp not cleaned: %v", left)
	}
}

func TestDirExclusive(t *testing.T) {
	now := t0
	path := t.TempDir()
	d := openDir(t, path, &now)
	defer d.Close()
	if _, err := NewDir(DirConfig{Path: path}); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("second open: %v", err)
	}
}

func TestDirRejectsInvalid(t *testing.T) {
	now := t0
	d := openDir(t, t.TempDir(), &now)
	defer d.Close()
	for name, m := range map[string]*Message{
		"no sender":     {To: []string{"a@b"}, Raw: []byte("x")},
		"no recipients": {From: "a@b", Raw: []byte("x")},
		"no body":       {From: "a@b", To: []string{"a@b"}},
		"path in ID":    {ID: "../x", From: "a@b", To: []string{"a@b"}, Raw: []byte("x")},
	} {
		t.Run(name, func(t *testing.T) {
			if err := d.Enqueue(context.Background(), m); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

func FuzzDecodeEntry(f *testing.F) {
	b, _ := encodeEntry(&Message{ID: "abc", From: "a@b", To: []string{"c@d"}, Raw: []byte("x\r\n")})
	f.Add(b)
	f.Add([]byte(spoolMagic + "{}\n"))
	f.Add([]byte(spoolMagic + `{"id":"a","from":"x","to":["y"],"attempts":-1}` + "\nz"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeEntry(b)
		if err != nil {
			return
		}
		if !validID(m.ID) || len(m.To) == 0 || len(m.Raw) == 0 {
			t.Fatalf("accepted invalid entry %+v", m)
		}
		// Round trip: what we accept we can write back identically.
		b2, err := encodeEntry(m)
		if err != nil {
			t.Fatal(err)
		}
		m2, err := decodeEntry(b2)
		if err != nil || m2.ID != m.ID || string(m2.Raw) != string(m.Raw) {
			t.Fatalf("round trip: %v", err)
		}
	})
}

// Acks, retries and reopen replay the log: superseded records and acked
// messages stay gone, and fully used segments are deleted.
func TestDirLogReplayAndSegmentDeletion(t *testing.T) {
	ctx := context.Background()
	now := t0
	path := t.TempDir()
	// A tiny segment size: every append starts a new segment.
	d, err := NewDir(DirConfig{Path: path, Now: func() time.Time { return now }, SegmentSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for i := range 6 {
		m := msg(i)
		if err := d.Enqueue(ctx, m); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, m.ID)
	}
	got, _ := d.Claim(ctx, now, 6)
	if len(got) != 6 {
		t.Fatalf("claimed %d", len(got))
	}
	for i, m := range got {
		switch {
		case i < 3:
			if err := d.Ack(ctx, m); err != nil {
				t.Fatal(err)
			}
		case i == 3:
			m.Attempts = 2
			if err := d.Retry(ctx, m, now.Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
		case i == 4:
			if err := d.Dead(ctx, m, "550"); err != nil {
				t.Fatal(err)
			}
		} // 5 stays in flight: the process "dies"
	}
	segs, _ := filepath.Glob(filepath.Join(path, dirQueue, "*"+segExt))
	// Segments 1-3 (acked) are deleted; 4 (retried away) and 5 (dead) go
	// only once every older one is gone, but 6 holds the in-flight message.
	if len(segs) > 7 {
		t.Fatalf("%d segments left: %v", len(segs), segs)
	}
	if _, err := os.Stat(filepath.Join(path, dirQueue, segName(1))); !os.IsNotExist(err) {
		t.Fatalf("segment 1, all acked, still there: %v", err)
	}
	d.Close()

	d = openDir(t, path, &now)
	defer d.Close()
	if s, _ := d.Stats(ctx, now); s.Depth != 2 || s.Dead != 1 {
		t.Fatalf("after reopen stats = %+v, want the retried and the in-flight message", s)
	}
	due, _ := d.Claim(ctx, now.Add(time.Hour), 10)
	if len(due) != 2 || due[0].ID != ids[5] || due[1].ID != ids[3] || due[1].Attempts != 2 {
		t.Fatalf("after reopen claimed %+v", due)
	}
	for _, m := range due {
		if err := d.Ack(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	// Everything is done: an empty queue leaves an empty queue/, once the
	// acks' round (which Ack does not wait for) has run.
	waitFor(t, func() bool {
		segs, _ = filepath.Glob(filepath.Join(path, dirQueue, "*"+segExt))
		return len(segs) == 0
	})
}

// A crash during a write leaves a torn record at the end of the segment:
// it was never acknowledged, and reopening keeps every record before it.
// A damaged record in the middle is skipped (a copy kept for a human), and
// the records after it are still read.
func TestDirLogTornAndDamagedRecords(t *testing.T) {
	ctx := context.Background()
	now := t0
	for _, tc := range []struct {
		name    string
		damage  func(b []byte, offs []int) []byte
		want    []int // messages left
		corrupt bool  // a copy in dead/
	}{
		{"torn tail", func(b []byte, offs []int) []byte { return b[:len(b)-5] }, []int{0, 1}, false},
		{"garbage after the last record", func(b []byte, offs []int) []byte { return append(b, "formguard-outb"...) }, []int{0, 1, 2}, false},
		{"payload damaged in the middle", func(b []byte, offs []int) []byte {
			b[offs[1]+len(b[offs[1]:offs[2]])-3] ^= 0xff // inside message 1's raw
			return b
		}, []int{0, 2}, true},
		{"header damaged in the middle", func(b []byte, offs []int) []byte {
			b[offs[1]+3] = 'X' // message 1's magic
			return b
		}, []int{0}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := t.TempDir()
			d := openDir(t, path, &now)
			var ids []string
			var offs []int
			for i := range 3 {
				m := msg(i)
				if err := d.Enqueue(ctx, m); err != nil {
					t.Fatal(err)
				}
				ids = append(ids, m.ID)
			}
			d.Close()
			seg := filepath.Join(path, dirQueue, segName(1))
			b, err := os.ReadFile(seg)
			if err != nil {
				t.Fatal(err)
			}
			// Where each record starts (the raw messages hold no magic).
			for i := 0; i < len(b); {
				j := strings.Index(string(b[i:]), segMagic)
				if j < 0 {
					break
				}
				offs = append(offs, i+j)
				i += j + 1
			}
			if len(offs) != 3 {
				t.Fatalf("found %d records", len(offs))
			}
			offs = append(offs, len(b))
			if err := os.WriteFile(seg, tc.damage(b, offs), 0o600); err != nil {
				t.Fatal(err)
			}
			d = openDir(t, path, &now)
			defer d.Close()
			got, _ := d.Claim(ctx, now, 10)
			var left []int
			for _, m := range got {
				left = append(left, slices.Index(ids, m.ID))
			}
			slices.Sort(left) // same enqueue time: the order is by ID
			if !slices.Equal(left, tc.want) {
				t.Fatalf("messages left %v, want %v", left, tc.want)
			}
			_, err = os.Stat(filepath.Join(path, dirDead, strings.TrimSuffix(segName(1), segExt)+".corrupt"))
			if tc.corrupt != (err == nil) {
				t.Fatalf("copy of the damaged segment in dead/: %v, want %v", err == nil, tc.corrupt)
			}
			// New writes go to a new segment, never after damage.
			if err := d.Enqueue(ctx, msg(9)); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(filepath.Join(path, dirQueue, segName(2))); err != nil {
				t.Fatalf("no new segment: %v", err)
			}
		})
	}
}

func FuzzDecodeRecord(f *testing.F) {
	b, _, _ := appendMessageRecord(nil, &Message{ID: "abc", From: "a@b", To: []string{"c@d"}, Raw: []byte("x\r\n")})
	f.Add(b)
	f.Add(appendDoneRecord(nil, "abc"))
	f.Add([]byte(segMagic + "m 3 00000000\n{}\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, n, err := decodeRecord(b, 0)
		if err != nil {
			return
		}
		if n > len(b) {
			t.Fatalf("record length %d beyond %d bytes", n, len(b))
		}
		switch r.kind {
		case recDone:
			if !validID(r.id) {
				t.Fatalf("accepted done record for %q", r.id)
			}
		case recMessage:
			m := r.msg
			if !validID(m.ID) || len(m.To) == 0 || len(m.Raw) == 0 || string(b[r.rawOff:r.rawOff+len(m.Raw)]) != string(m.Raw) {
				t.Fatalf("accepted invalid record %+v", m)
			}
			// Round trip: what we accept we can write back and read again.
			b2, off, err := appendMessageRecord(nil, m)
			if err != nil {
				t.Fatal(err)
			}
			r2, _, err := decodeRecord(b2, 0)
			if err != nil || r2.msg.ID != m.ID || string(r2.msg.Raw) != string(m.Raw) || r2.rawOff != off {
				t.Fatalf("round trip: %v", err)
			}
		default:
			t.Fatalf("kind %q", r.kind)
		}
	})
}

// A file descriptor outlives its name: when the spool directory is moved
// away and replaced, Enqueue must fail rather than append to a file nobody
// will read, and work again once the directory is back. A segment deleted
// by hand is replaced by a new one.
func TestDirEnqueueFailsWhenSpoolReplaced(t *testing.T) {
	ctx := context.Background()
	now := t0
	root := t.TempDir()
	path := filepath.Join(root, "outbox")
	d := openDir(t, path, &now)
	defer d.Close()
	if err := d.Enqueue(ctx, msg(1)); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path, path+".moved"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("not a directory\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := d.Enqueue(ctx, msg(2)); err == nil {
		t.Fatal("Enqueue succeeded into a spool whose directory was replaced")
	}
	os.Remove(path)
	if err := os.Rename(path+".moved", path); err != nil {
		t.Fatal(err)
	}
	if err := d.Enqueue(ctx, msg(3)); err != nil {
		t.Fatalf("after repair: %v", err)
	}
	segs, _ := filepath.Glob(filepath.Join(path, dirQueue, "*"+segExt))
	for _, s := range segs {
		os.Remove(s)
	}
	if err := d.Enqueue(ctx, msg(4)); err != nil {
		t.Fatalf("after the segment was deleted: %v", err)
	}
	d.Close()
	d = openDir(t, path, &now)
	defer d.Close()
	got, _ := d.Claim(ctx, now, 10)
	if len(got) != 1 || got[0].Ref != "sub4" {
		t.Fatalf("after reopen: %+v, want only the message written after the deletion", got)
	}
}
