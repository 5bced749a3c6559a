package main

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/formguard/formguard/guard/captcha"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func TestExample(t *testing.T) {
	c := &clock{time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)}
	a := newTestApp(t, testConfig(t, ""), c.now, nil)
	do := func(method, path string, v url.Values) *httptest.ResponseRecorder {
		r := httptest.NewRequest(method, path, strings.NewReader(v.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.Header.Set("Origin", "http://127.0.0.1:8080")
		r.RemoteAddr = "192.0.2.1:1"
		w := httptest.NewRecorder()
		a.mux.ServeHTTP(w, r)
		return w
	}
	page := do("GET", "/", nil).Body.String()
	m := regexp.MustCompile(`name="_fg_token" value="([^"]+)"`).FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no form token in page:\n%s", page)
	}
	tok := m[1]
	msg := url.Values{"name": {"Ada"}, "email": {"ada@example.org"}, "message": {"Hi"}, "_fg_token": {tok}}

	t.Run("a contact post sent at once is too fast", func(t *testing.T) {
		if w := do("POST", "/contact", msg); w.Code != http.StatusForbidden {
			t.Fatalf("status %d", w.Code)
		}
	})
	c.t = c.t.Add(10 * time.Second)
	t.Run("a contact post with the page's token is accepted", func(t *testing.T) {
		if w := do("POST", "/contact", msg); w.Code != http.StatusOK {
			t.Fatalf("status %d %s", w.Code, w.Body)
		}
	})
	t.Run("the same token replayed is refused", func(t *testing.T) {
		if w := do("POST", "/contact", msg); w.Code != http.StatusForbidden {
			t.Fatalf("status %d", w.Code)
		}
	})
	t.Run("a contact post naming a recipient is refused", func(t *testing.T) {
		v := url.Values{"email": {"ada@example.org"}, "message": {"Hi"}, "to": {"x@evil.test"}}
		if w := do("POST", "/contact", v); w.Code != http.StatusBadRequest {
			t.Fatalf("status %d", w.Code)
		}
	})
	t.Run("a share post without proof-of-work is refused", func(t *testing.T) {
		if w := do("POST", "/share", url.Values{"to": {"a@x.test"}, "url": {"http://127.0.0.1:8080/"}}); w.Code != http.StatusBadRequest {
			t.Fatalf("status %d", w.Code)
		}
	})
	t.Run("a share post with a solved challenge is accepted once", func(t *testing.T) {
		var ch captcha.Challenge
		if err := json.Unmarshal(do("GET", "/share/challenge", nil).Body.Bytes(), &ch); err != nil {
			t.Fatal(err)
		}
		sol := solve(t, ch)
		v := url.Values{"to": {"a@x.test"}, "url": {"http://127.0.0.1:8080/"}, "altcha": {sol}}
		if w := do("POST", "/share", v); w.Code != http.StatusOK {
			t.Fatalf("status %d %s", w.Code, w.Body)
		}
		if w := do("POST", "/share", v); w.Code != http.StatusForbidden {
			t.Fatalf("replayed solution: status %d", w.Code)
		}
	})
	t.Run("the widget script is served", func(t *testing.T) {
		if w := do("GET", "/formguard/formguard-pow.js", nil); w.Code != 200 || !strings.Contains(w.Header().Get("Content-Type"), "javascript") {
			t.Fatalf("status %d type %q", w.Code, w.Header().Get("Content-Type"))
		}
	})
}

// solve does what the browser widget does: find number with
// SHA-256(salt+number) == challenge.
func solve(t *testing.T, ch captcha.Challenge) string {
	for n := int64(0); n <= ch.MaxNumber; n++ {
		sum := sha256.Sum256([]byte(ch.Salt + strconv.FormatInt(n, 10)))
		if hex.EncodeToString(sum[:]) == ch.Challenge {
			b, _ := json.Marshal(map[string]any{"algorithm": ch.Algorithm, "challenge": ch.Challenge, "number": n, "salt": ch.Salt, "signature": ch.Signature, "took": 1})
			return base64.StdEncoding.EncodeToString(b)
		}
	}
	t.Fatal("no solution")
	return ""
}
