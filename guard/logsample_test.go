package guard

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

var t0 = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

// TestSamplerOverflowIsBounded: 100k distinct clients in one window get
// at most maxSampledKeys*sampleBurst lines plus one shared budget, and the
// sampler's map never grows past maxSampledKeys.
func TestSamplerOverflowIsBounded(t *testing.T) {
	var s logSampler
	written, perClient := 0, 10
	var due []summary
	for i := range 100_000 {
		client := fmt.Sprint("client-", i)
		for range perClient {
			ok, d := s.admit(client, "honeypot", slog.LevelInfo, t0.Add(time.Duration(i)*time.Microsecond), nil)
			due = append(due, d...)
			if ok {
				written++
			}
		}
	}
	if max := maxSampledKeys*sampleBurst + sampleBurst; written != max {
		t.Fatalf("%d lines written, want %d", written, max)
	}
	if len(s.seen) > maxSampledKeys || len(due) != 0 {
		t.Fatalf("%d keys tracked, %d summaries in the window", len(s.seen), len(due))
	}
	ok, due := s.admit("client-0", "honeypot", slog.LevelInfo, t0.Add(time.Hour), nil)
	var total uint64
	for _, d := range due {
		total += d.count
	}
	if !ok || total != uint64(100_000*perClient-written) || len(s.seen) != 1 {
		t.Fatalf("after the window: ok %v, summaries count %d lines, %d keys; want %d lines", ok, total, len(s.seen), 100_000*perClient-written)
	}
}

// TestSamplerWindows: a pair gets sampleBurst lines a window, its summary
// comes before its next line, and pairs are separate.
func TestSamplerWindows(t *testing.T) {
	var s logSampler
	now := t0
	admit := func(client, code string) (bool, []summary) { return s.admit(client, code, slog.LevelInfo, now, nil) }
	for i := range 20 {
		ok, due := admit("a", "honeypot")
		if ok != (i < sampleBurst) || len(due) != 0 {
			t.Fatalf("line %d: written %v, summaries %v", i, ok, due)
		}
	}
	if ok, _ := admit("a", "bad_origin"); !ok {
		t.Fatal("another code of the same client left out")
	}
	if ok, _ := admit("b", "honeypot"); !ok {
		t.Fatal("another client left out")
	}
	now = now.Add(sampleWindow - time.Nanosecond)
	if ok, _ := admit("a", "honeypot"); ok {
		t.Fatal("written before the window is over")
	}
	now = now.Add(time.Nanosecond)
	ok, due := admit("a", "honeypot")
	if !ok || len(due) != 1 || due[0].client != "a" || due[0].code != "honeypot" || due[0].count != 20-sampleBurst+1 {
		t.Fatalf("next window: written %v, summaries %+v", ok, due)
	}
}

func TestLogAttributesAreClipped(t *testing.T) {
	long := strings.Repeat("é", 300)
	c := clip(long)
	if len(c) > maxLogAttr+len("…") || !utf8.ValidString(c) || !strings.HasPrefix(long, strings.TrimSuffix(c, "…")) {
		t.Fatalf("clip gave %d bytes %q", len(c), c)
	}
	if clip("short") != "short" {
		t.Fatal("short text changed")
	}
	var b strings.Builder
	g := &Guard{log: slog.New(slog.NewJSONHandler(&b, nil)), now: func() time.Time { return t0 }}
	e := ErrMalformed.with(errors.New(strings.Repeat("x", 1<<20)))
	g.logDecision(t.Context(), strings.Repeat("f", 1000), "client", nil, e)
	if b.Len() > 600 || b.Len() == 0 {
		t.Fatalf("log line of %d bytes", b.Len())
	}
}
