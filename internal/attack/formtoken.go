package attack

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"net/http"
	"time"

	"github.com/formguard/formguard/guard/captcha"
)

// Form-token rules, stable strings like the audit's.
const (
	// RuleTokenBypass: a missing, garbage, forged, tampered, too fast,
	// replayed, cross-form, stale or future form token was accepted.
	RuleTokenBypass = "token_bypass"
	// RuleTokenRefusal: a bad form token was refused, but not as a bad
	// token (another check stopped the post, so the token went untested),
	// or a too-fast post was refused as something other than too_fast.
	RuleTokenRefusal = "token_refusal"
	// RuleTokenRace: one fresh token posted by several clients at once was
	// accepted other than exactly once.
	RuleTokenRace = "token_race"
	// RuleTooFastUntested: the too-fast post was answered only after
	// min_fill had passed, so the answer proves nothing either way (a
	// machine too loaded to run the attack; rerun it).
	RuleTooFastUntested = "too_fast_untested"
)

// Problem codes the service answers bad form tokens with
// (docs/configuration.md).
const (
	codeTokenInvalid = "token_invalid"
	codeTooFast      = "too_fast"
)

// Form-token layout (guard/captcha/formtoken.go), restated here so that a
// change of format breaks the harness's minted controls loudly: base64url
// without padding of version(1) | issued Unix milliseconds(8, big endian) |
// nonce(16) | HMAC-SHA256(32).
const (
	tokenLen     = 1 + 8 + 16 + 32
	tokenTimeOff = 1
	tokenNonceAt = 9
	tokenMACAt   = 25
)

// tokenIssued reads the issue time a form token carries. It is readable
// without the key: the MAC, not secrecy, protects it.
func tokenIssued(tok string) (time.Time, error) {
	raw, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil || len(raw) != tokenLen {
		return time.Time{}, fmt.Errorf("attack: %q is not a form token", tok)
	}
	return time.UnixMilli(int64(binary.BigEndian.Uint64(raw[tokenTimeOff : tokenTimeOff+8]))), nil
}

// flipByte returns tok with byte i of its decoded form XORed with mask,
// re-encoded: still validly formatted, one byte changed.
func flipByte(tok string, i int, mask byte) (string, error) {
	raw, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil || len(raw) != tokenLen {
		return "", fmt.Errorf("attack: %q is not a form token", tok)
	}
	raw[i] ^= mask
	return base64.RawURLEncoding.EncodeToString(raw), nil
}

// backdate clears one set bit in the issue time's low bytes, so the token
// claims to be 2 s to 35 min older than it is (below max_age), changing
// one byte. ok is false when no such bit is set (fetch another token).
func backdate(tok string) (string, bool) {
	raw, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil || len(raw) != tokenLen {
		return "", false
	}
	// The time is big endian: its last byte counts milliseconds, the one
	// before 256 ms units (bits 0x08..0x80: 2 s .. 33 s), the one before
	// that 65.5 s units (bits 0x01..0x20: 65 s .. 35 min).
	for _, c := range []struct {
		i    int
		bits []byte
	}{{tokenTimeOff + 6, []byte{0x80, 0x40, 0x20, 0x10, 0x08}}, {tokenTimeOff + 5, []byte{0x01, 0x02, 0x04, 0x08, 0x10, 0x20}}} {
		for _, b := range c.bits {
			if raw[c.i]&b != 0 {
				raw[c.i] &^= b
				return base64.RawURLEncoding.EncodeToString(raw), true
			}
		}
	}
	return "", false
}

// formTokenKey is the key the service signs form tokens with:
// config.DeriveKey(config.DeriveKey(key_secret, "captcha"), "form token")
// (internal/server: service.go derives the captcha master from the
// config's key_secret, build.go the form-token key from that). It is not
// derived from FORMGUARD_CAPTCHA_SECRET; the harness sets key_secret
// through KeySecretEnv, so it knows the master.
func (e *Env) formTokenKey() []byte {
	return deriveKey(deriveKey([]byte(e.Svc.KeySecret), "captcha"), "form token")
}

// mintToken signs a token for form as if issued at issued, with key.
func mintToken(key []byte, form string, issued time.Time) (string, error) {
	t, err := captcha.NewFormToken(captcha.FormTokenConfig{Keys: [][]byte{key}, MinFill: -1,
		Now: func() time.Time { return issued }})
	if err != nil {
		return "", err
	}
	return t.Issue(form)
}

// waitFill sleeps until a token issued at issued is old enough to post.
func waitFill(ctx context.Context, issued time.Time) error {
	d := time.Until(issued.Add(TokenMinFill + 100*time.Millisecond))
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// refusedAs fails an answer that accepts a bad token (token_bypass) or
// refuses it as anything but 403 with code: a post stopped by some other
// check never tested its token.
func refusedAs(code string) func(int, http.Header, []byte) (string, string) {
	accepted := mustRefuse(RuleTokenBypass)
	return func(status int, h http.Header, body []byte) (string, string) {
		if rule, detail := accepted(status, h, body); rule != "" {
			return rule, detail
		}
		if got := problemCode(body); status != http.StatusForbidden || got != code {
			return RuleTokenRefusal, fmt.Sprintf("refused %d %q, want 403 %q: %.120q", status, got, code, body)
		}
		return "", ""
	}
}

// tooFastCheck judges a post sent right after its token was issued: when
// it was answered before issued+min_fill (so the service, which decides
// before answering, saw a younger token), it must be refused 403
// too_fast. *issued is the time the token carries; age is measured when
// the answer is judged, so it can only overstate the age the service saw.
func tooFastCheck(issued *time.Time) func(int, http.Header, []byte) (string, string) {
	refused := refusedAs(codeTooFast)
	return func(status int, h http.Header, body []byte) (string, string) {
		if age := time.Since(*issued); age >= TokenMinFill {
			return RuleTooFastUntested, fmt.Sprintf("answered %d %s after the token was issued, past min_fill %s: the post was not too fast, nothing proven",
				status, age.Round(time.Millisecond), TokenMinFill)
		}
		return refused(status, h, body)
	}
}
