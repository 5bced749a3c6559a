package redisstore

import (
	"context"
	"crypto/sha1"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/formguard/formguard/guard/ratelimit"
)

// Defaults.
const (
	DefaultPrefix = "fg"
	// DefaultTimeout bounds one decision's round trip. Forms are not
	// latency critical, but a hung Redis must not hold requests: past this
	// the store fails closed or over, it does not retry.
	DefaultTimeout = 50 * time.Millisecond
	// DefaultFallbackFactor divides every limit while deciding locally:
	// each process of a fleet then admits at most 1/4 of the shared budget.
	DefaultFallbackFactor = 4
	// DefaultProbeInterval is how often, at most, a degraded store tries
	// Redis again (on the request path, one request at a time).
	DefaultProbeInterval = time.Second
	maxPrefixLen         = 64
)

// FailurePolicy says what Allow does when Redis cannot answer.
type FailurePolicy int

const (
	// FailClosed refuses every request with an error wrapping
	// ErrUnavailable while Redis is unreachable (the guard answers 503).
	FailClosed FailurePolicy = iota
	// FailoverMemory decides from a local in-memory store whose limits are
	// divided by Config.FallbackFactor until Redis answers again.
	FailoverMemory
)

func (p FailurePolicy) String() string {
	switch p {
	case FailClosed:
		return "fail-closed"
	case FailoverMemory:
		return "failover-memory"
	}
	return "FailurePolicy(" + strconv.Itoa(int(p)) + ")"
}

// Errors.
var (
	// ErrUnavailable wraps the cause when Redis could not decide and the
	// policy is FailClosed (or the fallback store failed too).
	ErrUnavailable = errors.New("redisstore: redis unavailable")
	// ErrBadConfig is wrapped by every New validation error.
	ErrBadConfig = errors.New("redisstore: bad config")
	// ErrBadReply means the script answered something unexpected.
	ErrBadReply = errors.New("redisstore: unexpected script reply")
)

// Config configures New. Only Client is required.
type Config struct {
	// Client is any go-redis client: *redis.Client, *redis.Ring (all keys
	// of a decision share a hash tag) or *redis.ClusterClient. It must set
	// ContextTimeoutEnabled (New checks) so Timeout bounds socket I/O, and
	// should set MaxRetries to -1: the store never retries on the hot path
	// (a retried EVALSHA whose first reply was lost would consume twice).
	Client redis.UniversalClient
	// Prefix starts every key and names the hash tag. "" means
	// DefaultPrefix. Letters, digits, '-', '_' and '.' only.
	Prefix string
	// Timeout bounds each Redis call. 0 means DefaultTimeout.
	Timeout time.Duration
	// Failure is the policy while Redis is unreachable; the zero value is
	// FailClosed.
	Failure FailurePolicy
	// FallbackFactor divides limits (rounding down, at least 1) under
	// FailoverMemory. 0 means DefaultFallbackFactor.
	FallbackFactor int
	// FallbackMaxKeys caps the fallback store's keys; 0 means
	// ratelimit.DefaultMaxKeys.
	FallbackMaxKeys int
	// ProbeInterval is the least time between two attempts to reach Redis
	// while degraded. 0 means DefaultProbeInterval.
	ProbeInterval time.Duration
	// OnFallback, when set, is called with true when the store stops
	// deciding on Redis (failing closed or over) and with false when Redis
	// answers again. It runs on the request path: keep it short.
	OnFallback func(active bool)
	// Ban is the escalating-ban policy; the zero value is the default.
	Ban ratelimit.BanPolicy
	// RefusalHorizon is how long, at most, the store answers a decision
	// from a refusal Redis gave earlier (a bucket empty until T, a ban in
	// force until T) without asking Redis again; entries are trusted until
	// min(T, remembered + RefusalHorizon). It is the longest a manual reset
	// or unban on Redis can go unseen by this process. 0 means
	// DefaultRefusalHorizon; negative turns the refusal cache off. See
	// docs/ratelimit.md.
	RefusalHorizon time.Duration
	// RefusalMaxKeys caps the refusals remembered; past it no more are
	// remembered until some expire. 0 means DefaultRefusalMaxKeys.
	RefusalMaxKeys int
	// Now is the clock for probe scheduling, the refusal cache and the
	// fallback store; the limits on Redis use Redis's clock. nil means
	// time.Now.
	Now func() time.Time
}

// Store is a Redis ratelimit.Store and ratelimit.Banner. It is safe for
// concurrent use and holds no lock across a round trip.
type Store struct {
	c          redis.UniversalClient
	base       string // "PREFIX:{PREFIX}:"
	prefix     string
	timeout    time.Duration
	failure    FailurePolicy
	factor     int
	probeEvery time.Duration
	onFallback func(bool)
	ban        ratelimit.BanPolicy
	banArgs    []any
	now        func() time.Time
	mem        *ratelimit.Memory // FailoverMemory only
	penMu      sync.Mutex
	pens       map[string]*penaltyLine // keys with a Penalize in flight
	refused    *refusals               // nil when RefusalHorizon < 0
	bgMu       sync.Mutex
	pending    map[string]*pendingOffences // keys with PenalizeAsync offences in flight
	npending   atomic.Int64                // offences in flight, all keys
	queue      []offence                   // offences waiting for a worker
	workers    int                         // penalty workers running
	dropped    atomic.Uint64               // offences PenalizeAsync dropped
	bg         sync.WaitGroup
	bgClosed   bool
	epoch      time.Time // origin of the refusal cache's clock

	allow, allowUnique, penalize script

	down      atomic.Bool
	nextProbe atomic.Int64 // Unix ns
	closeOnce sync.Once
}

var (
	_ ratelimit.Store  = (*Store)(nil)
	_ ratelimit.Banner = (*Store)(nil)

	_ ratelimit.AsyncBanner = (*Store)(nil)
)

// New validates cfg and returns a store. It does not need Redis to be up:
// the scripts are loaded on first use, and until Redis answers the failure
// policy applies.
func New(cfg Config) (*Store, error) {
	if cfg.Client == nil {
		return nil, fmt.Errorf("%w: Client is required", ErrBadConfig)
	}
	if !contextTimeouts(cfg.Client) {
		return nil, fmt.Errorf("%w: Client must set ContextTimeoutEnabled, or go-redis ignores the "+
			"per-call Timeout and a hung Redis holds requests for its socket timeouts", ErrBadConfig)
	}
	if cfg.Prefix == "" {
		cfg.Prefix = DefaultPrefix
	}
	if err := checkPrefix(cfg.Prefix); err != nil {
		return nil, err
	}
	switch {
	case cfg.Timeout < 0:
		return nil, fmt.Errorf("%w: Timeout %s is negative", ErrBadConfig, cfg.Timeout)
	case cfg.FallbackFactor < 0:
		return nil, fmt.Errorf("%w: FallbackFactor %d is negative", ErrBadConfig, cfg.FallbackFactor)
	case cfg.ProbeInterval < 0:
		return nil, fmt.Errorf("%w: ProbeInterval %s is negative", ErrBadConfig, cfg.ProbeInterval)
	case cfg.RefusalMaxKeys < 0:
		return nil, fmt.Errorf("%w: RefusalMaxKeys %d is negative", ErrBadConfig, cfg.RefusalMaxKeys)
	case cfg.Failure != FailClosed && cfg.Failure != FailoverMemory:
		return nil, fmt.Errorf("%w: unknown Failure %s", ErrBadConfig, cfg.Failure)
	}
	ban, err := cfg.Ban.WithDefaults()
	if err != nil {
		return nil, err
	}
	s := &Store{
		c:           cfg.Client,
		prefix:      cfg.Prefix,
		base:        cfg.Prefix + ":{" + cfg.Prefix + "}:",
		timeout:     cmp(cfg.Timeout, DefaultTimeout),
		failure:     cfg.Failure,
		factor:      cmp(cfg.FallbackFactor, DefaultFallbackFactor),
		probeEvery:  cmp(cfg.ProbeInterval, DefaultProbeInterval),
		onFallback:  cfg.OnFallback,
		ban:         ban,
		now:         cfg.Now,
		allow:       newScript(allowSrc),
		allowUnique: newScript(allowUniqueSrc),
		penalize:    newScript(penalizeSrc),
		pens:        make(map[string]*penaltyLine),
		pending:     make(map[string]*pendingOffences),
	}
	s.banArgs = []any{ban.Threshold, ban.Window.Microseconds(), ban.Base.Microseconds(), ban.Max.Microseconds()}
	if s.now == nil {
		s.now = time.Now
	}
	s.epoch = s.now()
	if cfg.RefusalHorizon >= 0 {
		s.refused = newRefusals(cmp(cfg.RefusalHorizon, DefaultRefusalHorizon), cmp(cfg.RefusalMaxKeys, DefaultRefusalMaxKeys))
	}
	if cfg.Failure == FailoverMemory {
		s.mem, err = ratelimit.NewMemory(ratelimit.MemoryConfig{MaxKeys: cfg.FallbackMaxKeys, Now: s.now, Ban: ban})
		if err != nil {
			return nil, err
		}
	}
	return s, nil
}

func cmp[T int | time.Duration](v, def T) T {
	if v == 0 {
		return def
	}
	return v
}

// contextTimeouts reports whether the client honours context deadlines on
// socket I/O. Clients of unknown types are trusted.
func contextTimeouts(c redis.UniversalClient) bool {
	switch c := c.(type) {
	case *redis.Client:
		return c.Options().ContextTimeoutEnabled
	case *redis.ClusterClient:
		return c.Options().ContextTimeoutEnabled
	case *redis.Ring:
		return c.Options().ContextTimeoutEnabled
	}
	return true
}

func checkPrefix(p string) error {
	if len(p) > maxPrefixLen {
		return fmt.Errorf("%w: Prefix longer than %d bytes", ErrBadConfig, maxPrefixLen)
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return fmt.Errorf("%w: Prefix %q: only letters, digits, '-', '_' and '.'", ErrBadConfig, p)
		}
	}
	return nil
}

// Close waits for the offences handed to PenalizeAsync to be recorded
// (each bounded by Timeout), then releases the fallback store. It does not
// close Client, which must stay open until Close returns.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.drainOffences()
		if s.mem != nil {
			_ = s.mem.Close()
		}
	})
	return nil
}

// Degraded reports whether the store is currently not deciding on Redis.
func (s *Store) Degraded() bool { return s.down.Load() }

// Allow implements ratelimit.Store in one EVALSHA.
func (s *Store) Allow(ctx context.Context, rules []ratelimit.Rule) (ratelimit.Decision, error) {
	if err := ctx.Err(); err != nil {
		return ratelimit.Decision{}, fmt.Errorf("redisstore: %w", err)
	}
	if !needsRedis(rules) {
		return ratelimit.Decision{Allowed: true, Rule: -1, Tightest: -1}, nil
	}
	if err := s.awaitOffences(ctx, rules); err != nil {
		return ratelimit.Decision{}, err
	}
	if !s.tryRedis() {
		return s.degradedAllow(ctx, rules, errors.New("waiting for the next probe"))
	}
	d, cached, err := s.allowRedis(ctx, rules)
	if cached { // refused from the refusal cache: says nothing about Redis
		return d, nil
	}
	if err != nil {
		if ctx.Err() != nil { // the caller gave up: says nothing about Redis
			return ratelimit.Decision{}, fmt.Errorf("redisstore: %w", ctx.Err())
		}
		s.markDown()
		return s.degradedAllow(ctx, rules, err)
	}
	s.markUp()
	return d, nil
}

// needsRedis reports whether any rule has a limit or may carry a ban; a
// decision with neither is admitted without a round trip.
func needsRedis(rules []ratelimit.Rule) bool {
	for i := range rules {
		if !rules[i].Limit.IsZero() || rules[i].Tier == ratelimit.TierIP {
			return true
		}
	}
	return false
}

// call is one decision's scratch space, pooled: the key and limit bytes,
// the key and argument slices handed to go-redis (which copies them into
// its own command) and the rule index of each bucket key.
type call struct {
	buf  []byte
	ends []int
	keys []string
	args []any
	idx  []int
	bans []int // rule index of each ban-until key
}

var calls = sync.Pool{New: func() any { return new(call) }}

// appendLimit appends l as the scripts read it (see allowHead): Period and
// the emission interval in µs, as little-endian doubles. Go and Lua divide
// the same doubles the same way (IEEE 754), so the interval is the one the
// script computed itself before it was sent.
func appendLimit(dst []byte, l ratelimit.Limit) []byte {
	period := float64(max(1, l.Period.Microseconds()))
	dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(period))
	return binary.LittleEndian.AppendUint64(dst, math.Float64bits(period/float64(l.Count)))
}

// allowRedis decides rules on Redis in one round trip, or, when cached is
// true, from the refusal cache without one.
func (s *Store) allowRedis(ctx context.Context, rules []ratelimit.Rule) (d ratelimit.Decision, cached bool, err error) {
	c := calls.Get().(*call)
	defer calls.Put(c)
	c.buf, c.ends, c.idx, c.args, c.bans = c.buf[:0], c.ends[:0], c.idx[:0], c.args[:0], c.bans[:0]
	// Every key, then the packed limits, is appended to one buffer and
	// becomes a substring of one string: one allocation for all of a
	// decision's keys and arguments.
	for i := range rules {
		r := &rules[i]
		if !r.Limit.IsZero() {
			c.buf = s.appendRuleKey(c.buf, r)
			c.ends = append(c.ends, len(c.buf))
			c.idx = append(c.idx, i)
		}
	}
	for i := range rules {
		if rules[i].Tier == ratelimit.TierIP {
			c.buf = s.appendBanUntilKey(c.buf, rules[i].Key)
			c.ends = append(c.ends, len(c.buf))
			c.bans = append(c.bans, i)
		}
	}
	var sent int64
	// A probe while degraded must reach Redis, so it skips the cache.
	useCache := s.refused != nil && !s.down.Load()
	if useCache {
		sent = s.clock()
		if d, ok := s.cachedRefusal(c, sent); ok {
			return d, true, nil
		}
	}
	keysEnd := len(c.buf)
	for _, i := range c.idx {
		c.buf = appendLimit(c.buf, rules[i].Limit)
	}
	all := string(c.buf)
	c.keys = c.keys[:0]
	start := 0
	for _, end := range c.ends {
		c.keys = append(c.keys, all[start:end])
		start = end
	}
	c.args = append(c.args, all[keysEnd:])
	for i := range rules {
		if rules[i].Tier == ratelimit.TierIP {
			c.args = append(c.args, i)
		}
	}
	sc := &s.allowUnique
	if repeats(c.keys[:len(c.idx)]) {
		sc = &s.allow
	}
	rctx, cancel := context.WithTimeout(ctx, s.timeout)
	v, err := sc.run(rctx, s.c, c.keys, c.args...)
	cancel()
	clear(c.args) // drop references to boxed values until the next use
	clear(c.keys)
	if err != nil {
		return ratelimit.Decision{}, false, err
	}
	d, err = decode(v, rules, c.idx)
	if err == nil && !d.Allowed && useCache {
		s.remember(v, c, all, rules, sent)
	}
	return d, false, err
}

// repeats reports whether any key is listed twice (a decision has a
// handful of keys, so comparing pairs beats building a set).
func repeats(keys []string) bool {
	for i := range keys {
		for j := range i {
			if keys[i] == keys[j] {
				return true
			}
		}
	}
	return false
}

// decode turns the script's reply into a Decision; idx maps the script's
// bucket positions back to indexes into rules.
func decode(v any, rules []ratelimit.Rule, idx []int) (ratelimit.Decision, error) {
	rep, ok := v.([]any)
	if !ok || len(rep) < 3 {
		return ratelimit.Decision{}, fmt.Errorf("%w: %v", ErrBadReply, v)
	}
	var stack [16]int64
	n := stack[:0]
	if len(rep) > len(stack) {
		n = make([]int64, 0, len(rep))
	}
	n = n[:len(rep)]
	for i, x := range rep {
		if n[i], ok = x.(int64); !ok {
			return ratelimit.Decision{}, fmt.Errorf("%w: %v", ErrBadReply, v)
		}
	}
	status, at, retry := n[0], n[1], time.Duration(n[2])*time.Microsecond
	if status == 2 { // banned: at is already a rule index
		if at < 0 || int(at) >= len(rules) {
			return ratelimit.Decision{}, fmt.Errorf("%w: ban index %d", ErrBadReply, at)
		}
		return ratelimit.Decision{Rule: int(at), Tightest: int(at), RetryAfter: retry, Reset: retry, Banned: true}, nil
	}
	ds := n[3:]
	if (status != 0 && status != 1) || len(ds) != len(idx) || (status == 0 && (at < 0 || int(at) >= len(idx))) {
		return ratelimit.Decision{}, fmt.Errorf("%w: %v", ErrBadReply, v)
	}
	// budget left on bucket i: whole emission intervals between its TAT
	// and one period from now.
	budget := func(i int) (int, time.Duration) {
		l := rules[idx[i]].Limit
		period := float64(max(1, l.Period.Microseconds()))
		d := float64(ds[i])
		rem := int(math.Floor((period-d)/(period/float64(l.Count)) + 1e-6))
		return max(0, min(rem, l.Count)), time.Duration(ds[i]) * time.Microsecond
	}
	d := ratelimit.Decision{Allowed: status == 1, Rule: -1, Tightest: -1, RetryAfter: retry}
	if status == 0 {
		d.Rule, d.Tightest = idx[at], idx[at]
		d.Remaining, d.Reset = budget(int(at))
		return d, nil
	}
	for i := range idx {
		rem, reset := budget(i)
		if d.Tightest < 0 || rem < d.Remaining || (rem == d.Remaining && reset > d.Reset) {
			d.Tightest, d.Remaining, d.Reset = idx[i], rem, reset
		}
	}
	return d, nil
}

// script runs one Lua source by digest, loading it on NOSCRIPT (a Redis
// restart or SCRIPT FLUSH) so the steady state is one EVALSHA per call.
type script struct {
	src, sha string
}

func newScript(src string) script {
	sum := sha1.Sum([]byte(src)) // Redis names scripts by SHA-1; not a security use
	return script{src: src, sha: hex.EncodeToString(sum[:])}
}

func (sc *script) run(ctx context.Context, c redis.UniversalClient, keys []string, args ...any) (any, error) {
	v, err := c.EvalSha(ctx, sc.sha, keys, args...).Result()
	if err != nil && isNoScript(err) {
		// EVAL both runs and caches the script for the next EVALSHA.
		v, err = c.Eval(ctx, sc.src, keys, args...).Result()
	}
	return v, err
}

func isNoScript(err error) bool {
	return err != nil && strings.HasPrefix(err.Error(), "NOSCRIPT")
}
