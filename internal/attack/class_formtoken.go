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
	var first Batch
	for _, enc := range e.encs() {
		first = append(first, e.badTokens(enc)...)
	}
	tooFast, resubmit := e.tooFastResubmit()
	orig, replays := e.tokenReplays()
	first = append(first, tooFast, orig)
	second := Batch{resubmit, replays[0]}
	race := e.tokenRace()
	e.Shuffle(first)
	third := replays[1:]
	e.Shuffle(third)
	return []Batch{first, second, third, race}
}

// mintedToken mints a token for form with key, issued age ago.
func mintedToken(key []byte, form string, age time.Duration) tokenSource {
	return func(context.Context, *Client, *Attempt) (string, error) {
		return mintToken(key, form, time.Now().Add(-age))
	}
}

// flipped changes byte i of a real token with mask.
func flipped(i int, mask byte) func(string) (string, error) {
	return func(tok string) (string, error) { return flipByte(tok, i, mask) }
}

// backdated fetches real tokens until one has an issue-time bit to clear,
// and clears it: with the issue time outside the MAC, the token posted at
// once would skip min_fill.
func backdated(ctx context.Context, c *Client, a *Attempt) (string, error) {
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
}

// badTokens are the bad tokens of one encoding, with the legitimate
// controls that prove them refused for what is wrong with them.
func (e *Env) badTokens(enc Enc) Batch {
	var b Batch
	bad := func(note string, src tokenSource) {
		a := e.tokenPost(CallbackForm, enc, false, note, src)
		a.Check = refusedAs(codeTokenInvalid)
		b = append(b, a)
	}
	key := e.formTokenKey()
	unsigned := make([]byte, tokenLen)
	unsigned[0] = 1
	binary.BigEndian.PutUint64(unsigned[tokenTimeOff:], uint64(time.Now().Add(-time.Minute).UnixMilli()))

	// Legitimate control: a real token posted after min_fill.
	b = append(b, e.tokenPost(CallbackForm, enc, true, "real token after min_fill", fetched(CallbackForm, true, nil, nil)))
	// Missing, empty and garbage.
	bad("no token field", nil)
	for _, g := range []string{"", "not a token!", "null", strings.Repeat("A", 8000),
		"AQAAAZNfakefakefakefakefakefakefakefakefakefakefakefakefakefakefake",
		strings.Repeat("A", base64.RawURLEncoding.EncodedLen(tokenLen)),
		base64.RawURLEncoding.EncodeToString(unsigned)} {
		bad(fmt.Sprintf("garbage %.24q (%d bytes)", g, len(g)), fixedToken(g))
	}
	// Forged: validly formatted, old enough, signed with a wrong key:
	// a random one, and the service's own proof-of-work key.
	bad("forged: another key", mintedToken(bytes.Repeat([]byte("k"), captcha.MinKeyLen), CallbackForm, 5*time.Second))
	bad("forged: the service's PoW key", mintedToken(deriveKey([]byte(e.Svc.Secret), "pow"), CallbackForm, 5*time.Second))
	// Stale and future: validly signed with the service's key. The
	// control minted the same way, but fresh, must be delivered.
	b = append(b, e.tokenPost(CallbackForm, enc, true, "minted with the service's key, fresh", mintedToken(key, CallbackForm, TokenMinFill+2*time.Second)))
	bad("stale: max_age + 1m", mintedToken(key, CallbackForm, TokenMaxAge+time.Minute))
	bad("stale: 25h", mintedToken(key, CallbackForm, 25*time.Hour))
	bad("issued 10m in the future", mintedToken(key, CallbackForm, -10*time.Minute))
	// Tampered: one byte of a real token changed, posted after
	// min_fill so that only the MAC can refuse it.
	bad("tampered: version byte", fetched(CallbackForm, true, flipped(0, 0x01), nil))
	bad("tampered: nonce byte", fetched(CallbackForm, true, flipped(tokenNonceAt+5, 0x20), nil))
	bad("tampered: MAC byte", fetched(CallbackForm, true, flipped(tokenMACAt+31, 0x01), nil))
	bad("tampered: issue time backdated, posted at once", backdated)
	// Cross-form: a real token, and a minted one, for quote.
	bad("cross-form: quote's token", fetched(QuoteForm, true, nil, nil))
	bad("cross-form: minted for quote", mintedToken(key, QuoteForm, TokenMinFill+2*time.Second))
	// Too fast: a real token posted right after it was issued. The
	// answer is judged against the issue time the token carries.
	var issued time.Time
	a := e.tokenPost(CallbackForm, enc, false, "too fast: posted right after issue", fetched(CallbackForm, false, nil, func(_ string, at time.Time) { issued = at }))
	a.Check = tooFastCheck(&issued)
	return append(b, a)
}

// tooFastResubmit: a post too fast, then the same token resubmitted after
// min_fill by the same client (sent after the first): too_fast leaves the
// token unused, so the resubmission is delivered.
func (e *Env) tooFastResubmit() (tooFast, again *Attempt) {
	var tok string
	var issued time.Time
	enc := e.encs()[0]
	tooFast = e.tokenPost(CallbackForm, enc, false, "too fast, to resubmit", fetched(CallbackForm, false, nil, func(t string, at time.Time) { tok, issued = t, at }))
	tooFast.Check = tooFastCheck(&issued)
	again = e.tokenPost(CallbackForm, enc, true, "the too-fast token resubmitted after min_fill", func(ctx context.Context, _ *Client, _ *Attempt) (string, error) {
		if tok == "" {
			return "", fmt.Errorf("attack: the too-fast post captured no token")
		}
		return tok, waitFill(ctx, issued)
	})
	again.XFF, again.Req.Client = tooFast.XFF, tooFast.Req.Client
	return tooFast, again
}

// tokenReplays: a legitimate post, then its token again from six other
// clients (to send once alone, then five at once). Exactly one is
// accepted in all.
func (e *Env) tokenReplays() (*Attempt, Batch) {
	var tok string
	orig := e.tokenPost(CallbackForm, e.encs()[0], true, "real token, to replay", fetched(CallbackForm, true, nil, func(t string, _ time.Time) { tok = t }))
	replay := func(context.Context, *Client, *Attempt) (string, error) {
		if tok == "" {
			return "", fmt.Errorf("attack: the replayed post captured no token")
		}
		return tok, nil
	}
	var replays Batch
	for i := 0; i < 6; i++ {
		a := e.tokenPost(CallbackForm, e.encs()[0], false, fmt.Sprintf("replay %d of a delivered post's token", i+1), replay)
		a.Check = refusedAs(codeTokenInvalid)
		replays = append(replays, a)
	}
	return orig, replays
}

// tokenRace: one fresh token, old enough, posted by six clients at the
// same instant. Exactly one may be accepted (and must be delivered); the
// rest are refused as token_invalid (raceCheck, after the run).
func (e *Env) tokenRace() Batch {
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
	var race Batch
	for i := range answers {
		a := e.tokenPost(CallbackForm, e.encs()[0], false, fmt.Sprintf("race %d of 6 on one fresh token", i+1), ready)
		a.Check = func(status int, _ http.Header, body []byte) (string, string) {
			answers[i] = answer{status, problemCode(body)}
			return "", ""
		}
		race = append(race, a)
	}
	e.AfterSend(func() { raceCheck(e, race, func(i int) (int, string) { return answers[i].status, answers[i].code }) })
	return race
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
