package ratelimit

import (
	"net/http"
	"strconv"
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

// The map keys SetHeaders writes: the canonical forms of the names above,
// computed once. http.Header.Set canonicalises its key on every call, and
// "RateLimit" is not canonical ("Ratelimit" is), so each Set allocated a
// new key string per response. Field names are case-insensitive (RFC 9110
// section 5.1), so the canonical spelling on the wire means the same, and
// h.Get("RateLimit") finds it.
var (
	keyRetryAfter      = http.CanonicalHeaderKey(HeaderRetryAfter)
	keyRateLimit       = http.CanonicalHeaderKey(HeaderRateLimit)
	keyRateLimitPolicy = http.CanonicalHeaderKey(HeaderRateLimitPolicy)
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
// but Retry-After is written when no rule applies. Like http.Header.Set,
// each field written replaces any value it had.
//
// It runs on every refusal a flood gets, so it costs two allocations whatever it
// writes: one string holding every value (built in a stack buffer, the
// values are substrings of it) and one backing array for the value slices.
func SetHeaders(h http.Header, rules []Rule, d Decision) {
	i := d.Tightest
	if i < 0 || i >= len(rules) {
		i = d.Rule
	}
	named := i >= 0 && i < len(rules) && (!rules[i].Limit.IsZero() || d.Banned)
	if d.Allowed && !named {
		return
	}
	var stack [128]byte
	buf := stack[:0]
	// ends[k] is where value k ends in buf; the values are, in order,
	// Retry-After, RateLimit-Policy and RateLimit, each only if written.
	var ends [3]int
	var keys [3]string
	n := 0
	if !d.Allowed {
		buf = strconv.AppendInt(buf, max(1, ceilSeconds(d.RetryAfter)), 10)
		keys[n], ends[n] = keyRetryAfter, len(buf)
		n++
	}
	if named {
		r := &rules[i]
		if !r.Limit.IsZero() {
			buf = appendSfString(buf, r.Tier)
			buf = append(buf, ";q="...)
			buf = strconv.AppendInt(buf, int64(r.Limit.Count), 10)
			buf = append(buf, ";w="...)
			buf = strconv.AppendInt(buf, ceilSeconds(r.Limit.Period), 10)
			keys[n], ends[n] = keyRateLimitPolicy, len(buf)
			n++
		}
		t, left := d.Reset, d.Remaining
		if !d.Allowed {
			t, left = d.RetryAfter, 0
		}
		buf = appendSfString(buf, r.Tier)
		buf = append(buf, ";r="...)
		buf = strconv.AppendInt(buf, int64(max(0, left)), 10)
		buf = append(buf, ";t="...)
		buf = strconv.AppendInt(buf, ceilSeconds(t), 10)
		keys[n], ends[n] = keyRateLimit, len(buf)
		n++
	}
	all := string(buf)
	vals := make([]string, n)
	start := 0
	for k := range n {
		vals[k] = all[start:ends[k]]
		h[keys[k]] = vals[k : k+1 : k+1]
		start = ends[k]
	}
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

// appendSfString appends s serialised as an RFC 9651 section 3.3.3
// String: printable ASCII only (anything else becomes '?'), with '"' and
// '\' escaped.
func appendSfString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20 || c > 0x7e:
			b = append(b, '?')
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}
