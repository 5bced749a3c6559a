package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Tier names used by the guard. Stores treat them as opaque labels; they
// appear in logs, metrics and RateLimit-Policy headers.
const (
	TierIP        = "ip"        // client IPv4 address or IPv6 /64
	TierNetwork   = "network"   // the client's IPv4 /24 or IPv6 /48, an allocation
	TierSender    = "sender"    // the visitor's Reply-To address
	TierRecipient = "recipient" // each recipient address (share forms)
	TierForm      = "form"      // all submissions to one form
	TierGlobal    = "global"    // all submissions to all forms
)

// Limit is a budget of Count events per Period. The zero Limit means "no
// limit" and rules carrying it are ignored by stores.
type Limit struct {
	Count  int
	Period time.Duration
}

// IsZero reports whether l is the unlimited zero value.
func (l Limit) IsZero() bool { return l.Count <= 0 || l.Period <= 0 }

// Interval is the emission interval: the time one event's budget takes to
// come back (Period/Count).
func (l Limit) Interval() time.Duration {
	if l.IsZero() {
		return 0
	}
	return l.Period / time.Duration(l.Count)
}

// String formats l the way ParseLimit reads it ("5/h", "30/10m").
func (l Limit) String() string {
	if l.IsZero() {
		return "unlimited"
	}
	for _, u := range []struct {
		d time.Duration
		s string
	}{{24 * time.Hour, "d"}, {time.Hour, "h"}, {time.Minute, "m"}, {time.Second, "s"}} {
		if l.Period%u.d == 0 {
			n := l.Period / u.d
			if n == 1 {
				return strconv.Itoa(l.Count) + "/" + u.s
			}
			return fmt.Sprintf("%d/%d%s", l.Count, n, u.s)
		}
	}
	return fmt.Sprintf("%d/%s", l.Count, l.Period)
}

// ErrBadLimit is wrapped by every ParseLimit error.
var ErrBadLimit = errors.New("ratelimit: bad limit")

// ParseLimit reads "COUNT/[MULTIPLIER]UNIT" with UNIT one of s, m, h, d:
// "5/h", "200/d", "30/10m". An empty string is the zero (unlimited) Limit.
func ParseLimit(s string) (Limit, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return Limit{}, nil
	}
	cnt, per, ok := strings.Cut(s, "/")
	if !ok {
		return Limit{}, fmt.Errorf("%w %q: want COUNT/UNIT such as 5/h or 30/10m", ErrBadLimit, s)
	}
	n, err := strconv.Atoi(cnt)
	if err != nil || n <= 0 || n > 1_000_000_000 {
		return Limit{}, fmt.Errorf("%w %q: count must be a positive integer", ErrBadLimit, s)
	}
	if per == "" {
		return Limit{}, fmt.Errorf("%w %q: missing unit (s, m, h or d)", ErrBadLimit, s)
	}
	var unit time.Duration
	switch per[len(per)-1] {
	case 's':
		unit = time.Second
	case 'm':
		unit = time.Minute
	case 'h':
		unit = time.Hour
	case 'd':
		unit = 24 * time.Hour
	default:
		return Limit{}, fmt.Errorf("%w %q: unit must be s, m, h or d", ErrBadLimit, s)
	}
	mult := 1
	if m := per[:len(per)-1]; m != "" {
		mult, err = strconv.Atoi(m)
		if err != nil || mult <= 0 || mult > 100_000 {
			return Limit{}, fmt.Errorf("%w %q: multiplier must be a positive integer", ErrBadLimit, s)
		}
	}
	return Limit{Count: n, Period: time.Duration(mult) * unit}, nil
}

// Rule is one tier of one decision: the key being limited and its limit.
// Key is opaque to stores; the guard passes already-hashed keys so that no
// personal data (IPs, addresses) reaches a shared store in the clear.
type Rule struct {
	Tier  string
	Key   string
	Limit Limit
}

// Decision is the outcome of Store.Allow.
type Decision struct {
	// Allowed is true when every rule had budget and all were consumed.
	Allowed bool
	// Rule is the index (into the rules passed to Allow) of the first rule
	// that refused the request; -1 when Allowed.
	Rule int
	// RetryAfter is how long until the refused request would be admitted.
	RetryAfter time.Duration
	// Remaining is the budget left on the tightest rule after this decision.
	Remaining int
	// Reset is how long until the tightest rule's budget is full again.
	Reset time.Duration
	// Banned is true when the request was refused because a TierIP key is
	// serving a ban (see Banner); RetryAfter is then the ban's remainder.
	Banned bool
	// Tightest is the index of the rule that Remaining and Reset describe:
	// the refusing rule when refused, else the rule with the least budget
	// left; -1 when no rule applied. SetHeaders reports this rule.
	Tightest int
}

// Store decides rate limits. Implementations must be safe for concurrent use.
type Store interface {
	// Allow admits the request described by rules, consuming one event from
	// every rule, or refuses it consuming nothing. Rules with a zero Limit
	// are ignored. An error means no decision could be made; callers must
	// treat it as a refusal (fail closed).
	Allow(ctx context.Context, rules []Rule) (Decision, error)
	// Close releases background resources. Allow must not be called after.
	Close() error
}

// Banner is implemented by stores that keep escalating bans (fail2ban for
// forms). Such a store also honours bans inside Allow: when the key of any
// TierIP rule is banned, Allow refuses with Decision.Banned set, consuming
// nothing, in the same round trip as the limits.
type Banner interface {
	// Penalize records one offence (failed CAPTCHA, honeypot, injection
	// attempt, ...) by key and returns the ban now in force, 0 if none.
	// Repeat offences within the store's window ban for growing durations.
	Penalize(ctx context.Context, key string) (time.Duration, error)
}

// AsyncBanner is a Banner whose Penalize costs a network round trip. The
// answer to an offending request never depends on the ban it earns (the
// request is refused, or answered as a success for a honeypot, either
// way), so the caller need not wait for the round trip: PenalizeAsync
// records the offence in the background and calls done, when not nil,
// with what Penalize would have returned.
//
// Ordering is kept where it matters: a later Allow whose TierIP rule has
// the same key waits (for a bounded time) for that key's offences still in
// flight, so a client's next request normally sees every ban its earlier
// requests earned. PenalizeAsync never blocks its caller: when too many
// offences are in flight it drops the offence and reports that through
// done, since a flood of offences must not slow or refuse the decisions of
// everyone else.
type AsyncBanner interface {
	Banner
	PenalizeAsync(ctx context.Context, key string, done func(ban time.Duration, err error))
}
