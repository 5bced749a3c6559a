package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"
)

// Ban defaults. A legitimate visitor almost never fails a CAPTCHA five times
// in an hour or fills a honeypot at all, so these only bite on automation.
const (
	DefaultBanThreshold = 5                // offences within the window
	DefaultBanWindow    = time.Hour        // offences older than this are forgotten
	DefaultBanBase      = 15 * time.Minute // first ban
	DefaultBanMax       = 24 * time.Hour   // longest ban; also the clean stretch that resets escalation
	BanFactor           = 2                // each repeat ban lasts twice the previous
)

// ErrBadBanPolicy is wrapped by every BanPolicy validation error.
var ErrBadBanPolicy = errors.New("ratelimit: bad ban policy")

// BanPolicy configures the escalating bans of a Banner. The zero value is
// the default policy (bans on): Threshold offences within Window ban a key
// for Base; every further ban doubles (BanFactor) up to Max. Once a key has
// stayed clean for Max after its last ban ended, escalation starts again at
// Base.
type BanPolicy struct {
	Threshold int           // offences within Window that trigger a ban; 0 means DefaultBanThreshold
	Window    time.Duration // 0 means DefaultBanWindow
	Base      time.Duration // first ban; 0 means DefaultBanBase
	Max       time.Duration // cap on any ban; 0 means DefaultBanMax
}

// WithDefaults returns p with zero fields replaced by their defaults, or an
// error wrapping ErrBadBanPolicy when a field is negative or Base > Max.
func (p BanPolicy) WithDefaults() (BanPolicy, error) {
	if p.Threshold < 0 || p.Window < 0 || p.Base < 0 || p.Max < 0 {
		return p, fmt.Errorf("%w: negative field in %+v", ErrBadBanPolicy, p)
	}
	if p.Threshold == 0 {
		p.Threshold = DefaultBanThreshold
	}
	if p.Window == 0 {
		p.Window = DefaultBanWindow
	}
	if p.Base == 0 {
		p.Base = DefaultBanBase
	}
	if p.Max == 0 {
		p.Max = DefaultBanMax
	}
	if p.Base > p.Max {
		return p, fmt.Errorf("%w: Base %s exceeds Max %s", ErrBadBanPolicy, p.Base, p.Max)
	}
	return p, nil
}

// Duration is the length of the level-th ban (level 1 is the first):
// Base * BanFactor^(level-1), capped at Max.
func (p BanPolicy) Duration(level int) time.Duration {
	if level <= 0 {
		return 0
	}
	d := p.Base
	for i := 1; i < level && d < p.Max; i++ {
		d *= BanFactor
	}
	return min(d, p.Max)
}

// banState is one key's offence record, times in Unix nanoseconds. It is
// kept small (24 bytes) because a flood from many addresses leaves one per
// address.
type banState struct {
	windowStart int64 // first offence of the current window
	until       int64 // end of the ban in force (or of the last ban)
	count       int32 // offences in the current window (saturates)
	level       int32 // bans served in the current escalation
}

// offend records one offence at now and returns the ban in force after it.
func (b *banState) offend(p BanPolicy, now int64) time.Duration {
	if b.count > 0 && now-b.windowStart >= int64(p.Window) {
		b.count = 0
	}
	if b.count == 0 {
		b.windowStart = now
	}
	if b.count < math.MaxInt32 {
		b.count++
	}
	if b.level > 0 && now >= b.until+int64(p.Max) {
		b.level = 0 // clean for Max since the last ban: start over
	}
	if int(b.count) >= p.Threshold {
		if b.level < math.MaxInt32 {
			b.level++
		}
		b.count = 0
		b.until = max(b.until, now+int64(p.Duration(int(b.level))))
	}
	return b.remaining(now)
}

// remaining is how long the ban in force at now lasts, 0 when none.
func (b *banState) remaining(now int64) time.Duration {
	if now < b.until {
		return time.Duration(b.until - now)
	}
	return 0
}

// stale reports whether forgetting b at now loses nothing: no ban in force,
// escalation already reset, and no offence still inside the window.
func (b *banState) stale(p BanPolicy, now int64) bool {
	if now < b.until {
		return false
	}
	if b.level > 0 && now < b.until+int64(p.Max) {
		return false
	}
	return b.count == 0 || now-b.windowStart >= int64(p.Window)
}

// loss ranks what forgetting b at now gives up, in offences, for eviction
// (see evictOne): offences short of a ban count one each, an escalation
// history the offences its bans took, and a ban in force more than any
// bucket can hold, longer bans more.
func (b *banState) loss(p BanPolicy, now int64) float64 {
	switch {
	case now < b.until:
		return banInForceLoss + float64(b.until-now)/float64(time.Second)
	case b.level > 0 && now < b.until+int64(p.Max):
		return float64(p.Threshold) * float64(b.level)
	case b.count > 0 && now-b.windowStart < int64(p.Window):
		return float64(b.count)
	}
	return 0
}

// banInForceLoss is the eviction rank of any ban in force: above every
// bucket (a Count is at most a few billion) and offence history.
const banInForceLoss = 1e15

// Penalize implements Banner. A new offence record in a full store evicts
// the least valuable of a few sampled keys, as a new bucket does.
func (m *Memory) Penalize(ctx context.Context, key string) (time.Duration, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("ratelimit: %w", err)
	}
	if m.closed.Load() {
		return 0, ErrClosed
	}
	h := m.keyHash(key)
	sh := &m.shards[m.shardOf(h)]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	now := m.nowNs()
	b, ok := sh.bans[h]
	if !ok {
		b = &banState{}
		if m.addKey(sh, now, nil) {
			sh.bans[h] = b
			sh.peakBans = max(sh.peakBans, len(sh.bans))
		}
	}
	return b.offend(m.ban, now), nil
}
