// Package ratelimit defines the rate-limit Store used by the guard and a
// bounded in-memory implementation (token buckets with the arithmetic of
// golang.org/x/time/rate, kept under the store's shard locks).
//
// A request is decided by ONE call to Store.Allow with every rule (tier) that
// applies to it. The call either admits the request, consuming one token from
// every rule, or refuses it, consuming nothing. That all-or-nothing contract
// is what lets a refused request leave the budgets of the other tiers intact.
//
// # Algorithm
//
// Every (tier, key, limit) triple is a token bucket holding at most
// Limit.Count tokens and refilled at Count per Period (one token every
// Limit.Interval). A fresh key starts full, so a visitor may use the whole
// budget at once and then one event per interval. This is the same shape as
// GCRA, which the Redis store (package redisstore) runs on Redis's clock.
//
// # Bans
//
// Stores that implement Banner also keep escalating bans: BanPolicy.Threshold
// offences (failed CAPTCHA, honeypot hit, header injection) within
// BanPolicy.Window ban the key for BanPolicy.Base, each repeat ban doubles,
// capped at BanPolicy.Max. A banned TierIP key is refused by Allow without
// touching any budget.
//
// # Response headers
//
// SetHeaders writes Retry-After (RFC 9110 section 10.2.3) and the RateLimit
// and RateLimit-Policy fields of draft-ietf-httpapi-ratelimit-headers.
package ratelimit
