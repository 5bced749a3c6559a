package attack

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/formguard/formguard/guard/captcha"
)

// The answer checks must be able to fail: each row is an answer that
// breaks (or keeps) the rule.
func TestAnswerChecks(t *testing.T) {
	e := &Env{Cfg: &ServiceConfig{Port: 8080}}
	loc := func(l string) http.Header { return http.Header{"Location": {l}} }
	for _, tc := range []struct {
		name  string
		check func(int, http.Header, []byte) (string, string)
		code  int
		h     http.Header
		body  string
		fails bool
	}{
		{"an accepted bad token is a bypass", mustRefuse("captcha_bypass"), 200, nil, "", true},
		{"a success redirect for a bad token is a bypass", mustRefuse("captcha_bypass"), 303, loc("/thanks"), "", true},
		{"a refused bad token is fine", mustRefuse("captcha_bypass"), 403, nil, "", false},
		{"an error redirect is a refusal", mustRefuse("captcha_bypass"), 303, loc("/err?error=captcha_invalid"), "", false},
		{"a redirect to another site fails", e.checkRedirect, 303, loc("https://evil.example/"), "", true},
		{"a scheme-relative redirect fails", e.checkRedirect, 303, loc("//evil.example/"), "", true},
		{"a backslash redirect fails", e.checkRedirect, 303, loc("/\\evil.example"), "", true},
		{"userinfo on our origin fails", e.checkRedirect, 303, loc("http://127.0.0.1:8080@evil.example/"), "", true},
		{"a same-site path is fine", e.checkRedirect, 303, loc("/thanks"), "", false},
		{"our own origin is fine", e.checkRedirect, 303, loc("http://127.0.0.1:8080/thanks"), "", false},
		{"CORS granted to another site fails", corsCheck, 204, http.Header{"Access-Control-Allow-Origin": {"https://evil.example"}}, "", true},
		{"CORS wildcard fails", corsCheck, 200, http.Header{"Access-Control-Allow-Origin": {"*"}}, "", true},
		{"no CORS header is fine", corsCheck, 204, http.Header{}, "", false},
		{"a honeypot hit refused reveals it", honeypotCheck, 400, nil, `{"code":"honeypot"}`, true},
		{"a honeypot hit answered as success is fine", honeypotCheck, 200, nil, `{"ok":true,"id":"x"}`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rule, detail := tc.check(tc.code, tc.h, []byte(tc.body))
			if (rule != "") != tc.fails {
				t.Fatalf("rule %q (%s), want failing=%v", rule, detail, tc.fails)
			}
		})
	}
}

// The form-token checks must be able to fail, like the answer checks.
func TestFormTokenChecks(t *testing.T) {
	problem := func(code string) string { return `{"type":"about:blank","status":403,"code":"` + code + `"}` }
	now := time.Now()
	young, old := now, now.Add(-2*TokenMinFill)
	for _, tc := range []struct {
		name  string
		check func(int, http.Header, []byte) (string, string)
		code  int
		body  string
		rule  string // "" when the answer keeps the rule
	}{
		{"an accepted bad token is a bypass", refusedAs(codeTokenInvalid), 200, `{"ok":true,"id":"x"}`, RuleTokenBypass},
		{"a success redirect for a bad token is a bypass", refusedAs(codeTokenInvalid), 303, "", RuleTokenBypass},
		{"a bad token refused as token_invalid is fine", refusedAs(codeTokenInvalid), 403, problem(codeTokenInvalid), ""},
		{"a bad token stopped by a rate limit went untested", refusedAs(codeTokenInvalid), 429, `{"code":"rate_limited"}`, RuleTokenRefusal},
		{"a bad token refused as too fast was not judged by its MAC", refusedAs(codeTokenInvalid), 403, problem(codeTooFast), RuleTokenRefusal},
		{"a post inside min_fill accepted is a bypass", tooFastCheck(&young), 200, `{"ok":true,"id":"x"}`, RuleTokenBypass},
		{"a post inside min_fill refused as too_fast is fine", tooFastCheck(&young), 403, problem(codeTooFast), ""},
		{"a post inside min_fill refused as token_invalid is wrong", tooFastCheck(&young), 403, problem(codeTokenInvalid), RuleTokenRefusal},
		{"a too-fast post answered after min_fill proves nothing", tooFastCheck(&old), 403, problem(codeTooFast), RuleTooFastUntested},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			if tc.code == 303 {
				h.Set("Location", "/thanks")
			}
			rule, detail := tc.check(tc.code, h, []byte(tc.body))
			if rule != tc.rule {
				t.Fatalf("rule %q (%s), want %q", rule, detail, tc.rule)
			}
		})
	}
}

// raceCheck fails unless exactly one raced post is accepted and the rest
// are refused as bad tokens; the one accepted becomes legitimate, so the
// audit insists on its delivery.
func TestRaceCheck(t *testing.T) {
	type ans struct {
		status int
		code   string
	}
	ok, dup, rl := ans{200, ""}, ans{403, codeTokenInvalid}, ans{429, "rate_limited"}
	for _, tc := range []struct {
		name    string
		answers []ans
		rules   []string
		legit   int // requests made legitimate
	}{
		{"one accepted, the rest refused as replays", []ans{dup, ok, dup, dup}, nil, 1},
		{"two accepted is a race lost", []ans{ok, dup, ok, dup}, []string{RuleTokenRace}, 0},
		{"none accepted is a race lost", []ans{dup, dup, dup}, []string{RuleTokenRace}, 0},
		{"a loser refused for another reason went untested", []ans{ok, rl, dup}, []string{RuleTokenRefusal}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := &Env{}
			var race Batch
			for i, a := range tc.answers {
				r := &Request{ID: i + 1, Class: "form-token", Status: a.status}
				race = append(race, &Attempt{Req: r})
			}
			raceCheck(e, race, func(i int) (int, string) { return tc.answers[i].status, tc.answers[i].code })
			var rules []string
			for _, v := range e.extra {
				rules = append(rules, v.Rule)
			}
			if fmt.Sprint(rules) != fmt.Sprint(tc.rules) {
				t.Fatalf("violations %v, want %v", e.extra, tc.rules)
			}
			legit := 0
			for _, a := range race {
				if a.Req.Legit {
					legit++
				}
			}
			if legit != tc.legit {
				t.Errorf("%d winners made legitimate, want %d", legit, tc.legit)
			}
		})
	}
}

// The harness restates the form-token layout to read issue times and
// change single bytes; check it against guard/captcha's own tokens, and
// that minted and mangled tokens verify (or not) as the harness assumes.
func TestFormTokenLayout(t *testing.T) {
	key := bytes.Repeat([]byte("s"), captcha.MinKeyLen)
	issued := time.UnixMilli(time.Now().UnixMilli()).Add(-time.Minute)
	tok, err := mintToken(key, CallbackForm, issued)
	if err != nil {
		t.Fatal(err)
	}
	got, err := tokenIssued(tok)
	if err != nil || !got.Equal(issued) {
		t.Fatalf("tokenIssued = %v, %v; want %v", got, err, issued)
	}
	v, err := captcha.NewFormToken(captcha.FormTokenConfig{Keys: [][]byte{key}, MinFill: TokenMinFill, MaxAge: TokenMaxAge})
	if err != nil {
		t.Fatal(err)
	}
	verify := func(tok, form string) error {
		return v.Verify(context.Background(), captcha.Request{Form: form, Token: tok})
	}
	for name, i := range map[string]int{"version": 0, "time": tokenTimeOff + 7, "nonce": tokenNonceAt, "mac": tokenMACAt + 31} {
		bad, err := flipByte(tok, i, 0x01)
		if err != nil {
			t.Fatal(err)
		}
		if err := verify(bad, CallbackForm); !errors.Is(err, captcha.ErrInvalid) {
			t.Errorf("%s byte flipped: %v, want ErrInvalid", name, err)
		}
	}
	if err := verify(tok, QuoteForm); !errors.Is(err, captcha.ErrInvalid) {
		t.Errorf("cross-form: %v, want ErrInvalid", err)
	}
	old, err := mintToken(key, CallbackForm, time.Now().Add(-TokenMaxAge-time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if err := verify(old, CallbackForm); !errors.Is(err, captcha.ErrExpired) {
		t.Errorf("stale: %v, want ErrExpired", err)
	}
	if err := verify(tok, CallbackForm); err != nil {
		t.Errorf("the minted control: %v", err)
	}
	if err := verify(tok, CallbackForm); !errors.Is(err, captcha.ErrReplayed) {
		t.Errorf("replayed: %v, want ErrReplayed", err)
	}
	fresh, err := mintToken(key, CallbackForm, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	back, ok := backdate(fresh)
	for i := 0; !ok && i < 100; i++ { // fresh has no suitable bit set
		fresh, _ = mintToken(key, CallbackForm, time.Now().Add(-time.Duration(i)*time.Second))
		back, ok = backdate(fresh)
	}
	if !ok {
		t.Fatal("backdate found no bit to clear in 100 tokens")
	}
	t0, _ := tokenIssued(fresh)
	t1, _ := tokenIssued(back)
	if d := t0.Sub(t1); d < 2*time.Second || d > 36*time.Minute {
		t.Errorf("backdated by %s, want 2s..35min", d)
	}
	if err := verify(back, CallbackForm); !errors.Is(err, captcha.ErrInvalid) {
		t.Errorf("backdated: %v, want ErrInvalid", err)
	}
}
