// Package redisstore is a ratelimit.Store and ratelimit.Banner on Redis,
// for guards running on more than one process or host.
//
// Every decision is ONE round trip: a single Lua script (run with EVALSHA,
// loaded again on NOSCRIPT) reads Redis's own clock (TIME), checks the ban
// of every TierIP key and every rule with GCRA, and either consumes one
// event from every rule or nothing. Clock skew between application hosts
// therefore cannot stretch or shrink a budget.
//
// # GCRA
//
// Each rule keeps one value, its theoretical arrival time (TAT): when its
// bucket would be empty again if no more events came. With emission
// interval T = Period/Count, an event at now is admitted when
// max(TAT, now) + T - Period <= now, and then TAT becomes max(TAT, now) + T.
// The key expires when TAT passes, because a missing key and an expired TAT
// both mean a full bucket. This is the token bucket of ratelimit.Memory
// expressed in one number per key.
//
// # Refusal cache
//
// A refusal tells the store more than one answer: the refusing bucket
// admits nothing before a known instant T, and no process's activity can
// bring T closer (GCRA only moves a TAT later, and a refusal consumes
// nothing); a ban's end only moves later too. So the store remembers, per
// bucket or ban key, refusals Redis gave (and bans Penalize set), and
// refuses later decisions naming that key locally, with no round trip,
// until min(T, remembered + RefusalHorizon). The horizon (default 5s) is
// the longest a manual reset or unban on Redis goes unseen; the cache holds
// at most RefusalMaxKeys entries and remembers no more past that. A local
// refusal carries the fields Redis gave for the same keys; when several
// rules of a call refuse and only some are remembered, Rule names the
// first remembered one and RetryAfter the longest remembered wait.
//
// # Redis Cluster
//
// All keys of one decision must live in one hash slot for the script to
// touch them atomically, and a decision usually includes the site-wide
// TierGlobal key that every decision shares. So every key carries the same
// hash tag, {Prefix}: the whole store lives in one slot on one primary.
// That is a deliberate trade: atomic all-or-nothing across tiers instead of
// spreading load. One decision costs the primary a few microseconds, so a
// single slot absorbs tens of thousands of form posts a second, far beyond
// any legitimate form traffic; sites that need more should run several
// prefixes (one per site or per form group) which land on different slots.
// See docs/ratelimit.md.
//
// # Failure
//
// Redis being slow or down never admits a request unchecked. With
// FailClosed (the zero value) Allow returns an error wrapping
// ErrUnavailable and the guard answers 503. With FailoverMemory the store
// decides from a local ratelimit.Memory whose limits are divided by
// FallbackFactor, and calls OnFallback(true); it probes Redis again at most
// every ProbeInterval on the request path and returns to Redis by itself,
// calling OnFallback(false). Only decisions mark the store down: a failed
// or slow offence write (Penalize, PenalizeAsync) is reported to its
// caller and never takes decisions down with it.
package redisstore
