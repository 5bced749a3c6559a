package captcha

import (
	"io"
	"net/http"
	"time"
)

// Cloudflare Turnstile defaults.
const (
	// TurnstileVerifyURL is Turnstile's documented siteverify endpoint.
	TurnstileVerifyURL = "https://challenges.cloudflare.com/turnstile/v0/siteverify"
	// TurnstileField is the form field the Turnstile widget fills.
	TurnstileField = "cf-turnstile-response"
	// DefaultTurnstileMaxAge is Turnstile's documented token lifetime.
	DefaultTurnstileMaxAge = 300 * time.Second
	// maxTurnstileToken is Turnstile's documented maximum token length.
	maxTurnstileToken = 2048
)

// TurnstileConfig configures a Cloudflare Turnstile verifier.
type TurnstileConfig struct {
	// Secret is the widget's secret key (required). It is only ever sent
	// to VerifyURL and never logged.
	Secret string
	// SiteKey is the widget's public site key (informational; Turnstile's
	// siteverify does not take it).
	SiteKey string
	// Hostnames are the site's hostnames (required); an answer for any
	// other hostname is refused with ErrMismatch.
	Hostnames []string
	// Action, when set, must equal the action the widget was rendered
	// with. Zero value: any action.
	Action string
	// VerifyURL overrides the endpoint. Zero value: TurnstileVerifyURL.
	// Only https, or http to a loopback host, is accepted.
	VerifyURL string
	// HTTPClient makes the call. Zero value: http.DefaultClient.
	HTTPClient *http.Client
	// Timeout bounds the whole verification including the one retry.
	// Zero value: DefaultVerifyTimeout.
	Timeout time.Duration
	// MaxAge is how old challenge_ts may be. Zero value:
	// DefaultTurnstileMaxAge.
	MaxAge time.Duration
	// Replay records used tokens (hashed). Zero value: a private
	// NewMemoryReplay; share a Redis cache between instances.
	Replay ReplayCache
	// Now is the clock when Request.Now is zero. Zero value: time.Now.
	Now func() time.Time
	// Rand supplies idempotency keys. Zero value: crypto/rand.Reader.
	Rand io.Reader
}

// Turnstile verifies Cloudflare Turnstile tokens. Each verification sends
// a random idempotency_key and, on a network error, retries once with the
// same key, which Turnstile answers like the first attempt rather than as
// a duplicate. Safe for concurrent use.
type Turnstile struct{ *siteVerifier }

var _ Verifier = (*Turnstile)(nil)

// NewTurnstile validates cfg and returns a verifier.
func NewTurnstile(cfg TurnstileConfig) (*Turnstile, error) {
	s, err := newSiteVerifier("turnstile", TurnstileField, TurnstileVerifyURL, DefaultTurnstileMaxAge, commonConfig{
		secret: cfg.Secret, siteKey: cfg.SiteKey, action: cfg.Action, verifyURL: cfg.VerifyURL,
		hostnames: cfg.Hostnames, client: cfg.HTTPClient, timeout: cfg.Timeout, maxAge: cfg.MaxAge,
		replay: cfg.Replay, now: cfg.Now, rand: cfg.Rand,
	})
	if err != nil {
		return nil, err
	}
	s.idempotent = true
	s.maxToken = maxTurnstileToken
	return &Turnstile{s}, nil
}
