package outbox

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
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
	// A damaged entry.
	os.WriteFile(filepath.Join(path, dirQueue, "zzz.msg"), []byte("garbage"), 0o600)
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
	if _, err := os.Stat(filepath.Join(path, dirDead, "zzz.corrupt")); err != nil {
		t.Fatalf("corrupt entry not quarantined: %v", err)
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

func TestDirSurvivesEntriesRemovedOrDamagedByHand(t *testing.T) {
	ctx := context.Background()
	now := t0
	path := t.TempDir()
	d := openDir(t, path, &now)
	defer d.Close()
	a, b, c := msg(1), msg(2), msg(3)
	for i, m := range []*Message{a, b, c} {
		m.Enqueued = t0.Add(time.Duration(i) * time.Second)
		if err := d.Enqueue(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	os.Remove(filepath.Join(path, dirQueue, a.ID+msgExt))
	os.WriteFile(filepath.Join(path, dirQueue, b.ID+msgExt), []byte("garbage"), 0o600)
	got, err := d.Claim(ctx, now, 10)
	if err != nil || len(got) != 1 || got[0].ID != c.ID {
		t.Fatalf("claim = %v, %v; want only the intact message", got, err)
	}
	if s, _ := d.Stats(ctx, now); s.Depth != 1 || s.Dead != 1 {
		t.Fatalf("stats = %+v", s)
	}
}
