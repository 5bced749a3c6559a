package guard

import (
	"fmt"
	"testing"
	"time"
)

// TestEscalationIsBounded: one entry per client however often it is
// marked, never more than maxEscalatedKeys in all, and a full map makes
// room (expired entries first) without refusing a mark.
func TestEscalationIsBounded(t *testing.T) {
	var e escalation
	for range 1000 {
		e.mark("one", t0.Add(EscalateWindow))
	}
	if len(e.until) != 1 {
		t.Fatalf("%d entries for one client", len(e.until))
	}
	e = escalation{}
	for i := range maxEscalatedKeys {
		until := t0.Add(EscalateWindow)
		if i%2 == 0 {
			until = t0.Add(-time.Second) // expired by t0
		}
		e.mark(fmt.Sprint("k", i), until)
	}
	if len(e.until) != maxEscalatedKeys {
		t.Fatalf("%d entries, want %d", len(e.until), maxEscalatedKeys)
	}
	for i := range 10_000 {
		k := fmt.Sprint("new", i)
		e.mark(k, t0.Add(EscalateWindow))
		if len(e.until) > maxEscalatedKeys || e.factor(k, t0) != EscalateFactor {
			t.Fatalf("mark %d: %d entries, factor %d", i, len(e.until), e.factor(k, t0))
		}
	}
	if len(e.until) >= maxEscalatedKeys {
		t.Errorf("expired entries were not the ones dropped: map still full (%d)", len(e.until))
	}
}

// BenchmarkEscalationFull is a mark of a new client on a full map of live
// entries: it must cost the same small scan whatever the map's size.
func BenchmarkEscalationFull(b *testing.B) {
	var e escalation
	until := t0.Add(EscalateWindow)
	for i := range maxEscalatedKeys {
		e.mark(fmt.Sprint("k", i), until)
	}
	keys := make([]string, 1024)
	for i := range keys {
		keys[i] = fmt.Sprint("new", i)
	}
	i := 0
	for b.Loop() {
		e.mark(keys[i%len(keys)], until)
		i++
	}
}
