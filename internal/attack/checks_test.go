package attack

import (
	"net/http"
	"testing"
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
