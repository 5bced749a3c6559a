package attack

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"net/http"
	"strings"
	"sync"
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
// server.DeriveKey(server.DeriveKey(key_secret, "captcha"), "form token")
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

// tokenSource produces a form token at send time for an attempt.
type tokenSource = func(ctx context.Context, c *Client, a *Attempt) (string, error)

// fetched fetches a real token for form as the attempt's client and, with
// wait, holds the post until min_fill has passed; mut (may be nil)
// changes it afterwards; got (may be nil) receives it.
func fetched(form string, wait bool, mut func(string) (string, error), got func(tok string, issued time.Time)) tokenSource {
	return func(ctx context.Context, c *Client, a *Attempt) (string, error) {
		tok, err := c.FormToken(ctx, form, a.Peer, a.XFF)
		if err != nil {
			return "", err
		}
		issued, err := tokenIssued(tok)
		if err != nil {
			return "", err
		}
		if got != nil {
			got(tok, issued)
		}
		if wait {
			if err := waitFill(ctx, issued); err != nil {
				return "", err
			}
		}
		if mut != nil {
			return mut(tok)
		}
		return tok, nil
	}
}

// tokenPost is a contact post to form carrying FormTokenPlaceholder; a
// nil src sends no token field at all.
func (e *Env) tokenPost(form string, enc Enc, legit bool, note string, src tokenSource) *Attempt {
	r := e.NewRequest("form-token", form)
	r.Sender = visitor(r)
	r.Legit = legit
	r.Note = fmt.Sprintf("%s %s", enc, note)
	kvs := []KV{{"name", "Ada"}, {"email", r.Sender}, {"message", "Please call me back. " + r.Marker}}
	if src != nil {
		kvs = append(kvs, KV{captcha.FormTokenField, FormTokenPlaceholder})
	}
	a := e.Post(r, enc, kvs...)
	a.FormToken = src
	return a
}

// genFormToken attacks the signed single-use form tokens of the callback
// and quote forms (form_token, no CAPTCHA). Every bad token must be
// refused outright, as a bad token (403 token_invalid, or too_fast for a
// post inside min_fill), and send nothing; the legitimate controls (a real
// token posted after min_fill, a too-fast token resubmitted later, a token
// minted with the service's key) must be delivered, which proves the bad
// ones fail for what is wrong with them.
func genFormToken(e *Env) []Batch {
	var first, second, third, race Batch
	bad := func(enc Enc, note, code string, src tokenSource) {
		a := e.tokenPost(CallbackForm, enc, false, note, src)
		a.Check = refusedAs(code)
		first = append(first, a)
	}
	fixed := func(s string) tokenSource {
		return func(context.Context, *Client, *Attempt) (string, error) { return s, nil }
	}
	minted := func(key []byte, form string, age time.Duration) tokenSource {
		return func(context.Context, *Client, *Attempt) (string, error) {
			return mintToken(key, form, time.Now().Add(-age))
		}
	}
	flip := func(i int, mask byte) func(string) (string, error) {
		return func(tok string) (string, error) { return flipByte(tok, i, mask) }
	}
	key := e.formTokenKey()
	unsigned := make([]byte, tokenLen)
	unsigned[0] = 1
	binary.BigEndian.PutUint64(unsigned[tokenTimeOff:], uint64(time.Now().Add(-time.Minute).UnixMilli()))

	for _, enc := range e.encs() {
		// Legitimate control: a real token posted after min_fill.
		first = append(first, e.tokenPost(CallbackForm, enc, true, "real token after min_fill", fetched(CallbackForm, true, nil, nil)))
		// Missing, empty and garbage.
		bad(enc, "no token field", codeTokenInvalid, nil)
		for _, g := range []string{"", "not a token!", "null", strings.Repeat("A", 8000),
			"AQAAAZNfakefakefakefakefakefakefakefakefakefakefakefakefakefakefake",
			strings.Repeat("A", base64.RawURLEncoding.EncodedLen(tokenLen)),
			base64.RawURLEncoding.EncodeToString(unsigned)} {
			bad(enc, fmt.Sprintf("garbage %.24q (%d bytes)", g, len(g)), codeTokenInvalid, fixed(g))
		}
		// Forged: validly formatted, old enough, signed with a wrong key:
		// a random one, and the service's own proof-of-work key.
		bad(enc, "forged: another key", codeTokenInvalid, minted(bytes.Repeat([]byte("k"), captcha.MinKeyLen), CallbackForm, 5*time.Second))
		bad(enc, "forged: the service's PoW key", codeTokenInvalid, minted(deriveKey([]byte(e.Svc.Secret), "pow"), CallbackForm, 5*time.Second))
		// Stale and future: validly signed with the service's key. The
		// control minted the same way, but fresh, must be delivered.
		first = append(first, e.tokenPost(CallbackForm, enc, true, "minted with the service's key, fresh", minted(key, CallbackForm, TokenMinFill+2*time.Second)))
		bad(enc, "stale: max_age + 1m", codeTokenInvalid, minted(key, CallbackForm, TokenMaxAge+time.Minute))
		bad(enc, "stale: 25h", codeTokenInvalid, minted(key, CallbackForm, 25*time.Hour))
		bad(enc, "issued 10m in the future", codeTokenInvalid, minted(key, CallbackForm, -10*time.Minute))
		// Tampered: one byte of a real token changed, posted after
		// min_fill so that only the MAC can refuse it.
		bad(enc, "tampered: version byte", codeTokenInvalid, fetched(CallbackForm, true, flip(0, 0x01), nil))
		bad(enc, "tampered: nonce byte", codeTokenInvalid, fetched(CallbackForm, true, flip(tokenNonceAt+5, 0x20), nil))
		bad(enc, "tampered: MAC byte", codeTokenInvalid, fetched(CallbackForm, true, flip(tokenMACAt+31, 0x01), nil))
		// Backdated, posted at once: with the issue time outside the MAC
		// this would skip min_fill.
		bad(enc, "tampered: issue time backdated, posted at once", codeTokenInvalid, func(ctx context.Context, c *Client, a *Attempt) (string, error) {
			for i := 0; i < 20; i++ {
				tok, err := c.FormToken(ctx, CallbackForm, a.Peer, a.XFF)
				if err != nil {
					return "", err
				}
				if b, ok := backdate(tok); ok {
					return b, nil
				}
			}
			return "", fmt.Errorf("attack: no token with a time bit to clear in 20 tries")
		})
		// Cross-form: a real token, and a minted one, for quote.
		bad(enc, "cross-form: quote's token", codeTokenInvalid, fetched(QuoteForm, true, nil, nil))
		bad(enc, "cross-form: minted for quote", codeTokenInvalid, minted(key, QuoteForm, TokenMinFill+2*time.Second))
		// Too fast: a real token posted right after it was issued. The
		// answer is judged against the issue time the token carries.
		var issued time.Time
		a := e.tokenPost(CallbackForm, enc, false, "too fast: posted right after issue", fetched(CallbackForm, false, nil, func(_ string, at time.Time) { issued = at }))
		a.Check = tooFastCheck(&issued)
		first = append(first, a)
	}
	// Too fast, then the same token resubmitted after min_fill by the same
	// client: too_fast leaves the token unused, so this is delivered.
	{
		var tok string
		var issued time.Time
		enc := e.encs()[0]
		a := e.tokenPost(CallbackForm, enc, false, "too fast, to resubmit", fetched(CallbackForm, false, nil, func(t string, at time.Time) { tok, issued = t, at }))
		a.Check = tooFastCheck(&issued)
		first = append(first, a)
		again := e.tokenPost(CallbackForm, enc, true, "the too-fast token resubmitted after min_fill", func(ctx context.Context, _ *Client, _ *Attempt) (string, error) {
			if tok == "" {
				return "", fmt.Errorf("attack: the too-fast post captured no token")
			}
			return tok, waitFill(ctx, issued)
		})
		again.XFF, again.Req.Client = a.XFF, a.Req.Client
		second = append(second, again)
	}
	// Replays: a legitimate post, then its token again from other clients,
	// once alone and then five at once. Exactly one is accepted in all.
	{
		var tok string
		first = append(first, e.tokenPost(CallbackForm, e.encs()[0], true, "real token, to replay", fetched(CallbackForm, true, nil, func(t string, _ time.Time) { tok = t })))
		replay := func(context.Context, *Client, *Attempt) (string, error) {
			if tok == "" {
				return "", fmt.Errorf("attack: the replayed post captured no token")
			}
			return tok, nil
		}
		for i := 0; i < 6; i++ {
			a := e.tokenPost(CallbackForm, e.encs()[0], false, fmt.Sprintf("replay %d of a delivered post's token", i+1), replay)
			a.Check = refusedAs(codeTokenInvalid)
			if i == 0 {
				second = append(second, a)
			} else {
				third = append(third, a)
			}
		}
	}
	// A race: one fresh token, old enough, posted by six clients at the
	// same instant. Exactly one may be accepted (and must be delivered);
	// the rest are refused as token_invalid.
	{
		var once sync.Once
		var tok string
		var tokErr error
		ready := func(ctx context.Context, c *Client, a *Attempt) (string, error) {
			once.Do(func() {
				var issued time.Time
				if tok, tokErr = c.FormToken(ctx, CallbackForm, a.Peer, a.XFF); tokErr != nil {
					return
				}
				if issued, tokErr = tokenIssued(tok); tokErr == nil {
					tokErr = waitFill(ctx, issued)
				}
			})
			return tok, tokErr
		}
		type answer struct {
			status int
			code   string
		}
		answers := make([]answer, 6)
		for i := range answers {
			a := e.tokenPost(CallbackForm, e.encs()[0], false, fmt.Sprintf("race %d of 6 on one fresh token", i+1), ready)
			a.Check = func(status int, _ http.Header, body []byte) (string, string) {
				answers[i] = answer{status, problemCode(body)}
				return "", ""
			}
			race = append(race, a)
		}
		e.AfterSend(func() { raceCheck(e, race, func(i int) (int, string) { return answers[i].status, answers[i].code }) })
	}
	e.Shuffle(first)
	e.Shuffle(third)
	return []Batch{first, second, third, race}
}

// raceCheck judges attempts that posted one token at once: exactly one
// accepted (it becomes legitimate, so the audit insists it is delivered),
// every other one refused 403 token_invalid.
func raceCheck(e *Env, race Batch, answer func(i int) (status int, code string)) {
	var winners []*Request
	for i, a := range race {
		status, code := answer(i)
		if a.Req.Accepted() {
			winners = append(winners, a.Req)
			continue
		}
		if status != http.StatusForbidden || code != codeTokenInvalid {
			e.Violate(a.Req, RuleTokenRefusal, fmt.Sprintf("a raced token refused %d %q, want 403 %q", status, code, codeTokenInvalid))
		}
	}
	if len(winners) != 1 {
		ids := make([]int, len(winners))
		for i, r := range winners {
			ids[i] = r.ID
		}
		e.Violate(race[0].Req, RuleTokenRace, fmt.Sprintf("one token posted by %d clients at once was accepted %d times (requests %v), want exactly once", len(race), len(winners), ids))
		return
	}
	winners[0].Legit = true
}
