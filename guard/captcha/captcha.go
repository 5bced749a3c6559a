package captcha

import (
	"context"
	"errors"
	"net/netip"
	"time"
)

// Request is what a Verifier needs to judge one submission.
type Request struct {
	Form      string     // the form's name (challenges are bound to it)
	Token     string     // the value of the verifier's Field in the submission
	RemoteIP  netip.Addr // trusted client IP as the guard resolved it
	ClientKey string     // hashed client key (IP or /64) for per-client policy
	Now       time.Time  // the guard's clock
}

// Verifier checks one kind of token. Implementations are safe for concurrent
// use and must fail closed: any doubt (network error, timeout, malformed
// answer) is an error.
type Verifier interface {
	// Field is the form field (or JSON key) carrying the token,
	// e.g. "cf-turnstile-response" or "altcha".
	Field() string
	// Verify returns nil when the token is valid and unused, and marks it used.
	Verify(ctx context.Context, req Request) error
}

// Sentinel errors. Verifiers wrap one of these (errors.Is) with detail.
var (
	ErrMissing     = errors.New("captcha: token missing")
	ErrInvalid     = errors.New("captcha: token invalid")
	ErrExpired     = errors.New("captcha: token expired")
	ErrReplayed    = errors.New("captcha: token already used")
	ErrTooFast     = errors.New("captcha: form submitted too fast")
	ErrMismatch    = errors.New("captcha: hostname, action or form mismatch")
	ErrLowScore    = errors.New("captcha: score below threshold")
	ErrUnavailable = errors.New("captcha: verification unavailable")
	ErrConfig      = errors.New("captcha: misconfigured")
)

// ReplayCache remembers used tokens until they expire.
type ReplayCache interface {
	// Use records key as used until expiry. It returns true when the key
	// was fresh (first use) and false when it had been used before.
	// An error means the cache could not answer; callers fail closed.
	Use(ctx context.Context, key string, expiry time.Time) (fresh bool, err error)
}
