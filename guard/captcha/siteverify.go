package captcha

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"
)

// Defaults shared by the third-party verifiers.
const (
	// DefaultVerifyTimeout bounds one whole verification against a
	// provider, retry included. A slow provider fails closed.
	DefaultVerifyTimeout = 3 * time.Second
	// DefaultClockSkew is how far in the future a provider's challenge_ts
	// may lie before the answer is distrusted.
	DefaultClockSkew = time.Minute
	// maxProviderBody caps the siteverify answer we read.
	maxProviderBody = 64 << 10
)

// siteVerifier is the documented siteverify protocol shared by Turnstile,
// hCaptcha and reCAPTCHA: a form-encoded POST of secret, response and
// remoteip answered by JSON {success, challenge_ts, hostname, error-codes,
// ...}. Provider differences are flags.
type siteVerifier struct {
	name       string // provider, for errors and replay keys
	field      string
	verifyURL  string
	secret     string
	siteKey    string // sent as "sitekey" when sendSiteKey
	hostnames  map[string]bool
	action     string // required action when non-empty
	needScore  bool   // reCAPTCHA v3: score must be present
	minScore   float64
	maxAge     time.Duration
	maxToken   int
	timeout    time.Duration
	client     *http.Client
	replay     ReplayCache
	now        func() time.Time
	rand       io.Reader
	sendSite   bool // hCaptcha: send sitekey
	idempotent bool // Turnstile: idempotency_key and one retry
}

// siteVerifyAnswer is the union of the providers' documented answers.
type siteVerifyAnswer struct {
	Success     bool     `json:"success"`
	ChallengeTS string   `json:"challenge_ts"`
	Hostname    string   `json:"hostname"`
	Action      string   `json:"action"`
	CData       string   `json:"cdata"`
	Score       *float64 `json:"score"`
	ErrorCodes  []string `json:"error-codes"`
}

// commonConfig is what every provider config carries, normalised.
type commonConfig struct {
	secret, siteKey, action, verifyURL string
	hostnames                          []string
	client                             *http.Client
	timeout, maxAge                    time.Duration
	replay                             ReplayCache
	now                                func() time.Time
	rand                               io.Reader
}

func newSiteVerifier(name, field, defaultURL string, defaultMaxAge time.Duration, c commonConfig) (*siteVerifier, error) {
	prefix := name + ": "
	if c.secret == "" {
		return nil, fmt.Errorf("%w: %sSecret is required", ErrConfig, prefix)
	}
	if strings.ContainsFunc(c.secret, isSpaceOrControl) {
		return nil, fmt.Errorf("%w: %sSecret contains whitespace or control characters", ErrConfig, prefix)
	}
	if len(c.hostnames) == 0 {
		return nil, fmt.Errorf("%w: %sHostnames is required (the site's own hostnames)", ErrConfig, prefix)
	}
	hosts := make(map[string]bool, len(c.hostnames))
	for _, h := range c.hostnames {
		if !validHostname(h) {
			return nil, fmt.Errorf("%w: %sHostnames: %q is not a bare hostname", ErrConfig, prefix, h)
		}
		hosts[strings.ToLower(h)] = true
	}
	if c.verifyURL == "" {
		c.verifyURL = defaultURL
	}
	if err := checkVerifyURL(c.verifyURL); err != nil {
		return nil, fmt.Errorf("%w: %sVerifyURL: %w", ErrConfig, prefix, err)
	}
	if c.timeout < 0 || c.maxAge < 0 {
		return nil, fmt.Errorf("%w: %sTimeout and MaxAge must not be negative", ErrConfig, prefix)
	}
	if c.timeout == 0 {
		c.timeout = DefaultVerifyTimeout
	}
	if c.maxAge == 0 {
		c.maxAge = defaultMaxAge
	}
	if c.client == nil {
		c.client = http.DefaultClient
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.rand == nil {
		c.rand = rand.Reader
	}
	if c.replay == nil {
		c.replay = NewMemoryReplay(0, c.now)
	}
	return &siteVerifier{
		name: name, field: field, verifyURL: c.verifyURL,
		secret: c.secret, siteKey: c.siteKey, hostnames: hosts,
		action: c.action, maxAge: c.maxAge, timeout: c.timeout,
		client: c.client, replay: c.replay, now: c.now, rand: c.rand,
		maxToken: 8192,
	}, nil
}

// Field implements Verifier.
func (s *siteVerifier) Field() string { return s.field }

// Verify implements Verifier.
func (s *siteVerifier) Verify(ctx context.Context, req Request) error {
	if req.Token == "" {
		return fmt.Errorf("%s: %w", s.name, ErrMissing)
	}
	if len(req.Token) > s.maxToken || strings.ContainsFunc(req.Token, isSpaceOrControl) {
		return fmt.Errorf("%s: %w: malformed token (%d bytes)", s.name, ErrInvalid, len(req.Token))
	}
	now := req.Now
	if now.IsZero() {
		now = s.now()
	}
	// Mark the token used before asking the provider, so a replayed token
	// costs no network call. Providers consume tokens on first
	// verification anyway, so a failed call cannot be retried with the
	// same token either way.
	if err := useOnce(ctx, s.replay, replayKey(s.name, req.Token), now.Add(s.maxAge+DefaultClockSkew)); err != nil {
		return fmt.Errorf("%s: %w", s.name, err)
	}
	ans, err := s.call(ctx, req)
	if err != nil {
		return fmt.Errorf("%s: %w", s.name, err)
	}
	if err := s.judge(ans, now); err != nil {
		return fmt.Errorf("%s: %w", s.name, err)
	}
	return nil
}

// call posts the token to the provider. The whole call, retry included,
// is bounded by s.timeout.
func (s *siteVerifier) call(ctx context.Context, req Request) (*siteVerifyAnswer, error) {
	form := url.Values{}
	form.Set("secret", s.secret)
	form.Set("response", req.Token)
	if req.RemoteIP.IsValid() {
		form.Set("remoteip", req.RemoteIP.Unmap().String())
	}
	if s.sendSite && s.siteKey != "" {
		form.Set("sitekey", s.siteKey)
	}
	if s.idempotent {
		key, err := uuid4(s.rand)
		if err != nil {
			return nil, fmt.Errorf("%w: idempotency key: %w", ErrUnavailable, err)
		}
		form.Set("idempotency_key", key)
	}
	body := form.Encode()

	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	ans, err := s.post(ctx, body)
	if err != nil && s.idempotent && ctx.Err() == nil && isNetworkError(err) {
		// Turnstile documents idempotency_key for exactly this: a retry
		// with the same key is answered as the first attempt was, instead
		// of timeout-or-duplicate.
		ans, err = s.post(ctx, body)
	}
	return ans, err
}

type netError struct{ error }

func (e netError) Unwrap() error { return e.error }

func isNetworkError(err error) bool {
	var n netError
	return errors.As(err, &n)
}

func (s *siteVerifier) post(ctx context.Context, body string) (*siteVerifyAnswer, error) {
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, s.verifyURL, strings.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	hr.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	hr.Header.Set("Accept", "application/json")
	resp, err := s.client.Do(hr)
	if err != nil {
		// *url.Error repeats the URL but never the body, so no secret.
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, netError{err})
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxProviderBody+1))
	if err != nil {
		return nil, fmt.Errorf("%w: reading answer: %w", ErrUnavailable, netError{err})
	}
	if len(raw) > maxProviderBody {
		return nil, fmt.Errorf("%w: answer larger than %d bytes", ErrUnavailable, maxProviderBody)
	}
	var ans siteVerifyAnswer
	jsonErr := json.Unmarshal(raw, &ans)
	if resp.StatusCode != http.StatusOK {
		// Some providers answer 4xx with documented error codes; honour
		// those, and treat anything else as the provider being down.
		if jsonErr == nil && !ans.Success && len(ans.ErrorCodes) > 0 && resp.StatusCode < 500 {
			return &ans, nil
		}
		return nil, fmt.Errorf("%w: HTTP status %d", ErrUnavailable, resp.StatusCode)
	}
	if jsonErr != nil {
		return nil, fmt.Errorf("%w: malformed answer: %w", ErrUnavailable, jsonErr)
	}
	return &ans, nil
}

// judge checks a decoded answer.
func (s *siteVerifier) judge(a *siteVerifyAnswer, now time.Time) error {
	if !a.Success {
		return errorFromCodes(a.ErrorCodes)
	}
	if len(a.ErrorCodes) > 0 {
		// success with error codes is contradictory: distrust it.
		return fmt.Errorf("%w: success with error codes %q", ErrInvalid, a.ErrorCodes)
	}
	if !s.hostnames[strings.ToLower(a.Hostname)] {
		return fmt.Errorf("%w: hostname %q is not one of the site's", ErrMismatch, a.Hostname)
	}
	if s.action != "" && a.Action != s.action {
		return fmt.Errorf("%w: action %q, want %q", ErrMismatch, a.Action, s.action)
	}
	ts, err := time.Parse(time.RFC3339, a.ChallengeTS)
	if err != nil {
		return fmt.Errorf("%w: challenge_ts %q: %w", ErrInvalid, a.ChallengeTS, err)
	}
	if ts.After(now.Add(DefaultClockSkew)) {
		return fmt.Errorf("%w: challenge_ts %s is in the future", ErrInvalid, a.ChallengeTS)
	}
	if now.Sub(ts) > s.maxAge {
		return fmt.Errorf("%w: challenge solved %s ago (max %s)", ErrExpired, now.Sub(ts).Round(time.Second), s.maxAge)
	}
	if s.needScore {
		if a.Score == nil {
			return fmt.Errorf("%w: no score in answer", ErrInvalid)
		}
		if *a.Score < s.minScore {
			return fmt.Errorf("%w: score %.2f < %.2f", ErrLowScore, *a.Score, s.minScore)
		}
	}
	return nil
}

// errorFromCodes maps the providers' documented error codes to sentinels.
// When several codes are present the most operator-relevant wins:
// configuration, then availability, then replay, then the visitor's token.
func errorFromCodes(codes []string) error {
	var (
		sentinel = ErrInvalid
		rank     = 0
	)
	for _, c := range codes {
		r, e := codeSentinel(c)
		if r > rank {
			sentinel, rank = e, r
		}
	}
	if len(codes) == 0 {
		return fmt.Errorf("%w: provider answered success=false without error codes", ErrInvalid)
	}
	return fmt.Errorf("%w: provider error codes %q", sentinel, codes)
}

func codeSentinel(code string) (int, error) {
	switch code {
	case "missing-input-secret", "invalid-input-secret", "sitekey-secret-mismatch",
		"invalid-sitekey", "missing-sitekey", "bad-request", "invalid-keys",
		"invalid-idempotency-key", "not-using-dummy-passcode":
		return 5, ErrConfig
	case "internal-error":
		return 4, ErrUnavailable
	case "timeout-or-duplicate", "invalid-or-already-seen-response", "already-seen-response":
		return 3, ErrReplayed
	case "missing-input-response":
		return 2, ErrMissing
	case "invalid-input-response", "expired-input-response", "browser-error", "invalid-remoteip":
		return 1, ErrInvalid
	}
	return 1, ErrInvalid
}

// checkVerifyURL accepts https URLs, and http only to a loopback host (a
// local test server or sidecar): the secret must never cross a network in
// clear text.
func checkVerifyURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return err
	}
	if u.Host == "" || u.User != nil || u.Fragment != "" {
		return fmt.Errorf("%q must be an absolute URL without userinfo or fragment", raw)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		h := u.Hostname()
		if h == "localhost" {
			return nil
		}
		if ip, err := netip.ParseAddr(h); err == nil && ip.IsLoopback() {
			return nil
		}
		return fmt.Errorf("%q: plain http is only allowed to a loopback host", raw)
	}
	return fmt.Errorf("%q: scheme must be https", raw)
}

func validHostname(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	if _, err := netip.ParseAddr(h); err == nil {
		return true
	}
	if net.ParseIP(h) != nil {
		return true
	}
	for label := range strings.SplitSeq(h, ".") {
		if label == "" || len(label) > 63 {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				return false
			}
		}
	}
	return true
}

func isSpaceOrControl(r rune) bool { return r <= ' ' || r == 0x7f }

// uuid4 returns a random RFC 9562 version 4 UUID.
func uuid4(r io.Reader) (string, error) {
	var b [16]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return "", err
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:], nil
}
