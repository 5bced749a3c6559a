package ratelimit

import (
	"math"
	"time"
)

// A Memory stays within MaxKeys two ways. The sweep (every SweepInterval,
// and inline in a full shard) drops what is stale, which loses nothing.
// Past that, eviction: a flood from many addresses (a honeypot answered
// with a success, each hit an offence record) must not fill the store and
// lock every new visitor out, so a full shard forgets something rather
// than refuse a decision. What it forgets is chosen to lose least: a few sampled keys
// are ranked by what forgetting them gives up (bucket.loss, banState.loss)
// and the cheapest goes. So single offences and buckets nearly full again
// go first, and a ban in force goes only when everything sampled is one.
// Forgetting a bucket hands its key a fresh budget, forgetting offences
// lets the offender start its count again: a flood big enough to evict
// buys its senders a little budget, never anyone's unchecked admission.

func (m *Memory) sweeper(every time.Duration) {
	defer close(m.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-t.C:
			m.sweep(m.nowNs())
		}
	}
}

// Sweep drops every key that is idle at now (see MemoryConfig.IdleTimeout)
// and every ban record that no longer matters, and returns how many keys it
// dropped. The owned goroutine calls it every SweepInterval; tests call it
// directly with chosen instants.
func (m *Memory) Sweep(now time.Time) int { return m.sweep(now.UnixNano()) }

func (m *Memory) sweep(now int64) int {
	n := 0
	for i := range m.shards {
		sh := &m.shards[i]
		sh.mu.Lock()
		n += m.sweepShard(sh, now)
		sh.mu.Unlock()
	}
	return n
}

// sweepShard drops the stale keys of sh; the caller holds sh.mu.
func (m *Memory) sweepShard(sh *memShard, t int64) int {
	sh.lastSweep = t
	n := 0
	for h, b := range sh.buckets {
		if t-b.last >= m.idle && b.tokensAt(t) >= b.burst {
			delete(sh.buckets, h)
			n++
		}
	}
	for h, st := range sh.bans {
		if st.stale(m.ban, t) {
			delete(sh.bans, h)
			n++
		}
	}
	sh.n -= n
	// Go maps never give memory back; rebuild a map that has shrunk to a
	// quarter of its peak so an idle store really returns to small.
	if len(sh.buckets) < sh.peakBuckets/4 {
		sh.buckets = rebuild(sh.buckets)
		sh.peakBuckets = len(sh.buckets)
	}
	if len(sh.bans) < sh.peakBans/4 {
		sh.bans = rebuild(sh.bans)
		sh.peakBans = len(sh.bans)
	}
	return n
}

// rebuild copies m into a map sized for its current contents (maps.Clone
// would keep the old table's capacity).
func rebuild[V any](m map[uint64]V) map[uint64]V {
	out := make(map[uint64]V, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// evictSample is how many entries of each of a shard's two maps one
// eviction looks at. Go starts every map iteration at a random position,
// so the first few entries are a cheap random sample.
const evictSample = 5

// addKey claims room for one new key in sh (whose lock the caller holds):
// a full shard first sweeps itself (at most once per inlineSweepEvery),
// then evicts one key. held are the rules of the decision in progress
// whose buckets it has already found; they are never evicted. addKey
// reports false when there is no room and nothing but held buckets to
// evict (a shard smaller than one decision): the caller then decides with
// the new key without keeping it, as if it were evicted at once.
func (m *Memory) addKey(sh *memShard, now int64, held []ruleState) bool {
	if sh.n >= sh.max && now-sh.lastSweep >= int64(inlineSweepEvery) {
		m.sweepShard(sh, now)
	}
	if sh.n < sh.max {
		sh.n++
		return true
	}
	return m.evictOne(sh, now, held)
}

// newBucket adds a full bucket for l under id to sh (whose lock the
// caller holds) and returns it; see addKey for held.
func (m *Memory) newBucket(sh *memShard, id uint64, l Limit, now int64, held []ruleState) *bucket {
	b := newBucket(l)
	if m.addKey(sh, now, held) {
		sh.buckets[id] = b
		sh.peakBuckets = max(sh.peakBuckets, len(sh.buckets))
	}
	return b
}

// evictOne drops the sampled key of sh whose loss is least, leaving the
// key count unchanged for the caller's new key.
func (m *Memory) evictOne(sh *memShard, now int64, held []ruleState) bool {
	best := math.Inf(1)
	var victim uint64
	var isBan bool
	// Offence records first: on a tie they go before a bucket.
	seen := 0
	for h, st := range sh.bans {
		if l := st.loss(m.ban, now); l < best {
			best, victim, isBan = l, h, true
		}
		if seen++; seen == evictSample {
			break
		}
	}
	seen = 0
	for id, b := range sh.buckets {
		if isHeld(held, b) {
			continue
		}
		if l := b.loss(now); l < best {
			best, victim, isBan = l, id, false
		}
		if seen++; seen == evictSample {
			break
		}
	}
	if math.IsInf(best, 1) {
		return false
	}
	if isBan {
		delete(sh.bans, victim)
	} else {
		delete(sh.buckets, victim)
	}
	sh.evicted++
	return true
}

func isHeld(held []ruleState, b *bucket) bool {
	for i := range held {
		if held[i].b == b {
			return true
		}
	}
	return false
}

// Evictions is the number of keys evicted to make room since NewMemory:
// nonzero means the store was full and is forgetting budgets and offence
// history (see MemoryConfig.MaxKeys).
func (m *Memory) Evictions() uint64 {
	var n uint64
	for i := range m.shards {
		sh := &m.shards[i]
		sh.mu.Lock()
		n += sh.evicted
		sh.mu.Unlock()
	}
	return n
}
