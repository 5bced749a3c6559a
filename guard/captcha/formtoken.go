package captcha

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"time"
)

// Form token defaults.
const (
	// FormTokenField is the hidden field carrying the token.
	FormTokenField = "_fg_token"
	// DefaultMinFill is the least time between issuing a page's token and
	// accepting its submission: humans do not fill a form in 3 seconds.
	DefaultMinFill = 3 * time.Second
	// DefaultFormTokenMaxAge is how long a page's token stays valid.
	DefaultFormTokenMaxAge = 2 * time.Hour
	// formTokenVersion is the first byte of every token.
	formTokenVersion = 1
	formTokenNonce   = 16
	// formTokenLen is version(1) + issued unix milliseconds(8) + nonce(16)
	// + HMAC-SHA256(32) bytes.
	formTokenLen = 1 + 8 + formTokenNonce + 32
)

// formTokenDomain separates form-token MACs from any other use of a key.
var formTokenDomain = []byte("formguard form token v1\x00")

// FormTokenConfig configures signed form tokens.
type FormTokenConfig struct {
	// Keys are HMAC-SHA256 keys, each at least MinKeyLen bytes (required).
	// Keys[0] signs; all verify, for rotation.
	Keys [][]byte
	// MinFill is the least time from Issue to Verify (ErrTooFast below).
	// Zero value: DefaultMinFill; negative: no minimum.
	MinFill time.Duration
	// MaxAge is how long a token is valid (ErrExpired after). Zero value:
	// DefaultFormTokenMaxAge.
	MaxAge time.Duration
	// Replay records used tokens (hashed). Zero value: a private
	// NewMemoryReplay; share a Redis cache between instances.
	Replay ReplayCache
	// Now is the clock for Issue, and for Verify when Request.Now is zero.
	// Zero value: time.Now.
	Now func() time.Time
	// Rand supplies nonces. Zero value: crypto/rand.Reader.
	Rand io.Reader
}

// FormToken issues and verifies signed single-use form tokens: base64url
// of version, issue time (Unix milliseconds), a 128-bit nonce and
// HMAC-SHA256(key, domain || form || 0 || version || time || nonce). The
// form's name is covered by the MAC but not carried, so a token for one
// form never verifies for another. Safe for concurrent use.
type FormToken struct {
	keys    [][]byte
	minFill time.Duration
	maxAge  time.Duration
	replay  ReplayCache
	now     func() time.Time
	rand    io.Reader
}

var _ Verifier = (*FormToken)(nil)

// NewFormToken validates cfg and returns a form-token issuer and verifier.
func NewFormToken(cfg FormTokenConfig) (*FormToken, error) {
	const prefix = "formtoken: "
	keys, err := checkKeys(prefix, cfg.Keys)
	if err != nil {
		return nil, err
	}
	if cfg.MaxAge < 0 {
		return nil, fmt.Errorf("%w: %sMaxAge must not be negative", ErrConfig, prefix)
	}
	t := &FormToken{keys: keys, minFill: cfg.MinFill, maxAge: cfg.MaxAge, replay: cfg.Replay, now: cfg.Now, rand: cfg.Rand}
	switch {
	case t.minFill == 0:
		t.minFill = DefaultMinFill
	case t.minFill < 0:
		t.minFill = 0
	}
	if t.maxAge == 0 {
		t.maxAge = DefaultFormTokenMaxAge
	}
	if t.minFill >= t.maxAge {
		return nil, fmt.Errorf("%w: %sMinFill %s must be below MaxAge %s", ErrConfig, prefix, t.minFill, t.maxAge)
	}
	if t.now == nil {
		t.now = time.Now
	}
	if t.rand == nil {
		t.rand = rand.Reader
	}
	if t.replay == nil {
		t.replay = NewMemoryReplay(0, t.now)
	}
	return t, nil
}

// Field implements Verifier: "_fg_token".
func (t *FormToken) Field() string { return FormTokenField }

// Issue returns a new token for form, to embed in the page as a hidden
// input named Field().
func (t *FormToken) Issue(form string) (string, error) {
	if form == "" {
		return "", fmt.Errorf("%w: formtoken: empty form name", ErrConfig)
	}
	var b [formTokenLen]byte
	b[0] = formTokenVersion
	binary.BigEndian.PutUint64(b[1:9], uint64(t.now().UnixMilli()))
	if _, err := io.ReadFull(t.rand, b[9:9+formTokenNonce]); err != nil {
		return "", fmt.Errorf("%w: formtoken: random nonce: %w", ErrUnavailable, err)
	}
	copy(b[9+formTokenNonce:], formTokenMAC(t.keys[0], form, b[:9+formTokenNonce]))
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// formTokenClaims is what a token carries once its MAC is checked.
type formTokenClaims struct {
	Issued time.Time
	Nonce  [formTokenNonce]byte
}

// parseFormToken decodes a token's fixed layout without checking its MAC.
func parseFormToken(token string) (raw []byte, c formTokenClaims, err error) {
	if len(token) != base64.RawURLEncoding.EncodedLen(formTokenLen) {
		return nil, c, fmt.Errorf("formtoken: %w: length %d", ErrInvalid, len(token))
	}
	raw, err = base64.RawURLEncoding.Strict().DecodeString(token)
	if err != nil || len(raw) != formTokenLen {
		return nil, c, fmt.Errorf("formtoken: %w: not base64url", ErrInvalid)
	}
	if raw[0] != formTokenVersion {
		return nil, c, fmt.Errorf("formtoken: %w: version %d", ErrInvalid, raw[0])
	}
	ms := binary.BigEndian.Uint64(raw[1:9])
	if ms > 1<<62 {
		return nil, c, fmt.Errorf("formtoken: %w: issue time out of range", ErrInvalid)
	}
	c.Issued = time.UnixMilli(int64(ms))
	copy(c.Nonce[:], raw[9:9+formTokenNonce])
	return raw, c, nil
}

// Verify implements Verifier: the MAC for req.Form under any key, then the
// minimum fill time (ErrTooFast, which leaves the token unused so the
// visitor may resubmit), the maximum age (ErrExpired) and single use
// (ErrReplayed).
func (t *FormToken) Verify(ctx context.Context, req Request) error {
	if req.Token == "" {
		return fmt.Errorf("formtoken: %w", ErrMissing)
	}
	raw, c, err := parseFormToken(req.Token)
	if err != nil {
		return err
	}
	body, mac := raw[:9+formTokenNonce], raw[9+formTokenNonce:]
	ok := false
	for _, k := range t.keys {
		if hmac.Equal(formTokenMAC(k, req.Form, body), mac) {
			ok = true
		}
	}
	if !ok {
		return fmt.Errorf("formtoken: %w: bad signature or another form's token", ErrInvalid)
	}
	now := req.Now
	if now.IsZero() {
		now = t.now()
	}
	age := now.Sub(c.Issued)
	switch {
	case age < -DefaultClockSkew:
		return fmt.Errorf("formtoken: %w: issued in the future", ErrInvalid)
	case age < t.minFill:
		return fmt.Errorf("formtoken: %w: submitted %s after the page was served (min %s)", ErrTooFast, age.Round(time.Millisecond), t.minFill)
	case age > t.maxAge:
		return fmt.Errorf("formtoken: %w: token is %s old (max %s)", ErrExpired, age.Round(time.Second), t.maxAge)
	}
	if err := useOnce(ctx, t.replay, replayKey("formtoken", string(body)), c.Issued.Add(t.maxAge+time.Second)); err != nil {
		return fmt.Errorf("formtoken: %w", err)
	}
	return nil
}

func formTokenMAC(key []byte, form string, body []byte) []byte {
	return hmacSHA256(key, formTokenDomain, []byte(form), []byte{0}, body)
}
