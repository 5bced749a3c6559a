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
)

// escalation remembers recently limited client keys, bounded: when full, an
// arbitrary expired or, failing that, arbitrary entry is dropped, which can
// only make a puzzle easier than intended, never refuse a request.
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
		dropped := 0
		for k, t := range e.until {
			if t.Before(until.Add(-EscalateWindow)) || dropped == 0 {
				delete(e.until, k)
				dropped++
			}
			if dropped >= 64 {
				break
			}
		}
	}
	e.until[key] = until
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
