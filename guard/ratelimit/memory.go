package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Memory store defaults.
const (
	// DefaultMaxKeys caps the keys (buckets plus offence records) a Memory
	// store holds. A key costs 60-70 bytes of live heap (BenchmarkMemoryFull:
	// 68 a bucket, 60 an offence record), and a Go process holds up to about
	// twice its live heap, so a full store of 1<<18 keys costs some 17 MB
	// live and 30-40 MB resident. A flood from distinct addresses fills any
	// cap, and past it the store evicts (see MemoryConfig.MaxKeys) instead
	// of growing, so a full store must be cheap: four times as many keys
	// took a service from 18 to 172 MB resident under such a flood. 1<<18
	// keys still hold the budgets of some 50,000 visitors at once (five
	// buckets each), far beyond one site's form traffic.
	DefaultMaxKeys = 1 << 18
	// DefaultSweepInterval is how often the background sweeper drops idle keys.
	DefaultSweepInterval = time.Minute
	// maxShards is the number of independently locked key maps of a large
	// store. A power of two so the shard is a shift of the key's hash.
	maxShards = 64
	// minShardKeys is the smallest per-shard share of MaxKeys; smaller
	// stores use fewer shards so that the cap stays exact.
	minShardKeys = 1024
	// inlineSweepEvery rate-limits the synchronous sweep a full shard runs
	// before evicting, so a flood of new keys cannot turn every request
	// into a scan of a whole shard.
	inlineSweepEvery = time.Second
)

// ErrClosed is returned by Allow and Penalize after Close.
var ErrClosed = errors.New("ratelimit: store closed")

// ErrBadMemoryConfig is wrapped by every NewMemory validation error.
var ErrBadMemoryConfig = errors.New("ratelimit: bad memory config")

// MemoryConfig configures NewMemory. The zero value is a working store.
type MemoryConfig struct {
	// MaxKeys caps the number of keys held. 0 means DefaultMaxKeys. The
	// cap is split evenly among the shards (up to 64, each at least 1024
	// keys). A new key in a full shard evicts the least valuable of a few
	// sampled keys (see evictOne): a full store degrades, forgetting a
	// little budget or offence history, and never refuses a decision.
	MaxKeys int
	// IdleTimeout keeps a key at least this long after its last admitted
	// event. 0 means a key is dropped as soon as its bucket is full again
	// (at most its limit's Period after the last event), which loses
	// nothing: a fresh bucket is also full. The sweep never drops a key
	// before its bucket is full, whatever IdleTimeout says; only eviction
	// from a full store does (see MaxKeys).
	IdleTimeout time.Duration
	// SweepInterval is how often the owned goroutine drops idle keys.
	// 0 means DefaultSweepInterval.
	SweepInterval time.Duration
	// Now is the clock. nil means the system clock (read monotonically).
	Now func() time.Time
	// Ban is the escalating-ban policy; the zero value is the default policy.
	Ban BanPolicy
}

// Memory is a sharded, bounded in-memory Store and Banner. Each (tier, key,
// limit) is a token bucket of Count tokens refilled at Count per Period,
// with golang.org/x/time/rate's arithmetic (see bucket).
//
// Allow is all-or-nothing: it locks the shards of every key involved in
// ascending shard order (so two decisions can never deadlock), checks every
// bucket at the same instant, and takes a token from each only when all of
// them have one. A refused request therefore consumes nothing. (Reserving
// on every limiter and cancelling on refusal would give the same result,
// but a reservation's Cancel cannot restore tokens exactly once other
// reservations followed; under the shard locks nothing can follow, so
// checking first is exact and allocation-free.)
//
// A Memory is safe for concurrent use. Its sweeper goroutine is stopped by
// Close.
type Memory struct {
	now     func() time.Time // MemoryConfig.Now; nil: the system clock, see nowNs
	base    time.Time        // system clock at NewMemory (wall and monotonic)
	baseNs  int64            // base in Unix ns
	maxKeys int64
	idle    int64 // IdleTimeout in ns
	ban     BanPolicy
	seed    maphash.Seed

	tierHash [6]uint64 // precomputed for the guard's tiers, in bucketID's order

	closed atomic.Bool
	shards []memShard
	shift  uint // shard = hash >> shift

	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

var (
	_ Store  = (*Memory)(nil)
	_ Banner = (*Memory)(nil)
)

type memShard struct {
	mu        sync.Mutex
	buckets   map[uint64]*bucket
	bans      map[uint64]*banState
	lastSweep int64
	n, max    int    // keys held, cap (MaxKeys split evenly)
	evicted   uint64 // keys evicted to make room

	peakBuckets, peakBans int      // largest map sizes since the last rebuild
	_                     [64]byte // keep neighbouring shard locks off one cache line
}

// NewMemory validates cfg and returns a running store.
func NewMemory(cfg MemoryConfig) (*Memory, error) {
	if cfg.MaxKeys < 0 {
		return nil, fmt.Errorf("%w: MaxKeys %d is negative", ErrBadMemoryConfig, cfg.MaxKeys)
	}
	if cfg.IdleTimeout < 0 {
		return nil, fmt.Errorf("%w: IdleTimeout %s is negative", ErrBadMemoryConfig, cfg.IdleTimeout)
	}
	if cfg.SweepInterval < 0 {
		return nil, fmt.Errorf("%w: SweepInterval %s is negative", ErrBadMemoryConfig, cfg.SweepInterval)
	}
	ban, err := cfg.Ban.WithDefaults()
	if err != nil {
		return nil, err
	}
	m := &Memory{
		maxKeys: int64(cfg.MaxKeys),
		idle:    int64(cfg.IdleTimeout),
		ban:     ban,
		seed:    maphash.MakeSeed(),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	m.now, m.base = cfg.Now, time.Now()
	m.baseNs = m.base.UnixNano()
	for i, t := range []string{TierIP, TierNetwork, TierSender, TierRecipient, TierForm, TierGlobal} {
		m.tierHash[i] = maphash.String(m.seed, t)
	}
	if m.maxKeys == 0 {
		m.maxKeys = DefaultMaxKeys
	}
	// Each shard owns an equal share of MaxKeys, so a full shard can make
	// room by sweeping itself, under the one lock it already holds.
	n, bits := 1, uint(0)
	for n < maxShards && m.maxKeys/int64(2*n) >= minShardKeys {
		n, bits = 2*n, bits+1
	}
	m.shards = make([]memShard, n)
	m.shift = 64 - bits
	for i := range m.shards {
		sh := &m.shards[i]
		sh.buckets = make(map[uint64]*bucket)
		sh.bans = make(map[uint64]*banState)
		sh.max = int(m.maxKeys) / n
		if i < int(m.maxKeys)%n {
			sh.max++
		}
	}
	every := cfg.SweepInterval
	if every == 0 {
		every = DefaultSweepInterval
	}
	go m.sweeper(every)
	return m, nil
}

// Close stops the sweeper. Allow and Penalize return ErrClosed afterwards.
func (m *Memory) Close() error {
	m.closeOnce.Do(func() {
		m.closed.Store(true)
		close(m.stop)
		<-m.done
	})
	return nil
}

// Len is the number of keys held (buckets plus ban records).
func (m *Memory) Len() int {
	n := 0
	for i := range m.shards {
		sh := &m.shards[i]
		sh.mu.Lock()
		n += sh.n
		sh.mu.Unlock()
	}
	return n
}

// Keys are 64-bit keyed hashes (maphash, random seed per store), so the
// maps hold no caller strings and an attacker who cannot learn the seed
// cannot aim collisions. A key's bucket and ban record live in the same
// shard (chosen by the key alone), so a TierIP rule costs one lock.

// keyHash is the keyed hash of a caller's key; it also identifies the
// key's ban record (bans live in their own map).
func (m *Memory) keyHash(key string) uint64 { return maphash.String(m.seed, key) }

// bucketID identifies a bucket by key, tier and limit: two forms limiting
// the same IP differently keep separate budgets.
func (m *Memory) bucketID(kh uint64, r *Rule) uint64 {
	var th uint64
	switch r.Tier {
	case TierIP:
		th = m.tierHash[0]
	case TierNetwork:
		th = m.tierHash[1]
	case TierSender:
		th = m.tierHash[2]
	case TierRecipient:
		th = m.tierHash[3]
	case TierForm:
		th = m.tierHash[4]
	case TierGlobal:
		th = m.tierHash[5]
	default:
		th = maphash.String(m.seed, r.Tier)
	}
	lh := fmix64(uint64(r.Limit.Count)*0x9e3779b97f4a7c15 ^ fmix64(uint64(r.Limit.Period)))
	return fmix64(kh ^ fmix64(th^lh))
}

// fmix64 is MurmurHash3's 64-bit finaliser: a bijective avalanche mix.
func fmix64(h uint64) uint64 {
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h
}

func (m *Memory) shardOf(kh uint64) int { return int(kh >> m.shift) }

// ruleState is Allow's scratch space for one rule.
type ruleState struct {
	key    uint64 // keyHash(rule.Key)
	id     uint64 // bucketID
	b      *bucket
	tokens float64
}

// Allow implements Store.
func (m *Memory) Allow(ctx context.Context, rules []Rule) (Decision, error) {
	if err := ctx.Err(); err != nil {
		return Decision{}, fmt.Errorf("ratelimit: %w", err)
	}
	if m.closed.Load() {
		return Decision{}, ErrClosed
	}
	if len(rules) == 1 {
		return m.allowOne(&rules[0]), nil
	}
	var stBuf [8]ruleState
	var lockBuf [8]int
	st := stBuf[:0]
	if len(rules) > len(stBuf) {
		st = make([]ruleState, 0, len(rules))
	}
	locks := lockBuf[:0]
	for i := range rules {
		r := &rules[i]
		var s ruleState
		if !r.Limit.IsZero() || r.Tier == TierIP {
			s.key = m.keyHash(r.Key)
			locks = append(locks, m.shardOf(s.key))
			if !r.Limit.IsZero() {
				s.id = m.bucketID(s.key, r)
			}
		}
		st = append(st, s)
	}
	// Lock in ascending shard order, each shard once: a global order means
	// no two decisions wait on each other in a cycle.
	if len(locks) > 1 {
		slices.Sort(locks)
		locks = slices.Compact(locks)
	}
	for _, i := range locks {
		m.shards[i].mu.Lock()
	}
	d := m.allowLocked(rules, st)
	for _, i := range locks {
		m.shards[i].mu.Unlock()
	}
	return d, nil
}

// allowOne is Allow for the common single-rule decision: one shard, no
// lock ordering, no scratch arrays, no defer. Same semantics as
// allowLocked (TestMemorySingleRuleFastPathMatchesGeneralPath).
func (m *Memory) allowOne(r *Rule) Decision {
	if r.Limit.IsZero() && r.Tier != TierIP {
		return Decision{Allowed: true, Rule: -1, Tightest: -1}
	}
	kh := m.keyHash(r.Key)
	var id uint64
	if !r.Limit.IsZero() {
		id = m.bucketID(kh, r)
	}
	sh := &m.shards[m.shardOf(kh)]
	sh.mu.Lock()
	t := m.nowNs()
	if r.Tier == TierIP && len(sh.bans) > 0 {
		if b, ok := sh.bans[kh]; ok {
			if left := b.remaining(t); left > 0 {
				sh.mu.Unlock()
				return Decision{Rule: 0, Tightest: 0, RetryAfter: left, Reset: left, Banned: true}
			}
		}
	}
	if r.Limit.IsZero() {
		sh.mu.Unlock()
		return Decision{Allowed: true, Rule: -1, Tightest: -1}
	}
	b, ok := sh.buckets[id]
	if !ok {
		b = m.newBucket(sh, id, r.Limit, t, nil)
	}
	tokens := b.tokensAt(t)
	if wait := waitFor(r.Limit, tokens); wait > 0 {
		sh.mu.Unlock()
		return Decision{Rule: 0, Tightest: 0, RetryAfter: wait,
			Remaining: remaining(r.Limit, tokens), Reset: resetFor(r.Limit, tokens)}
	}
	b.take(t, tokens)
	sh.mu.Unlock()
	return Decision{Allowed: true, Rule: -1, Tightest: 0,
		Remaining: remaining(r.Limit, tokens-1), Reset: resetFor(r.Limit, tokens-1)}
}

// allowLocked decides with every involved shard locked.
func (m *Memory) allowLocked(rules []Rule, st []ruleState) Decision {
	t := m.nowNs()
	if d, banned := m.banLocked(rules, st, t); banned {
		return d
	}

	// Find or create every bucket before touching any token.
	for i := range rules {
		r := &rules[i]
		if r.Limit.IsZero() {
			continue
		}
		sh := &m.shards[m.shardOf(st[i].key)]
		b, ok := sh.buckets[st[i].id]
		if !ok {
			b = m.newBucket(sh, st[i].id, r.Limit, t, st[:i])
		}
		st[i].b = b
	}

	// Check all rules at the same instant. A bucket listed twice (one
	// recipient named twice) must hold a token for each listing.
	d := Decision{Rule: -1, Tightest: -1}
	for i := range rules {
		if st[i].b == nil {
			continue
		}
		st[i].tokens = st[i].b.tokensAt(t)
		claimed := 0
		for j := range i {
			if st[j].b == st[i].b {
				claimed++
			}
		}
		if wait := waitFor(rules[i].Limit, st[i].tokens-float64(claimed)); wait > 0 {
			if d.Rule < 0 {
				d.Rule = i
			}
			d.RetryAfter = max(d.RetryAfter, wait)
		}
	}
	if d.Rule >= 0 {
		d.Tightest = d.Rule
		d.Remaining = remaining(rules[d.Rule].Limit, st[d.Rule].tokens)
		d.Reset = resetFor(rules[d.Rule].Limit, st[d.Rule].tokens)
		return d
	}

	return takeAllLocked(rules, st, t, d)
}

// banLocked reports the ban of the client's IP tier, if one is running.
func (m *Memory) banLocked(rules []Rule, st []ruleState, t int64) (Decision, bool) {
	for i := range rules {
		if rules[i].Tier != TierIP {
			continue
		}
		if b, ok := m.shards[m.shardOf(st[i].key)].bans[st[i].key]; ok {
			if left := b.remaining(t); left > 0 {
				return Decision{Rule: i, Tightest: i, RetryAfter: left, Reset: left, Banned: true}, true
			}
		}
	}
	return Decision{}, false
}

// takeAllLocked takes a token from every rule's bucket and reports the
// tightest rule.
func takeAllLocked(rules []Rule, st []ruleState, t int64, d Decision) Decision {
	// Every rule has a token: take one from each. A bucket listed twice
	// gives one token per listing, at the same instant.
	d.Allowed = true
	for i := range rules {
		if b := st[i].b; b != nil {
			b.take(t, b.tokensAt(t))
		}
	}
	for i := range rules {
		if st[i].b == nil {
			continue
		}
		// What is left is what was there less every listing of the bucket.
		left := st[i].tokens
		for j := range rules {
			if st[j].b == st[i].b {
				left--
			}
		}
		rem := remaining(rules[i].Limit, left)
		if d.Tightest >= 0 && rem > d.Remaining {
			continue // not tighter: its reset does not matter
		}
		reset := resetFor(rules[i].Limit, left)
		if d.Tightest < 0 || rem < d.Remaining || reset > d.Reset {
			d.Tightest, d.Remaining, d.Reset = i, rem, reset
		}
	}
	return d
}

// nowNs is the one clock read of a decision, in Unix ns. The system clock
// is wall time read once (at NewMemory), then advanced by the monotonic
// clock alone, which costs one clock read per call instead of time.Now's
// two and never jumps with wall-clock steps.
func (m *Memory) nowNs() int64 {
	if m.now != nil {
		return m.now().UnixNano()
	}
	return m.baseNs + int64(time.Since(m.base))
}
