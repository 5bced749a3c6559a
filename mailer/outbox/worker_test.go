package outbox

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"
)

type tempErr struct{ temp bool }

func (e tempErr) Error() string {
	if e.temp {
		return "451 try again later"
	}
	return "550 no such user"
}
func (e tempErr) Temporary() bool { return e.temp }

func TestWorkerOutcomes(t *testing.T) {
	ctx := context.Background()
	now := t0
	d := openDir(t, t.TempDir(), &now)
	defer d.Close()

	// Per-recipient scripted answers from the "relay".
	script := map[string][]error{
		"r1@example.org": {nil},
		"r2@example.org": {tempErr{true}, tempErr{true}, nil},
		"r3@example.org": {tempErr{false}},
		"r4@example.org": {errors.New("connection refused")},
	}
	var mu sync.Mutex
	sent := map[string]int{}
	var results []Result
	w, err := NewWorker(WorkerConfig{
		Queue: d, BaseDelay: time.Minute, MaxDelay: time.Hour, MaxAge: 2 * time.Hour,
		Now:    func() time.Time { return now },
		Jitter: func() float64 { return 0.5 },
		Handler: func(ctx context.Context, m *Message) error {
			mu.Lock()
			defer mu.Unlock()
			s := script[m.To[0]]
			var err error
			if len(s) > 0 {
				err, script[m.To[0]] = s[0], s[1:]
			} else {
				err = errors.New("connection refused")
			}
			if err == nil {
				sent[m.To[0]]++
			}
			return err
		},
		OnResult: func(r Result) { results = append(results, r) },
		Logger:   slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 4; i++ {
		if err := d.Enqueue(ctx, msg(i)); err != nil {
			t.Fatal(err)
		}
	}
	if n := w.Process(ctx); n != 4 {
		t.Fatalf("first pass handled %d", n)
	}
	// r2 failed once: due after jitter 0.5 × 1 min.
	now = now.Add(29 * time.Second)
	if n := w.Process(ctx); n != 0 {
		t.Fatalf("handled %d before backoff elapsed", n)
	}
	now = now.Add(time.Second)
	if n := w.Process(ctx); n != 2 { // r2 and r4
		t.Fatalf("second pass handled %d", n)
	}
	// Second failure: window 2 min, jitter 0.5 → 1 min.
	now = now.Add(time.Minute)
	w.Process(ctx)
	// r4 keeps failing until MaxAge.
	for range 20 {
		now = now.Add(time.Hour)
		w.Process(ctx)
	}
	if sent["r1@example.org"] != 1 || sent["r2@example.org"] != 1 || sent["r3@example.org"] != 0 {
		t.Fatalf("sent = %v", sent)
	}
	dl, _ := d.DeadLetters()
	reasons := map[string]string{}
	for _, m := range dl {
		reasons[m.To[0]] = m.LastError
	}
	if reasons["r3@example.org"] != "550 no such user" {
		t.Errorf("r3 dead reason = %q", reasons["r3@example.org"])
	}
	if r := reasons["r4@example.org"]; r == "" {
		t.Errorf("r4 not dead-lettered after MaxAge: %v", reasons)
	}
	if s, _ := d.Stats(ctx, now); s.Depth != 0 || s.Dead != 2 {
		t.Errorf("stats = %+v", s)
	}
	var outcomes = map[Outcome]int{}
	for _, r := range results {
		outcomes[r.Outcome]++
	}
	if outcomes[Delivered] != 2 || outcomes[DeadLettered] != 2 {
		t.Errorf("outcomes = %v", outcomes)
	}
}

func TestBackoff(t *testing.T) {
	w, err := NewWorker(WorkerConfig{Queue: &Dir{}, Handler: func(context.Context, *Message) error { return nil },
		BaseDelay: time.Second, MaxDelay: time.Minute, Jitter: func() float64 { return 0.999999 }})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		n    int
		max  time.Duration
	}{
		{"first retry within base", 1, time.Second},
		{"doubles", 3, 4 * time.Second},
		{"capped", 10, time.Minute},
		{"huge attempt count stays capped", 1000, time.Minute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := w.Backoff(tc.n)
			if d > tc.max || d < tc.max*9/10 {
				t.Fatalf("Backoff(%d) = %v, want just under %v", tc.n, d, tc.max)
			}
		})
	}
}

func TestNewWorkerValidates(t *testing.T) {
	h := func(context.Context, *Message) error { return nil }
	for name, cfg := range map[string]WorkerConfig{
		"no queue":       {Handler: h},
		"no handler":     {Queue: &Dir{}},
		"negative":       {Queue: &Dir{}, Handler: h, BaseDelay: -1},
		"max below base": {Queue: &Dir{}, Handler: h, BaseDelay: time.Hour, MaxDelay: time.Minute},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := NewWorker(cfg); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

func TestBackoffFloor(t *testing.T) {
	w, _ := NewWorker(WorkerConfig{Queue: &Dir{}, Handler: func(context.Context, *Message) error { return nil },
		BaseDelay: time.Minute, Jitter: func() float64 { return 0 }})
	if d := w.Backoff(1); d != MinRetryDelay {
		t.Fatalf("zero draw gave %v, want the %v floor", d, MinRetryDelay)
	}
	w, _ = NewWorker(WorkerConfig{Queue: &Dir{}, Handler: func(context.Context, *Message) error { return nil },
		BaseDelay: time.Millisecond, Jitter: func() float64 { return 0 }})
	if d := w.Backoff(1); d != time.Millisecond {
		t.Fatalf("floor above BaseDelay: %v", d)
	}
}
