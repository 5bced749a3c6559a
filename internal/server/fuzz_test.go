package server

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path"
	"strings"
	"testing"
)

const fuzzConfig = `
site: {domain: example.test, name: Example, origins: ["http://site.test"]}
mail:
  from: no-reply@example.test
  dkim: {key_file: ` + testKey + `}
limits: {global: 1000000000/s}
forms:
  hello:
    to: [support@example.test]
    captcha: {provider: none}
    extra_fields: [phone]
    limits: {per_ip: 1000000000/s, per_sender: 1000000000/s, per_form: 1000000000/s}
  share:
    kind: share
    max_recipients: 3
    captcha: {provider: none}
    allow_no_bot_defence: true
    limits: {per_ip: 1000000000/s, per_sender: 1000000000/s, per_recipient: 1000000000/s, per_form: 1000000000/s}
`

// FuzzSubmit throws arbitrary posts at the whole handler and checks the
// service's promises: it never panics or answers 500, every JSON answer
// is well-formed with a stable code, and a message is queued exactly when
// a post is answered 200 with an id (honeypot hits: 200, nothing queued).
func FuzzSubmit(f *testing.F) {
	f.Add("hello", "application/x-www-form-urlencoded", "name=Ada&email=ada%40example.org&message=Hi", "http://site.test")
	f.Add("hello", "application/json", `{"name":"Ada","email":"ada@example.org","message":"Hi","phone":"1"}`, "http://site.test")
	f.Add("share", "application/x-www-form-urlencoded", "to=a%40example.org,b%40example.net&url=http%3A%2F%2Fsite.test%2Fx", "http://site.test")
	f.Add("hello", "multipart/form-data; boundary=X", "--X\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\nAda\r\n--X--\r\n", "http://site.test")
	f.Add("hello", "application/x-www-form-urlencoded", "name=Ada%0d%0aBcc:%20x%40y.test&email=ada%40example.org&message=x", "http://site.test")
	f.Add("nope", "text/plain", "\x00\xff", "null")
	ts := newTestServer(f, fuzzConfig)
	f.Fuzz(func(t *testing.T, form, ctype, body, origin string) {
		if strings.Contains(form, "/") || len(form) > 100 {
			return // not a single path segment
		}
		target := "/f/" + form
		r := httptest.NewRequest("POST", "/f/x", strings.NewReader(body))
		r.URL.Path = target
		r.RemoteAddr = "192.0.2.10:5555"
		r.Header.Set("Content-Type", ctype)
		r.Header.Set("Origin", origin)
		r.Header.Set("Accept", "application/json")
		w := httptest.NewRecorder()
		ts.ServeHTTP(w, r)
		queued := len(ts.queued(t))
		if path.Clean(target) != target && (form != "" || target != "/f/") {
			// ServeMux redirects to the clean path; nothing is decided.
			if (w.Code != http.StatusMovedPermanently && w.Code != http.StatusTemporaryRedirect && w.Code != http.StatusPermanentRedirect) || queued != 0 {
				t.Fatalf("unclean path %q: %d, queued %d", target, w.Code, queued)
			}
			return
		}
		if w.Code >= 500 && w.Code != http.StatusServiceUnavailable {
			t.Fatalf("status %d for %q %q: %s", w.Code, ctype, body, w.Body)
		}
		var ans struct {
			OK   bool   `json:"ok"`
			ID   string `json:"id"`
			Code string `json:"code"`
		}
		if err := json.Unmarshal(w.Body.Bytes(), &ans); err != nil {
			t.Fatalf("answer is not JSON (%v): %q", err, w.Body)
		}
		switch {
		case w.Code == 200 && ans.OK && ans.ID != "":
			if queued > 1 {
				t.Fatalf("one post queued %d messages", queued)
			}
		case w.Code == 200:
			t.Fatalf("200 without ok/id: %s", w.Body)
		default:
			if ans.Code == "" {
				t.Fatalf("rejection without a code: %s", w.Body)
			}
			if queued != 0 {
				t.Fatalf("a rejected post (%s) queued %d messages", ans.Code, queued)
			}
		}
		// Drain what was queued so each input is judged alone.
		msgs, _ := ts.outbox.Claim(t.Context(), ts.clock.Now().Add(1e18), 100)
		for _, m := range msgs {
			_ = ts.outbox.Ack(t.Context(), m)
		}
	})
}
