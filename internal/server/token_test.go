package server

import (
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"
)

const tokenConfig = testConfig + `  slow:
    to: [support@example.test]
    captcha: {provider: none}
    form_token: {min_fill: 3s, max_age: 1h}
  tokenshare:
    kind: share
    captcha: {provider: none}
    form_token: {}
`

func TestFormToken(t *testing.T) {
	ts := newTestServer(t, tokenConfig)
	fetch := func() string {
		t.Helper()
		resp := ts.do(t, req{method: "GET", path: "/f/slow/token", header: map[string]string{"Origin": origin}})
		b := body(t, resp)
		if resp.StatusCode != 200 || resp.Header.Get("Cache-Control") != "no-store" || resp.Header.Get("Access-Control-Allow-Origin") != origin {
			t.Fatalf("token: %d %v %s", resp.StatusCode, resp.Header, b)
		}
		var tok struct{ Field, Token string }
		if err := json.Unmarshal([]byte(b), &tok); err != nil || tok.Field != "_fg_token" || tok.Token == "" {
			t.Fatalf("token answer %s (%v)", b, err)
		}
		return tok.Token
	}
	postWith := func(tok string) *http.Response {
		return ts.do(t, req{path: "/f/slow", header: jsonAccept,
			body: form("name", "Ada", "email", "ada@example.org", "message", "Hi", "_fg_token", tok)})
	}
	tok := fetch()
	steps := []struct {
		name    string
		advance time.Duration
		token   string
		status  int
		code    string
	}{
		{"a post right after the token was issued is too fast", 0, tok, 403, "too_fast"},
		{"the same token after min_fill is accepted", 4 * time.Second, tok, 200, ""},
		{"the token is single use", 0, tok, 403, "token_invalid"},
		{"a post without a token is refused", 0, "", 403, "token_invalid"},
		{"a forged token is refused", 0, strings.Repeat("A", len(tok)), 403, "token_invalid"},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			ts.clock.Advance(s.advance)
			resp := postWith(s.token)
			b := body(t, resp)
			if resp.StatusCode != s.status || (s.code != "" && !strings.Contains(b, `"code":"`+s.code+`"`)) {
				t.Errorf("%d %s, want %d %s", resp.StatusCode, b, s.status, s.code)
			}
		})
	}
	t.Run("an expired token is refused", func(t *testing.T) {
		old := fetch()
		ts.clock.Advance(2 * time.Hour)
		if resp := postWith(old); resp.StatusCode != 403 {
			t.Errorf("expired token: %d", resp.StatusCode)
		}
	})
	t.Run("forms without form_token have no token endpoint", func(t *testing.T) {
		if resp := ts.do(t, req{method: "GET", path: "/f/hello/token"}); resp.StatusCode != 404 {
			t.Errorf("%d", resp.StatusCode)
		}
	})
	t.Run("the demo page embeds a fresh working token per view", func(t *testing.T) {
		re := regexp.MustCompile(`<form id="form-slow"[\s\S]*?name="_fg_token" value="([^"]+)"`)
		page1 := body(t, ts.do(t, req{method: "GET", path: "/"}))
		page2 := body(t, ts.do(t, req{method: "GET", path: "/"}))
		m1, m2 := re.FindStringSubmatch(page1), re.FindStringSubmatch(page2)
		if m1 == nil || m2 == nil || m1[1] == m2[1] {
			t.Fatalf("demo page tokens %v %v", m1, m2)
		}
		ts.clock.Advance(5 * time.Second)
		if resp := postWith(m1[1]); resp.StatusCode != 200 {
			t.Errorf("demo page token: %d %s", resp.StatusCode, body(t, resp))
		}
	})
	t.Run("the token script is served", func(t *testing.T) {
		resp := ts.do(t, req{method: "GET", path: "/assets/" + TokenScript})
		if b := body(t, resp); resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Content-Type"), "javascript") || !strings.Contains(b, "data-formguard-token") {
			t.Errorf("%d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
		}
	})
}
