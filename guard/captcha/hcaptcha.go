package captcha

import (
	"fmt"
	"net/http"
	"time"
)

// hCaptcha defaults.
const (
	// HCaptchaVerifyURL is hCaptcha's documented siteverify endpoint.
	HCaptchaVerifyURL = "https://api.hcaptcha.com/siteverify"
	// HCaptchaField is the form field the hCaptcha widget fills.
	HCaptchaField = "h-captcha-response"
	// DefaultHCaptchaMaxAge is how old a solved challenge may be.
	DefaultHCaptchaMaxAge = 120 * time.Second
)

// HCaptchaConfig configures an hCaptcha verifier.
type HCaptchaConfig struct {
	// Secret is the account secret (required), never logged.
	Secret string
	// SiteKey is the widget's site key (required). It is sent as
	// "sitekey" so hCaptcha refuses tokens solved for another site key.
	SiteKey string
	// Hostnames are the site's hostnames (required).
	Hostnames []string
	// VerifyURL overrides the endpoint. Zero value: HCaptchaVerifyURL.
	VerifyURL string
	// HTTPClient makes the call. Zero value: http.DefaultClient.
	HTTPClient *http.Client
	// Timeout bounds the verification. Zero value: DefaultVerifyTimeout.
	Timeout time.Duration
	// MaxAge is how old challenge_ts may be. Zero value:
	// DefaultHCaptchaMaxAge.
	MaxAge time.Duration
	// Replay records used tokens (hashed). Zero value: a private
	// NewMemoryReplay.
	Replay ReplayCache
	// Now is the clock when Request.Now is zero. Zero value: time.Now.
	Now func() time.Time
}

// HCaptcha verifies hCaptcha tokens. Safe for concurrent use.
type HCaptcha struct{ *siteVerifier }

var _ Verifier = (*HCaptcha)(nil)

// NewHCaptcha validates cfg and returns a verifier.
func NewHCaptcha(cfg HCaptchaConfig) (*HCaptcha, error) {
	if cfg.SiteKey == "" {
		return nil, fmt.Errorf("%w: hcaptcha: SiteKey is required", ErrConfig)
	}
	s, err := newSiteVerifier("hcaptcha", HCaptchaField, HCaptchaVerifyURL, DefaultHCaptchaMaxAge, commonConfig{
		secret: cfg.Secret, siteKey: cfg.SiteKey, verifyURL: cfg.VerifyURL,
		hostnames: cfg.Hostnames, client: cfg.HTTPClient, timeout: cfg.Timeout, maxAge: cfg.MaxAge,
		replay: cfg.Replay, now: cfg.Now,
	})
	if err != nil {
		return nil, err
	}
	s.sendSite = true
	return &HCaptcha{s}, nil
}
