package main

import (
	"bytes"
	"context"
	"encoding/json"
	"github.com/formguard/formguard/examples/internal/exampletest"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	netmail "net/mail"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/formguard/formguard/guard/captcha"
	"github.com/formguard/formguard/mailer"
	"github.com/gin-gonic/gin"
)

// newTestRouter wires the example as run does, with the file transport in
// a fresh data folder. The mailer logs to logs (nil: nowhere) and is not
// started; everything closes when the test ends.
func newTestRouter(t *testing.T, logs io.Writer) (*gin.Engine, *mailer.Mailer, config) {
	t.Helper()
	gin.SetMode(gin.TestMode)
	if logs == nil {
		logs = io.Discard
	}
	cfg := config{Addr: "127.0.0.1:8080", Domain: "example.test", To: "support@example.test", Data: t.TempDir()}
	m, err := newMailer(cfg, slog.New(slog.NewJSONHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	g, pow, err := newGuard(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	return newRouter(g, pow, m), m, cfg
}

// TestGinDelivery posts through the gin router with the delivery worker
// running and checks the .eml files the file transport writes, verifying
// each DKIM signature independently (emersion/go-msgauth) against the TXT
// record the example logged.
func TestGinDelivery(t *testing.T) {
	logs := &syncBuffer{}
	router, m, cfg := newTestRouter(t, logs)
	m.Start(t.Context())
	sent := filepath.Join(cfg.Data, "sent")
	dnsName, dnsTXT := loggedRecord(t, logs.String())
	post := func(path string, v url.Values) (int, string) {
		r := httptest.NewRequest("POST", path, strings.NewReader(v.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.Header.Set("Origin", "http://127.0.0.1:8080")
		r.Header.Set("Accept", "application/json")
		w := httptest.NewRecorder()
		router.ServeHTTP(w, r)
		var body struct{ ID, Code string }
		_ = json.Unmarshal(w.Body.Bytes(), &body)
		return w.Code, body.ID + body.Code
	}

	t.Run("a rejected post queues and writes nothing", func(t *testing.T) {
		v := url.Values{"email": {"ada@example.org"}, "message": {"Hi"}, "to": {"x@evil.test"}}
		if status, code := post("/contact", v); status != http.StatusBadRequest {
			t.Fatalf("status %d %s", status, code)
		}
		// A message leaves the queue only once its file is written, so an
		// empty queue and no file mean nothing was accepted.
		st, err := m.Stats(t.Context())
		if files := emls(t, sent); err != nil || st.Depth != 0 || len(files) != 0 {
			t.Fatalf("queue depth %d, files %q (%v)", st.Depth, files, err)
		}
	})
	t.Run("a contact post becomes a signed .eml to the configured recipient", func(t *testing.T) {
		v := url.Values{"name": {"Ada"}, "email": {"ada@example.org"}, "subject": {"Hello"}, "message": {"Open on Sunday?"}}
		status, id := post("/contact", v)
		if status != http.StatusOK {
			t.Fatalf("status %d %s", status, id)
		}
		raw := waitSent(t, sent, 1)[0]
		msg := checkHeaders(t, raw, cfg.To)
		if !strings.HasPrefix(msg.Header.Get("Message-ID"), "<"+id+".") {
			t.Errorf("Message-ID %q does not carry submission %s", msg.Header.Get("Message-ID"), id)
		}
		verifyDKIM(t, raw, cfg.Domain, dnsName, dnsTXT)
	})
	t.Run("a share post with a solved challenge becomes a signed .eml to the friend", func(t *testing.T) {
		w := httptest.NewRecorder()
		router.ServeHTTP(w, httptest.NewRequest("GET", "/share/challenge", nil))
		var ch captcha.Challenge
		if err := json.Unmarshal(w.Body.Bytes(), &ch); err != nil {
			t.Fatal(err)
		}
		v := url.Values{"to": {"a@x.test"}, "url": {"http://127.0.0.1:8080/"}, "email": {"ada@example.org"}, "altcha": {solve(t, ch)}}
		if status, code := post("/share", v); status != http.StatusOK {
			t.Fatalf("status %d %s", status, code)
		}
		raw := waitSent(t, sent, 2)[1]
		checkHeaders(t, raw, "a@x.test")
		if !bytes.Contains(raw, []byte("http://127.0.0.1:8080/")) {
			t.Errorf("shared URL missing:\n%s", raw)
		}
		verifyDKIM(t, raw, cfg.Domain, dnsName, dnsTXT)
	})
	t.Run("a post whose mail cannot be queued is answered 503", func(t *testing.T) {
		m.Close() // stops the worker and closes the outbox
		v := url.Values{"email": {"grace@example.org"}, "message": {"Hi"}}
		if status, code := post("/contact", v); status != http.StatusServiceUnavailable || code != "outbox_unavailable" {
			t.Fatalf("status %d %s", status, code)
		}
		if files := emls(t, sent); len(files) != 2 {
			t.Fatalf("files %q, want 2", files)
		}
	})
}

// checkHeaders wants the site's From, exactly the recipient to and the
// visitor's Reply-To.
func checkHeaders(t *testing.T, raw []byte, to string) *netmail.Message {
	t.Helper()
	msg, err := netmail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	for field, want := range map[string]string{"From": "no-reply@example.test", "To": to, "Reply-To": "ada@example.org"} {
		list, err := msg.Header.AddressList(field)
		if err != nil || len(list) != 1 || list[0].Address != want {
			t.Errorf("%s: %q (%v), want %s", field, msg.Header.Get(field), err, want)
		}
	}
	return msg
}

// emls lists the file transport's messages, oldest first (names start
// with the time).
func emls(t *testing.T, dir string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.eml"))
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// waitSent polls dir until the worker has written n messages and returns
// their bytes, or fails the test.
func waitSent(t *testing.T, dir string, n int) [][]byte {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		if files := emls(t, dir); len(files) >= n {
			var out [][]byte
			for _, f := range files {
				b, err := os.ReadFile(f)
				if err != nil {
					t.Fatal(err)
				}
				out = append(out, b)
			}
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d .eml files, want %d", len(emls(t, dir)), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// The shared helpers (examples/internal/exampletest).
var (
	loggedRecord = exampletest.LoggedRecord
	verifyDKIM   = exampletest.VerifyDKIM
)

type syncBuffer = exampletest.SyncBuffer

// TestRunStopsCleanly: run starts the mailer and server, and when its
// context ends it shuts down and releases the outbox for the next start.
func TestRunStopsCleanly(t *testing.T) {
	gin.SetMode(gin.TestMode)
	cfg := config{Addr: "127.0.0.1:0", Domain: "example.test", To: "support@example.test", Data: t.TempDir()}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := run(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	m, err := newMailer(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatalf("outbox not released: %v", err)
	}
	m.Close()
}
