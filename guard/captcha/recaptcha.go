package captcha

import (
	"fmt"
	"net/http"
	"time"
)

// Google reCAPTCHA defaults.
const (
	// ReCAPTCHAVerifyURL is reCAPTCHA's documented siteverify endpoint.
	ReCAPTCHAVerifyURL = "https://www.google.com/recaptcha/api/siteverify"
	// ReCAPTCHAField is the form field the reCAPTCHA widget fills.
	ReCAPTCHAField = "g-recaptcha-response"
	// DefaultReCAPTCHAMaxAge is reCAPTCHA's documented token lifetime.
	DefaultReCAPTCHAMaxAge = 120 * time.Second
	// DefaultReCAPTCHAMinScore is the v3 score threshold Google suggests.
	DefaultReCAPTCHAMinScore = 0.5
)

// ReCAPTCHAConfig configures a reCAPTCHA v2 or v3 verifier.
type ReCAPTCHAConfig struct {
	// Version is 2 (checkbox/invisible) or 3 (score) (required).
	Version int
	// Secret is the secret key (required), never logged.
	Secret string
	// SiteKey is the public site key (informational).
	SiteKey string
	// Hostnames are the site's hostnames (required).
	Hostnames []string
	// Action must equal the action the page executed (required for v3,
	// ignored for v2, whose answers carry no action).
	Action string
	// MinScore is the v3 threshold in [0, 1]. Zero value:
	// DefaultReCAPTCHAMinScore. There is no way to accept every score:
	// use v2 for that.
	MinScore float64
	// VerifyURL overrides the endpoint. Zero value: ReCAPTCHAVerifyURL.
	VerifyURL string
	// HTTPClient makes the call. Zero value: http.DefaultClient.
	HTTPClient *http.Client
	// Timeout bounds the verification. Zero value: DefaultVerifyTimeout.
	Timeout time.Duration
	// MaxAge is how old challenge_ts may be. Zero value:
	// DefaultReCAPTCHAMaxAge.
	MaxAge time.Duration
	// Replay records used tokens (hashed). Zero value: a private
	// NewMemoryReplay.
	Replay ReplayCache
	// Now is the clock when Request.Now is zero. Zero value: time.Now.
	Now func() time.Time
}

// ReCAPTCHA verifies Google reCAPTCHA v2 and v3 tokens. Safe for
// concurrent use.
type ReCAPTCHA struct{ *siteVerifier }

var _ Verifier = (*ReCAPTCHA)(nil)

// NewReCAPTCHA validates cfg and returns a verifier.
func NewReCAPTCHA(cfg ReCAPTCHAConfig) (*ReCAPTCHA, error) {
	const prefix = "recaptcha: "
	action := ""
	switch cfg.Version {
	case 2:
	case 3:
		if cfg.Action == "" {
			return nil, fmt.Errorf("%w: %sAction is required for version 3", ErrConfig, prefix)
		}
		action = cfg.Action
	default:
		return nil, fmt.Errorf("%w: %sVersion must be 2 or 3, got %d", ErrConfig, prefix, cfg.Version)
	}
	if cfg.MinScore < 0 || cfg.MinScore > 1 {
		return nil, fmt.Errorf("%w: %sMinScore %v is outside [0, 1]", ErrConfig, prefix, cfg.MinScore)
	}
	s, err := newSiteVerifier("recaptcha", ReCAPTCHAField, ReCAPTCHAVerifyURL, DefaultReCAPTCHAMaxAge, commonConfig{
		secret: cfg.Secret, siteKey: cfg.SiteKey, action: action, verifyURL: cfg.VerifyURL,
		hostnames: cfg.Hostnames, client: cfg.HTTPClient, timeout: cfg.Timeout, maxAge: cfg.MaxAge,
		replay: cfg.Replay, now: cfg.Now,
	})
	if err != nil {
		return nil, err
	}
	if cfg.Version == 3 {
		s.needScore = true
		s.minScore = cfg.MinScore
		if s.minScore == 0 {
			s.minScore = DefaultReCAPTCHAMinScore
		}
	}
	return &ReCAPTCHA{s}, nil
}
