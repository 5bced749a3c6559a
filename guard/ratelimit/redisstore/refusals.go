package redisstore

import (
	"hash/maphash"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/formguard/formguard/guard/ratelimit"
)

// Refusal cache defaults.
const (
	// DefaultRefusalHorizon is how long, at most, a remembered refusal is
	// trusted without asking Redis again: the delay before a manual reset
	// or unban on Redis is honoured by every process.
	DefaultRefusalHorizon = 5 * time.Second
	// DefaultRefusalMaxKeys caps the remembered refusals of one Store
	// (about 127 bytes of heap each, map included, so about 12 MiB full).
	DefaultRefusalMaxKeys = 100_000
	refusalShards         = 64
)

// refusals remembers buckets and bans that Redis reported empty (or in
// force) until a known instant, so that later decisions naming them are
// refused without a round trip. It is sound because GCRA is monotonic: a
// bucket whose TAT says it admits nothing before T can only be pushed later
// by other decisions, never earlier (a refusal consumes nothing, and a key
// expires only once its TAT has passed); a ban's end only ever moves later.
// Only an operator deleting keys can make Redis admit sooner, and the
// horizon bounds how long that goes unseen.
//
// Times are nanoseconds on the store's clock since the store was made
// (monotonic when the clock is time.Now), so a stepped wall clock cannot
// stretch an entry's trust.
type refusals struct {
	horizon    int64
	sweepEvery int64
	max        int64
	n          atomic.Int64 // entries over all shards
	fullSweep  atomic.Int64 // earliest time for the next sweep of every shard
	seed       maphash.Seed
	shards     [refusalShards]refusalShard
}

type refusalShard struct {
	mu      sync.RWMutex
	m       map[string]refusal
	sweepAt int64
	_       [40]byte // keep neighbouring shards' locks off one cache line
}

// refusal is one remembered answer.
type refusal struct {
	until int64 // when the bucket admits one event again, or the ban ends
	reset int64 // when the bucket is full again (its TAT); the ban's end for a ban
	trust int64 // min(until, remembered + horizon): the entry's expiry
}

func newRefusals(horizon time.Duration, maxKeys int) *refusals {
	r := &refusals{
		horizon:    int64(horizon),
		sweepEvery: max(int64(horizon)/4, int64(time.Millisecond)),
		max:        int64(maxKeys),
		seed:       maphash.MakeSeed(),
	}
	for i := range r.shards {
		r.shards[i].m = make(map[string]refusal)
	}
	return r
}

func (r *refusals) shard(key []byte) *refusalShard {
	return &r.shards[maphash.Bytes(r.seed, key)%refusalShards]
}

// get returns the entry for key if it is still trusted at now, and drops it
// if it is not. It does not allocate.
func (r *refusals) get(key []byte, now int64) (refusal, bool) {
	sh := r.shard(key)
	sh.mu.RLock()
	e, ok := sh.m[string(key)]
	sh.mu.RUnlock()
	if !ok {
		return refusal{}, false
	}
	if now < e.trust {
		return e, true
	}
	sh.mu.Lock()
	if e, ok := sh.m[string(key)]; ok && now >= e.trust {
		delete(sh.m, string(key))
		r.n.Add(-1)
	}
	sh.mu.Unlock()
	return refusal{}, false
}

// put remembers that key refuses until `until` (and is full again at
// reset), from now. It does nothing when until has passed or the cache is
// full of entries still trusted: the cache never grows past its bound.
func (r *refusals) put(key string, until, reset, now int64) {
	if until <= now {
		return
	}
	if r.n.Load() >= r.max {
		r.sweepAll(now)
	}
	e := refusal{until: until, reset: reset, trust: min(until, now+r.horizon)}
	sh := &r.shards[maphash.String(r.seed, key)%refusalShards]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if now >= sh.sweepAt {
		r.sweep(sh, now)
	}
	if _, ok := sh.m[key]; ok {
		sh.m[key] = e // newer news: Redis answered after the old entry was made
		return
	}
	if r.n.Load() >= r.max {
		return
	}
	r.n.Add(1)
	// The key is a substring of a decision's one key buffer: copy it so
	// the entry does not keep the whole buffer alive.
	sh.m[strings.Clone(key)] = e
}

// sweep drops sh's expired entries; sh.mu is held. It runs at most every
// sweepEvery per shard, on insertion, so its cost is spread over the round
// trips that produce entries.
func (r *refusals) sweep(sh *refusalShard, now int64) {
	for k, e := range sh.m {
		if now >= e.trust {
			delete(sh.m, k)
			r.n.Add(-1)
		}
	}
	sh.sweepAt = now + r.sweepEvery
}

// sweepAll sweeps every shard, one lock at a time, when the cache is full:
// the expired entries may sit in other shards than the one being added to.
// One caller at a time, at most every sweepEvery, does the work.
func (r *refusals) sweepAll(now int64) {
	at := r.fullSweep.Load()
	if now < at || !r.fullSweep.CompareAndSwap(at, now+r.sweepEvery) {
		return
	}
	for i := range r.shards {
		sh := &r.shards[i]
		sh.mu.Lock()
		r.sweep(sh, now)
		sh.mu.Unlock()
	}
}

// len is the number of entries, expired or not, for tests.
func (r *refusals) len() int { return int(r.n.Load()) }

// clock is the refusal cache's time: ns on the store's clock since New.
func (s *Store) clock() int64 { return int64(s.now().Sub(s.epoch)) }

// cachedRefusal answers c's decision from the cache when one of its keys
// is remembered refused at now, with the fields Redis would give: a ban
// first (the script checks bans before buckets), else the first refusing
// rule, with RetryAfter the longest wait among the remembered buckets.
func (s *Store) cachedRefusal(c *call, now int64) (ratelimit.Decision, bool) {
	nb := len(c.idx)
	start := 0
	if nb > 0 {
		start = c.ends[nb-1]
	}
	for j, end := range c.ends[nb:] {
		if e, ok := s.refused.get(c.buf[start:end], now); ok {
			left := time.Duration(e.until - now)
			return ratelimit.Decision{Rule: c.bans[j], Tightest: c.bans[j], RetryAfter: left, Reset: left, Banned: true}, true
		}
		start = end
	}
	d := ratelimit.Decision{Rule: -1, Tightest: -1}
	start = 0
	for j, end := range c.ends[:nb] {
		if e, ok := s.refused.get(c.buf[start:end], now); ok {
			if d.Rule < 0 {
				d.Rule, d.Tightest, d.Reset = c.idx[j], c.idx[j], time.Duration(e.reset-now)
			}
			d.RetryAfter = max(d.RetryAfter, time.Duration(e.until-now))
		}
		start = end
	}
	return d, d.Rule >= 0
}

// remember caches what a refusal (v, already decoded without error) says:
// the ban in force, or every bucket of the decision that admits no event
// before some instant (not only the refusing one). sent is the clock
// before the call went out: Redis's now was no earlier, so instants
// measured from sent are no later than on Redis's clock. Each is taken one
// µs early as well, for the script rounding its times up to whole µs.
func (s *Store) remember(v any, c *call, all string, rules []ratelimit.Rule, sent int64) {
	rep := v.([]any)
	const us = int64(time.Microsecond)
	key := func(j int) string {
		start := 0
		if j > 0 {
			start = c.ends[j-1]
		}
		return all[start:c.ends[j]]
	}
	switch rep[0].(int64) {
	case 2:
		at, left := int(rep[1].(int64)), rep[2].(int64)
		for j, i := range c.bans {
			if i == at {
				end := sent + (left-1)*us
				s.refused.put(key(len(c.idx)+j), end, end, sent)
				return
			}
		}
	case 0:
		for j, i := range c.idx {
			// d: the bucket's TAT - now, as stored (a refusal changes
			// nothing). It admits one event once TAT + step - Period <= now.
			d := rep[3+j].(int64)
			l := rules[i].Limit
			period := float64(max(1, l.Period.Microseconds()))
			wait := float64(d-1) + period/float64(l.Count) - period
			if wait <= 0 {
				continue
			}
			s.refused.put(key(j), sent+int64(wait*1e3), sent+(d-1)*us, sent)
		}
	}
}
