package guard

import (
	"net/http"
	"sync"
	"time"
)

// Escalation multipliers for bot-defence difficulty (captcha.PoWConfig's
// Escalate hook): a client refused by a rate limit or ban recently gets
// EscalateFactor times harder proof-of-work puzzles for EscalateWindow.
const (
	EscalateFactor   = 10
	EscalateWindow   = 15 * time.Minute
	maxEscalatedKeys = 1 << 16
	escalateScan     = 64 // entries a full map looks at to make room
)

// escalation remembers recently limited client keys: one entry per client
// key (a client marked again only moves its expiry), at most
// maxEscalatedKeys in all. Dropping an entry can only make a puzzle easier
// than intended, never refuse a request.
type escalation struct {
	mu    sync.Mutex
	until map[string]time.Time
}

func (e *escalation) mark(key string, until time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.until == nil {
		e.until = make(map[string]time.Time)
	}
	if _, ok := e.until[key]; !ok && len(e.until) >= maxEscalatedKeys {
		e.evictLocked(until.Add(-EscalateWindow))
	}
	e.until[key] = until
}

// evictLocked makes room for one entry looking at escalateScan entries at
// most, so a full map costs every mark the same small time: the expired
// ones among them go, or, when none has, the first one seen (map
// iteration starts at a random entry, so that is an arbitrary one).
func (e *escalation) evictLocked(now time.Time) {
	seen, dropped := 0, false
	var first string
	for k, t := range e.until {
		if seen == 0 {
			first = k
		}
		if !t.After(now) {
			delete(e.until, k)
			dropped = true
		}
		if seen++; seen >= escalateScan {
			break
		}
	}
	if !dropped {
		delete(e.until, first)
	}
}

func (e *escalation) factor(key string, now time.Time) int64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	t, ok := e.until[key]
	if !ok {
		return 1
	}
	if now.After(t) {
		delete(e.until, key)
		return 1
	}
	return EscalateFactor
}

// Escalate is a difficulty multiplier for a client key, for
// captcha.PoWConfig.Escalate: EscalateFactor for a client the guard refused
// with rate_limited or banned in the last EscalateWindow, otherwise 1.
func (g *Guard) Escalate(clientKey string) int64 {
	return g.esc.factor(clientKey, g.now())
}

// ChallengeKey is the client key of r for challenge endpoints
// (captcha.PoW.ChallengeHandler): the same hashed key Check uses, or ""
// when the forwarding headers are malformed.
func (g *Guard) ChallengeKey(r *http.Request) string {
	ip, err := g.ips.ClientIP(r)
	if err != nil {
		return ""
	}
	return g.ClientKey(ip)
}
