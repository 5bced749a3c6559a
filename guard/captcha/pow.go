package captcha

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Proof-of-work defaults.
const (
	// PoWField is the form field carrying the solution, as in ALTCHA.
	PoWField = "altcha"
	// PoWAlgorithm is the only algorithm issued and accepted.
	PoWAlgorithm = "SHA-256"
	// DefaultPoWMaxNumber is the default difficulty: the secret number is
	// uniform in [0, DefaultPoWMaxNumber], so a browser hashes half that on
	// average. Headless Chromium's Web Crypto does about 50k hashes a
	// second in one worker on a modest machine (docs/captcha.md), so 50k
	// takes about half a second on average and one second at worst.
	DefaultPoWMaxNumber = 50_000
	// DefaultPoWMaxNumberLimit caps escalated difficulty (100x default).
	DefaultPoWMaxNumberLimit = 100 * DefaultPoWMaxNumber
	// DefaultPoWExpiry is how long a challenge may be solved and submitted.
	DefaultPoWExpiry = 10 * time.Minute
	// powSaltBytes is the random part of the salt (96 bits).
	powSaltBytes = 12
	// maxPoWPayload caps the base64 payload read from a submission.
	maxPoWPayload = 4096
)

// PoWConfig configures the built-in proof-of-work.
type PoWConfig struct {
	// Keys are HMAC-SHA256 keys, each at least MinKeyLen bytes (required).
	// Keys[0] signs new challenges; all verify, for rotation.
	Keys [][]byte
	// MaxNumber is the base difficulty. Zero value: DefaultPoWMaxNumber.
	MaxNumber int64
	// MaxNumberLimit caps escalated difficulty. Zero value:
	// DefaultPoWMaxNumberLimit (or MaxNumber, if that is larger).
	MaxNumberLimit int64
	// Expiry is a challenge's lifetime. Zero value: DefaultPoWExpiry.
	Expiry time.Duration
	// Replay records solved challenges (hashed). Zero value: a private
	// NewMemoryReplay; share a Redis cache between instances.
	Replay ReplayCache
	// Escalate, when set, returns a difficulty multiplier for a client key
	// (e.g. from the rate limiter: 1 normally, 10 for a client being
	// limited). Results below 2 leave the difficulty unchanged. Zero
	// value: no escalation.
	Escalate func(clientKey string) int64
	// Now is the clock when Request.Now is zero. Zero value: time.Now.
	Now func() time.Time
	// Rand supplies salts and secret numbers. Zero value: crypto/rand.Reader.
	Rand io.Reader
}

// Challenge is a proof-of-work challenge in ALTCHA's JSON format. The
// client must find number in [0, MaxNumber] such that
// hex(SHA-256(Salt + decimal(number))) == Challenge.
// Signature is hex(HMAC-SHA256(key, Challenge)). The salt carries the
// expiry, form and difficulty as URL query parameters after a '?' and ends
// with '&', so digits cannot be moved between salt and number.
type Challenge struct {
	Algorithm string `json:"algorithm"`
	Challenge string `json:"challenge"`
	MaxNumber int64  `json:"maxnumber"`
	Salt      string `json:"salt"`
	Signature string `json:"signature"`
}

// PoWPayload is the solution a client submits in the altcha field, as
// base64 of this JSON.
type PoWPayload struct {
	Algorithm string `json:"algorithm"`
	Challenge string `json:"challenge"`
	Number    int64  `json:"number"`
	Salt      string `json:"salt"`
	Signature string `json:"signature"`
	Test      bool   `json:"test,omitempty"`
	Took      int64  `json:"took,omitempty"`
}

// PoW issues and verifies proof-of-work challenges. Verification is a
// single SHA-256 and one HMAC per key, compared in constant time. Safe for
// concurrent use.
type PoW struct {
	keys     [][]byte
	max      int64
	limit    int64
	expiry   time.Duration
	replay   ReplayCache
	escalate func(string) int64
	now      func() time.Time
	rand     io.Reader
}

var _ Verifier = (*PoW)(nil)

// NewPoW validates cfg and returns a proof-of-work verifier.
func NewPoW(cfg PoWConfig) (*PoW, error) {
	const prefix = "pow: "
	keys, err := checkKeys(prefix, cfg.Keys)
	if err != nil {
		return nil, err
	}
	if cfg.MaxNumber < 0 || cfg.MaxNumberLimit < 0 || cfg.Expiry < 0 {
		return nil, fmt.Errorf("%w: %sMaxNumber, MaxNumberLimit and Expiry must not be negative", ErrConfig, prefix)
	}
	p := &PoW{
		keys: keys, max: cfg.MaxNumber, limit: cfg.MaxNumberLimit, expiry: cfg.Expiry,
		replay: cfg.Replay, escalate: cfg.Escalate, now: cfg.Now, rand: cfg.Rand,
	}
	if p.max == 0 {
		p.max = DefaultPoWMaxNumber
	}
	if p.limit == 0 {
		p.limit = max(DefaultPoWMaxNumberLimit, p.max)
	}
	if p.limit < p.max {
		return nil, fmt.Errorf("%w: %sMaxNumberLimit %d is below MaxNumber %d", ErrConfig, prefix, p.limit, p.max)
	}
	if p.expiry == 0 {
		p.expiry = DefaultPoWExpiry
	}
	if p.now == nil {
		p.now = time.Now
	}
	if p.rand == nil {
		p.rand = rand.Reader
	}
	if p.replay == nil {
		p.replay = NewMemoryReplay(0, p.now)
	}
	return p, nil
}

// Field implements Verifier: "altcha".
func (p *PoW) Field() string { return PoWField }

// Challenge issues a fresh challenge for form. clientKey (the guard's
// hashed client key) only feeds Escalate.
func (p *PoW) Challenge(form, clientKey string) (Challenge, error) {
	if form == "" {
		return Challenge{}, fmt.Errorf("%w: pow: empty form name", ErrConfig)
	}
	maxN := p.max
	if p.escalate != nil {
		if m := p.escalate(clientKey); m > 1 {
			if m > p.limit/maxN {
				maxN = p.limit
			} else {
				maxN = min(maxN*m, p.limit)
			}
		}
	}
	var salt [powSaltBytes]byte
	if _, err := io.ReadFull(p.rand, salt[:]); err != nil {
		return Challenge{}, fmt.Errorf("%w: pow: random salt: %w", ErrUnavailable, err)
	}
	n, err := rand.Int(p.rand, big.NewInt(maxN+1))
	if err != nil {
		return Challenge{}, fmt.Errorf("%w: pow: random number: %w", ErrUnavailable, err)
	}
	params := url.Values{}
	params.Set("expires", strconv.FormatInt(p.now().Add(p.expiry).Unix(), 10))
	params.Set("form", form)
	params.Set("max", strconv.FormatInt(maxN, 10))
	s := hex.EncodeToString(salt[:]) + "?" + params.Encode() + "&"
	sum := sha256.Sum256([]byte(s + strconv.FormatInt(n.Int64(), 10)))
	ch := hex.EncodeToString(sum[:])
	return Challenge{
		Algorithm: PoWAlgorithm,
		Challenge: ch,
		MaxNumber: maxN,
		Salt:      s,
		Signature: hex.EncodeToString(hmacSHA256(p.keys[0], []byte(ch))),
	}, nil
}

// Verify implements Verifier. The payload's integrity (hash and
// signature) is checked before anything it says is believed, so unsigned
// input always yields ErrInvalid; then the form (ErrMismatch), the expiry
// (ErrExpired), the number's range and single use (ErrReplayed).
func (p *PoW) Verify(ctx context.Context, req Request) error {
	if req.Token == "" {
		return fmt.Errorf("pow: %w", ErrMissing)
	}
	pl, err := ParsePoWPayload(req.Token)
	if err != nil {
		return err
	}
	if pl.Test {
		return fmt.Errorf("pow: %w: test-mode payload", ErrInvalid)
	}
	chal, err := hex.DecodeString(pl.Challenge)
	if err != nil || len(chal) != sha256.Size {
		return fmt.Errorf("pow: %w: challenge is not a SHA-256 hex digest", ErrInvalid)
	}
	sig, err := hex.DecodeString(pl.Signature)
	if err != nil || len(sig) != sha256.Size {
		return fmt.Errorf("pow: %w: signature is not an HMAC-SHA256 hex digest", ErrInvalid)
	}
	sum := sha256.Sum256([]byte(pl.Salt + strconv.FormatInt(pl.Number, 10)))
	if !hmac.Equal(sum[:], chal) {
		return fmt.Errorf("pow: %w: number does not solve the challenge", ErrInvalid)
	}
	canonical := []byte(hex.EncodeToString(chal))
	signed := false
	for _, k := range p.keys {
		if hmac.Equal(hmacSHA256(k, canonical), sig) {
			signed = true
		}
	}
	if !signed {
		return fmt.Errorf("pow: %w: bad signature", ErrInvalid)
	}

	// From here on the salt is ours.
	params, err := saltParams(pl.Salt)
	if err != nil {
		return fmt.Errorf("pow: %w: %w", ErrInvalid, err)
	}
	if params.Get("form") != req.Form {
		return fmt.Errorf("pow: %w: challenge issued for form %q, submitted to %q", ErrMismatch, params.Get("form"), req.Form)
	}
	expires, err1 := strconv.ParseInt(params.Get("expires"), 10, 64)
	maxN, err2 := strconv.ParseInt(params.Get("max"), 10, 64)
	if err1 != nil || err2 != nil {
		return fmt.Errorf("pow: %w: salt lacks expires or max", ErrInvalid)
	}
	now := req.Now
	if now.IsZero() {
		now = p.now()
	}
	exp := time.Unix(expires, 0)
	if !now.Before(exp) {
		return fmt.Errorf("pow: %w: challenge expired %s ago", ErrExpired, now.Sub(exp).Round(time.Second))
	}
	if pl.Number < 0 || pl.Number > maxN || maxN > p.limit {
		return fmt.Errorf("pow: %w: number %d outside [0, %d]", ErrInvalid, pl.Number, min(maxN, p.limit))
	}
	if err := useOnce(ctx, p.replay, replayKey("altcha", string(canonical)), exp); err != nil {
		return fmt.Errorf("pow: %w", err)
	}
	return nil
}

// ParsePoWPayload decodes the altcha field: base64 (standard alphabet, as
// the browser's btoa produces) of the JSON PoWPayload, at most 4 KiB. It
// checks shape only; PoW.Verify checks meaning.
func ParsePoWPayload(token string) (PoWPayload, error) {
	var pl PoWPayload
	if len(token) > maxPoWPayload {
		return pl, fmt.Errorf("pow: %w: payload of %d bytes", ErrInvalid, len(token))
	}
	raw, err := decodeBase64(token)
	if err != nil {
		return pl, fmt.Errorf("pow: %w: payload is not base64", ErrInvalid)
	}
	if err := json.Unmarshal(raw, &pl); err != nil {
		return pl, fmt.Errorf("pow: %w: payload is not the expected JSON", ErrInvalid)
	}
	if pl.Algorithm != PoWAlgorithm {
		return pl, fmt.Errorf("pow: %w: algorithm %q, want %s", ErrInvalid, pl.Algorithm, PoWAlgorithm)
	}
	return pl, nil
}

// saltParams returns the query parameters a salt carries. Our salts have
// exactly one '?' and end with '&'.
func saltParams(salt string) (url.Values, error) {
	q := strings.IndexByte(salt, '?')
	if q < 0 || !strings.HasSuffix(salt, "&") {
		return nil, fmt.Errorf("salt %q carries no terminated parameters", salt)
	}
	return url.ParseQuery(salt[q+1 : len(salt)-1])
}

// ChallengeHandler serves fresh challenges for form as JSON (GET or HEAD),
// with Cache-Control: no-store so no cache ever hands one challenge to two
// clients. clientKey, when set, maps the request to the key passed to
// Escalate; it must use the guard's trusted client IP logic.
func (p *PoW) ChallengeHandler(form string, clientKey func(*http.Request) string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		key := ""
		if clientKey != nil {
			key = clientKey(r)
		}
		ch, err := p.Challenge(form, key)
		if err != nil {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = io.WriteString(w, `{"error":"unavailable"}`)
			return
		}
		body, _ := json.Marshal(ch)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		if r.Method == http.MethodHead {
			return
		}
		_, _ = w.Write(body)
	})
}

func decodeBase64(s string) ([]byte, error) {
	return base64.StdEncoding.Strict().DecodeString(s)
}
