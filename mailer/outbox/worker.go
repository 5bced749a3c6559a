package outbox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"
)

// Worker defaults.
const (
	DefaultConcurrency  = 4
	DefaultBaseDelay    = 30 * time.Second
	DefaultMaxDelay     = time.Hour
	DefaultMaxAge       = 72 * time.Hour // then the message is dead-lettered
	DefaultPollInterval = time.Second
	// MinRetryDelay is the shortest wait before a retry (or BaseDelay, if
	// shorter).
	MinRetryDelay = time.Second
	// DefaultOpTimeout bounds each queue operation and delivery attempt.
	DefaultOpTimeout = 2 * time.Minute
)

// Handler delivers one message. An error whose Temporary() method reports
// false is permanent (the message goes to the dead-letter area); any other
// error is retried with backoff.
type Handler func(ctx context.Context, m *Message) error

// Outcome is what the worker did with a message after one attempt.
type Outcome string

// Outcomes reported in Result.
const (
	Delivered    Outcome = "delivered"
	Retried      Outcome = "retry"
	DeadLettered Outcome = "dead"
)

// Result describes one delivery attempt, for metrics and logs.
type Result struct {
	Message  *Message // Raw is still set; do not retain it
	Outcome  Outcome
	Attempt  int           // 1 for the first attempt
	Err      error         // nil when delivered
	Next     time.Time     // when Retried: the next attempt
	Duration time.Duration // time spent in the Handler
	Age      time.Duration // since Enqueued
}

// WorkerConfig configures a Worker.
type WorkerConfig struct {
	Queue   Queue   // required
	Handler Handler // required
	// Concurrency is the number of delivery goroutines. Zero value:
	// DefaultConcurrency.
	Concurrency int
	// BaseDelay and MaxDelay shape the backoff: attempt n waits a uniformly
	// random time in [0, min(MaxDelay, BaseDelay·2^(n-1))] ("full jitter"),
	// but at least min(BaseDelay, MinRetryDelay), so instances that failed
	// together do not retry together. Zero values: DefaultBaseDelay,
	// DefaultMaxDelay.
	BaseDelay, MaxDelay time.Duration
	// MaxAge dead-letters a message still undelivered this long after it
	// was queued. Zero value: DefaultMaxAge.
	MaxAge time.Duration
	// PollInterval is how often an idle worker looks for due messages;
	// Wake makes it look at once. Zero value: DefaultPollInterval.
	PollInterval time.Duration
	// OpTimeout bounds each Handler call and queue operation. Zero value:
	// DefaultOpTimeout.
	OpTimeout time.Duration
	// Now is the clock for due times and ages. Zero value: time.Now.
	Now func() time.Time
	// Jitter returns a uniform random number in [0,1). Zero value:
	// math/rand/v2.Float64.
	Jitter func() float64
	// OnResult observes every attempt. Zero value: nothing.
	OnResult func(Result)
	// Logger receives one line per failed attempt and per queue error,
	// never the message content. Zero value: slog.Default().
	Logger *slog.Logger
}

// Worker delivers queued messages until Close.
type Worker struct {
	cfg  WorkerConfig
	wake chan struct{}

	mu      sync.Mutex
	started bool
	cancel  context.CancelFunc
	wg      sync.WaitGroup

	// unrecorded holds, by message ID, the outcomes the queue failed to
	// record (Redis down, disk error). Left alone, such a message would be
	// claimed again (directory spool: after a restart; Redis: after
	// ClaimIdle) and, if it had been delivered, delivered twice. So the
	// worker records them again before it claims anything else, and a
	// message claimed again while its delivery is unrecorded is recorded,
	// not sent. Bounded by the attempts in flight when the queue failed.
	umu        sync.Mutex
	unrecorded map[string]*unrecorded
}

// unrecorded is an attempt's outcome that still has to reach the queue.
type unrecorded struct {
	m       *Message
	outcome Outcome
	reason  string    // DeadLettered
	next    time.Time // Retried
}

// NewWorker validates cfg and returns a stopped Worker.
func NewWorker(cfg WorkerConfig) (*Worker, error) {
	switch {
	case cfg.Queue == nil:
		return nil, errors.New("outbox: WorkerConfig.Queue is required")
	case cfg.Handler == nil:
		return nil, errors.New("outbox: WorkerConfig.Handler is required")
	case cfg.Concurrency < 0, cfg.BaseDelay < 0, cfg.MaxDelay < 0, cfg.MaxAge < 0,
		cfg.PollInterval < 0, cfg.OpTimeout < 0:
		return nil, errors.New("outbox: WorkerConfig durations and Concurrency must not be negative")
	}
	if cfg.Concurrency == 0 {
		cfg.Concurrency = DefaultConcurrency
	}
	if cfg.BaseDelay == 0 {
		cfg.BaseDelay = DefaultBaseDelay
	}
	if cfg.MaxDelay == 0 {
		cfg.MaxDelay = DefaultMaxDelay
	}
	if cfg.MaxDelay < cfg.BaseDelay {
		return nil, errors.New("outbox: WorkerConfig.MaxDelay is shorter than BaseDelay")
	}
	if cfg.MaxAge == 0 {
		cfg.MaxAge = DefaultMaxAge
	}
	if cfg.PollInterval == 0 {
		cfg.PollInterval = DefaultPollInterval
	}
	if cfg.OpTimeout == 0 {
		cfg.OpTimeout = DefaultOpTimeout
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Jitter == nil {
		cfg.Jitter = rand.Float64
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Worker{cfg: cfg, wake: make(chan struct{}, 1), unrecorded: map[string]*unrecorded{}}, nil
}

// Start launches the delivery goroutines; they run until ctx ends or Close.
// Calling Start twice is a no-op.
func (w *Worker) Start(ctx context.Context) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.started {
		return
	}
	w.started = true
	ctx, w.cancel = context.WithCancel(ctx)
	for range w.cfg.Concurrency {
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			w.loop(ctx)
		}()
	}
}

// Wake tells an idle worker that something was queued.
func (w *Worker) Wake() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// Close stops the goroutines and waits for attempts in progress to be
// recorded. It does not close the Queue.
func (w *Worker) Close() error {
	w.mu.Lock()
	if w.cancel != nil {
		w.cancel()
	}
	w.mu.Unlock()
	w.wg.Wait()
	return nil
}

func (w *Worker) loop(ctx context.Context) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		n := w.runOnce(ctx)
		if ctx.Err() != nil {
			return
		}
		if n > 0 {
			continue // more may be due
		}
		timer.Reset(w.cfg.PollInterval)
		select {
		case <-ctx.Done():
			return
		case <-w.wake:
		case <-timer.C:
		}
	}
}

// runOnce claims and handles one message; it returns how many it handled.
func (w *Worker) runOnce(ctx context.Context) int {
	w.recordAgain(ctx)
	cctx, cancel := context.WithTimeout(ctx, w.cfg.OpTimeout)
	msgs, err := w.cfg.Queue.Claim(cctx, w.cfg.Now(), 1)
	cancel()
	if err != nil {
		if ctx.Err() == nil {
			w.cfg.Logger.Warn("outbox: claim failed", "err", err)
		}
		return 0
	}
	for _, m := range msgs {
		w.handle(ctx, m)
	}
	return len(msgs)
}

// Process claims and handles every message due now, in the caller's
// goroutine, and returns how many it handled. It serves tools (a
// "flush the outbox" command) and deterministic tests. It stops after
// Depth+1 attempts, so a message that becomes due again at once cannot keep
// it busy.
func (w *Worker) Process(ctx context.Context) int {
	st, err := w.cfg.Queue.Stats(ctx, w.cfg.Now())
	if err != nil {
		return 0
	}
	total := 0
	for ctx.Err() == nil && total <= st.Depth {
		n := w.runOnce(ctx)
		if n == 0 {
			break
		}
		total += n
	}
	return total
}

func (w *Worker) handle(ctx context.Context, m *Message) {
	// The attempt itself must finish even if ctx is cancelled mid-way, so
	// that its outcome is recorded; it is bounded by OpTimeout instead.
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), w.cfg.OpTimeout)
	defer cancel()
	w.umu.Lock()
	u := w.unrecorded[m.ID]
	delete(w.unrecorded, m.ID)
	w.umu.Unlock()
	if u != nil && u.outcome == Delivered {
		// Claimed again before its delivery was recorded: record it (with
		// this claim's handle), never send it again.
		u.m = m
		if err := w.record(actx, u); err != nil {
			w.keep(u, err)
		}
		return
	}
	m.Attempts++
	start := w.cfg.Now()
	err := w.cfg.Handler(actx, m)
	now := w.cfg.Now()
	res := Result{Message: m, Attempt: m.Attempts, Err: err, Duration: now.Sub(start), Age: now.Sub(m.Enqueued)}
	u = &unrecorded{m: m}
	switch {
	case err == nil:
		u.outcome = Delivered
	case !isTemporary(err):
		u.outcome, u.reason = DeadLettered, err.Error()
	case now.Sub(m.Enqueued) >= w.cfg.MaxAge:
		u.outcome = DeadLettered
		u.reason = fmt.Sprintf("gave up after %d attempts over %s: %v",
			m.Attempts, now.Sub(m.Enqueued).Round(time.Second), err)
	default:
		u.outcome, u.next = Retried, now.Add(w.Backoff(m.Attempts))
		m.LastError = err.Error()
	}
	res.Outcome, res.Next = u.outcome, u.next
	if err != nil {
		w.cfg.Logger.Warn("outbox: delivery attempt failed", "id", m.ID, "ref", m.Ref,
			"attempt", m.Attempts, "outcome", string(res.Outcome), "err", err)
	}
	if qerr := w.record(actx, u); qerr != nil {
		w.keep(u, qerr)
	}
	if w.cfg.OnResult != nil {
		w.cfg.OnResult(res)
	}
}

// record writes u's outcome to the queue.
func (w *Worker) record(ctx context.Context, u *unrecorded) error {
	switch u.outcome {
	case Delivered:
		return w.cfg.Queue.Ack(ctx, u.m)
	case DeadLettered:
		return w.cfg.Queue.Dead(ctx, u.m, u.reason)
	default:
		return w.cfg.Queue.Retry(ctx, u.m, u.next)
	}
}

// keep remembers an outcome the queue failed to record, to record it
// again (recordAgain).
func (w *Worker) keep(u *unrecorded, err error) {
	w.cfg.Logger.Error("outbox: recording outcome failed; it is recorded again before anything else is claimed",
		"id", u.m.ID, "ref", u.m.Ref, "outcome", string(u.outcome), "err", err)
	w.umu.Lock()
	w.unrecorded[u.m.ID] = u
	w.umu.Unlock()
}

// recordAgain retries the outcomes the queue failed to record, one at a
// time, until one fails again (the queue is still unavailable). Outcomes
// still unrecorded when the worker stops are lost with the process: such a
// delivered message is sent again after a restart (the one duplicate
// window the outbox documents), as is one another instance claims first
// once ClaimIdle has passed.
func (w *Worker) recordAgain(ctx context.Context) {
	for ctx.Err() == nil {
		w.umu.Lock()
		var u *unrecorded
		for id, x := range w.unrecorded {
			u = x
			delete(w.unrecorded, id)
			break
		}
		w.umu.Unlock()
		if u == nil {
			return
		}
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), w.cfg.OpTimeout)
		err := w.record(rctx, u)
		cancel()
		if err != nil {
			w.umu.Lock()
			if _, again := w.unrecorded[u.m.ID]; !again {
				w.unrecorded[u.m.ID] = u
			}
			w.umu.Unlock()
			return
		}
		w.cfg.Logger.Info("outbox: outcome recorded after the queue recovered", "id", u.m.ID, "ref", u.m.Ref, "outcome", string(u.outcome))
	}
}

// Backoff returns the delay before attempt n+1 after n failures: full
// jitter over an exponentially growing, capped window.
func (w *Worker) Backoff(n int) time.Duration {
	window := w.cfg.MaxDelay
	if n >= 1 && n < 40 {
		if d := w.cfg.BaseDelay << (n - 1); d > 0 && d < window {
			window = d
		}
	}
	// A floor keeps a zero draw from making the message due at once, which
	// would spin a worker against a relay that is down.
	floor := min(w.cfg.BaseDelay, MinRetryDelay)
	return max(time.Duration(w.cfg.Jitter()*float64(window)), floor)
}

func isTemporary(err error) bool {
	var t interface{ Temporary() bool }
	if errors.As(err, &t) {
		return t.Temporary()
	}
	return true
}
