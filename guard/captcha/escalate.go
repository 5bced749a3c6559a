package captcha

import (
	"container/heap"
	"crypto/sha256"
	"fmt"
	"sync"
	"time"
)

// Escalator defaults.
const (
	// DefaultEscalatorEntries bounds the client keys an Escalator tracks.
	DefaultEscalatorEntries = 100_000
	// DefaultEscalatorWindow is how long offences count, from the first.
	DefaultEscalatorWindow = 15 * time.Minute
	// DefaultEscalatorMaxFactor caps the difficulty multiplier.
	DefaultEscalatorMaxFactor = 64
)

// EscalatorConfig configures an Escalator.
type EscalatorConfig struct {
	// MaxEntries bounds the tracked client keys. Zero value:
	// DefaultEscalatorEntries.
	MaxEntries int
	// Window is how long a client's offences count, from its first.
	// Zero value: DefaultEscalatorWindow.
	Window time.Duration
	// MaxFactor caps Factor. Zero value: DefaultEscalatorMaxFactor. (The
	// PoW also caps the result at its MaxNumberLimit.)
	MaxFactor int64
	// Now is the clock. Zero value: time.Now.
	Now func() time.Time
}

// Escalator turns a client's recent offences (rate-limit refusals, failed
// CAPTCHAs) into a proof-of-work difficulty multiplier: Factor doubles with
// each offence inside the window, up to MaxFactor. Plug Factor into
// PoWConfig.Escalate and call Offence wherever the guard refuses a client.
//
// It is bounded like MemoryReplay (map plus expiry heap, expired entries
// evicted on every call). When full of unexpired entries it stops tracking
// new keys: those clients get the base difficulty, and the rate limits,
// which do not depend on this, still apply. Safe for concurrent use; no
// goroutine.
type Escalator struct {
	max    int
	window time.Duration
	cap    int64
	now    func() time.Time

	mu      sync.Mutex
	entries map[[sha256.Size]byte]*offences
	order   expiryHeap
}

type offences struct {
	n       int
	expires time.Time
}

// NewEscalator validates cfg and returns an Escalator.
func NewEscalator(cfg EscalatorConfig) (*Escalator, error) {
	if cfg.MaxEntries < 0 || cfg.Window < 0 || cfg.MaxFactor < 0 {
		return nil, fmt.Errorf("%w: escalator: MaxEntries, Window and MaxFactor must not be negative", ErrConfig)
	}
	e := &Escalator{max: cfg.MaxEntries, window: cfg.Window, cap: cfg.MaxFactor, now: cfg.Now,
		entries: map[[sha256.Size]byte]*offences{}}
	if e.max == 0 {
		e.max = DefaultEscalatorEntries
	}
	if e.window == 0 {
		e.window = DefaultEscalatorWindow
	}
	if e.cap == 0 {
		e.cap = DefaultEscalatorMaxFactor
	}
	if e.now == nil {
		e.now = time.Now
	}
	return e, nil
}

// Offence records one offence by clientKey.
func (e *Escalator) Offence(clientKey string) {
	h := sha256.Sum256([]byte(clientKey))
	now := e.now()
	e.mu.Lock()
	defer e.mu.Unlock()
	e.evictLocked(now)
	if o, ok := e.entries[h]; ok {
		o.n++
		return
	}
	if len(e.entries) >= e.max {
		return
	}
	o := &offences{n: 1, expires: now.Add(e.window)}
	e.entries[h] = o
	heap.Push(&e.order, heapEntry{key: h, expiry: o.expires})
}

// Factor returns 2^offences for clientKey, capped at MaxFactor; 1 for a
// client without recent offences. It has PoWConfig.Escalate's signature.
func (e *Escalator) Factor(clientKey string) int64 {
	h := sha256.Sum256([]byte(clientKey))
	now := e.now()
	e.mu.Lock()
	defer e.mu.Unlock()
	e.evictLocked(now)
	o, ok := e.entries[h]
	if !ok {
		return 1
	}
	f := int64(1)
	for i := 0; i < o.n && f < e.cap; i++ {
		f *= 2
	}
	return min(f, e.cap)
}

func (e *Escalator) evictLocked(now time.Time) {
	for len(e.order) > 0 && !e.order[0].expiry.After(now) {
		x := heap.Pop(&e.order).(heapEntry)
		delete(e.entries, x.key)
	}
}
