package captcha

import (
	"container/heap"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"
)

// DefaultReplayEntries bounds a MemoryReplay created with maxEntries <= 0.
// At 100k entries the cache holds roughly 10 MB.
const DefaultReplayEntries = 100_000

// MinReplayTTL is the least time a MemoryReplay remembers a key, even one
// whose stated expiry has already passed, so no key is fresh twice in a
// row (the Redis cache applies the same floor).
const MinReplayTTL = time.Minute

// MemoryReplay is a bounded in-memory ReplayCache for a single instance.
//
// It keeps the SHA-256 of each key (so memory per entry is fixed and no
// token is ever stored) with its expiry, in a map plus a min-heap ordered
// by expiry. Every Use first drops entries that have expired. When the
// cache still holds maxEntries unexpired entries, a new key evicts the
// entry that expires soonest. That is a deliberate trade: an evicted token
// could be used a second time, but its holder still faces every rate limit
// and ban (the guard decides those before it records any token, so one
// client's writes here are bounded by its own limits), whereas refusing
// new tokens, as this cache once did, answered every visitor of every form
// 503 while a single client kept it full (issue 14). Availability for all
// beats perfect single use under a flood the limits exist to absorb; and
// the entries evicted first are the ones closest to being forgotten anyway.
//
// A MemoryReplay is safe for concurrent use. It starts no goroutine, so it
// has nothing to Close.
type MemoryReplay struct {
	now func() time.Time
	max int

	mu      sync.Mutex
	entries map[[sha256.Size]byte]time.Time
	order   expiryHeap
	evicted uint64 // unexpired entries evicted to make room
}

var _ ReplayCache = (*MemoryReplay)(nil)

// NewMemoryReplay returns a cache holding at most maxEntries keys
// (DefaultReplayEntries when maxEntries <= 0), judging expiry by now
// (time.Now when nil).
func NewMemoryReplay(maxEntries int, now func() time.Time) *MemoryReplay {
	if maxEntries <= 0 {
		maxEntries = DefaultReplayEntries
	}
	if now == nil {
		now = time.Now
	}
	return &MemoryReplay{
		now:     now,
		max:     maxEntries,
		entries: make(map[[sha256.Size]byte]time.Time),
	}
}

// Use implements ReplayCache. A key is remembered until expiry, and at
// least MinReplayTTL.
func (m *MemoryReplay) Use(ctx context.Context, key string, expiry time.Time) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	h := sha256.Sum256([]byte(key))
	now := m.now()

	m.mu.Lock()
	defer m.mu.Unlock()
	m.evictLocked(now)
	if _, used := m.entries[h]; used {
		return false, nil
	}
	if floor := now.Add(MinReplayTTL); expiry.Before(floor) {
		expiry = floor
	}
	for len(m.entries) >= m.max {
		e := heap.Pop(&m.order).(heapEntry)
		delete(m.entries, e.key)
		m.evicted++
	}
	m.entries[h] = expiry
	heap.Push(&m.order, heapEntry{key: h, expiry: expiry})
	return true, nil
}

// Len returns the number of unexpired entries.
func (m *MemoryReplay) Len() int {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.evictLocked(now)
	return len(m.entries)
}

// Evictions is the number of unexpired entries evicted to make room:
// nonzero means the cache was full and single use was given up for them.
func (m *MemoryReplay) Evictions() uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.evicted
}

func (m *MemoryReplay) evictLocked(now time.Time) {
	for len(m.order) > 0 && !m.order[0].expiry.After(now) {
		e := heap.Pop(&m.order).(heapEntry)
		delete(m.entries, e.key)
	}
}

type heapEntry struct {
	key    [sha256.Size]byte
	expiry time.Time
}

type expiryHeap []heapEntry

func (h expiryHeap) Len() int           { return len(h) }
func (h expiryHeap) Less(i, j int) bool { return h[i].expiry.Before(h[j].expiry) }
func (h expiryHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *expiryHeap) Push(x any)        { *h = append(*h, x.(heapEntry)) }
func (h *expiryHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}

// replayKey is the key a verifier records for a token: the token kind and
// the hex SHA-256 of the token, so no cache (memory or Redis) ever holds a
// usable token.
func replayKey(kind, token string) string {
	h := sha256.Sum256([]byte(token))
	return "fg:" + kind + ":" + hex.EncodeToString(h[:])
}

// useOnce records key in r and maps the answer to the package's errors.
func useOnce(ctx context.Context, r ReplayCache, key string, expiry time.Time) error {
	fresh, err := r.Use(ctx, key, expiry)
	if err != nil {
		if errors.Is(err, ErrUnavailable) {
			return err
		}
		return fmt.Errorf("%w: replay cache: %w", ErrUnavailable, err)
	}
	if !fresh {
		return ErrReplayed
	}
	return nil
}
