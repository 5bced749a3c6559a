package ratelimit

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Header field names. RateLimit and RateLimit-Policy follow
// draft-ietf-httpapi-ratelimit-headers-10 (sections 3 and 4): each is a
// Structured Field List (RFC 9651) of Items whose value is the policy name
// as an sf-string.
const (
	HeaderRetryAfter      = "Retry-After"
	HeaderRateLimit       = "RateLimit"
	HeaderRateLimitPolicy = "RateLimit-Policy"
)

// SetHeaders describes decision d over rules in h:
//
//   - RateLimit-Policy: "ip";q=5;w=3600 — the quota (q) and window in
//     seconds (w) of the rule d reports on (draft section 3.1);
//   - RateLimit: "ip";r=0;t=30 — the remaining quota units (r) and the
//     seconds until they come back (t) (draft section 4.1): when refused,
//     t is when a retry can succeed; when admitted, when the quota is full;
//   - Retry-After (RFC 9110 section 10.2.3) in whole seconds, rounded up
//     and at least 1, only when d refused the request.
//
// The rule reported is d.Tightest (falling back to d.Rule); only that one
// is named, so a response never lists every tier a site enforces. Nothing
// but Retry-After is written when no rule applies.
func SetHeaders(h http.Header, rules []Rule, d Decision) {
	if !d.Allowed {
		h.Set(HeaderRetryAfter, strconv.FormatInt(max(1, ceilSeconds(d.RetryAfter)), 10))
	}
	i := d.Tightest
	if i < 0 || i >= len(rules) {
		i = d.Rule
	}
	if i < 0 || i >= len(rules) || rules[i].Limit.IsZero() && !d.Banned {
		return
	}
	r := rules[i]
	name := sfString(r.Tier)
	if !r.Limit.IsZero() {
		h.Set(HeaderRateLimitPolicy, name+";q="+strconv.Itoa(r.Limit.Count)+
			";w="+strconv.FormatInt(ceilSeconds(r.Limit.Period), 10))
	}
	t, left := d.Reset, d.Remaining
	if !d.Allowed {
		t, left = d.RetryAfter, 0
	}
	h.Set(HeaderRateLimit, name+";r="+strconv.Itoa(max(0, left))+
		";t="+strconv.FormatInt(ceilSeconds(t), 10))
}

// ceilSeconds rounds d up to whole seconds; negative durations are 0.
func ceilSeconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	s := int64(d / time.Second)
	if d%time.Second != 0 {
		s++
	}
	return s
}

// sfString serialises s as an RFC 9651 section 3.3.3 String: printable
// ASCII only (anything else becomes '?'), with '"' and '\' escaped.
func sfString(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < 0x20 || c > 0x7e:
			b.WriteByte('?')
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}
