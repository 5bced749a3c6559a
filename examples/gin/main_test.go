package main

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/formguard/formguard/guard/captcha"
	"github.com/gin-gonic/gin"
)

func TestGinMiddleware(t *testing.T) {
	gin.SetMode(gin.TestMode)
	router, _, _ := newTestRouter(t, nil)
	w := httptest.NewRecorder()
	router.ServeHTTP(w, httptest.NewRequest("GET", "/share/challenge", nil))
	var ch captcha.Challenge
	if err := json.Unmarshal(w.Body.Bytes(), &ch); err != nil {
		t.Fatalf("challenge: %v (%s)", err, w.Body)
	}
	solution := solve(t, ch)
	tests := []struct {
		name   string
		path   string
		form   url.Values
		status int
		code   string
	}{
		{"a valid contact post is accepted", "/contact", url.Values{"name": {"Ada"}, "email": {"ada@example.org"}, "message": {"Hi"}}, 200, ""},
		{"a contact post naming a recipient is refused", "/contact", url.Values{"email": {"ada@example.org"}, "message": {"Hi"}, "to": {"x@evil.test"}}, 400, "forbidden_field"},
		{"a share post to two people is refused", "/share", url.Values{"to": {"a@x.test,b@x.test"}, "url": {"http://127.0.0.1:8080/"}}, 422, "too_many_recipients"},
		{"a share post without proof-of-work is refused", "/share", url.Values{"to": {"a@x.test"}, "url": {"http://127.0.0.1:8080/"}}, 400, "captcha_missing"},
		{"a share post with a solved challenge is accepted", "/share", url.Values{"to": {"a@x.test"}, "url": {"http://127.0.0.1:8080/"}, "altcha": {solution}}, 200, ""},
		{"the same solution replayed is refused", "/share", url.Values{"to": {"b@x.test"}, "url": {"http://127.0.0.1:8080/"}, "altcha": {solution}}, 403, "captcha_invalid"},
		{"a honeypot hit looks like success", "/contact", url.Values{"email": {"a@b.test"}, "message": {"x"}, "_gotcha": {"bot"}}, 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", tt.path, strings.NewReader(tt.form.Encode()))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			r.Header.Set("Origin", "http://127.0.0.1:8080")
			r.Header.Set("Accept", "application/json")
			w := httptest.NewRecorder()
			router.ServeHTTP(w, r)
			var body struct {
				Code string `json:"code"`
				OK   bool   `json:"ok"`
			}
			_ = json.Unmarshal(w.Body.Bytes(), &body)
			if w.Code != tt.status || body.Code != tt.code || (tt.status == 200) != body.OK {
				t.Fatalf("status %d body %s", w.Code, w.Body)
			}
		})
	}
}

// solve does what the browser widget does.
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

// TestGinHoneypotAnswerIsAnAccept posts a real accept and a honeypot hit
// over TCP and requires the answers to be the same, status, every header
// and body (the submission id aside), for JSON and for browser clients.
func TestGinHoneypotAnswerIsAnAccept(t *testing.T) {
	router, _, cfg := newTestRouter(t, nil)
	srv := httptest.NewServer(router)
	defer srv.Close()
	good := url.Values{"name": {"Ada"}, "email": {"ada@example.org"}, "message": {"Hi"}}
	for _, tc := range []struct {
		name, accept string
		extra        url.Values
		wantStatus   int
	}{
		{"JSON", "application/json", nil, 200},
		{"thank-you page", "text/html", nil, 200},
		{"_next redirect", "text/html", url.Values{"_next": {"/sent"}}, 303},
	} {
		t.Run(tc.name, func(t *testing.T) {
			post := func(honeypot bool) Answer {
				v := url.Values{}
				for k, vs := range good {
					v[k] = vs
				}
				for k, vs := range tc.extra {
					v[k] = vs
				}
				if honeypot {
					v.Set("_gotcha", "x")
				}
				req, _ := http.NewRequest("POST", srv.URL+"/contact", strings.NewReader(v.Encode()))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				req.Header.Set("Origin", "http://"+cfg.Addr)
				req.Header.Set("Accept", tc.accept)
				client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
				resp, err := client.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				return readAnswer(t, resp)
			}
			accept := post(false)
			if accept.Status != tc.wantStatus {
				t.Fatalf("the accept: %d %s", accept.Status, accept.Body)
			}
			sameAnswer(t, accept, post(true))
		})
	}
}
