package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"github.com/formguard/formguard/examples/internal/exampletest"
	"github.com/formguard/formguard/post"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	netmail "net/mail"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"github.com/formguard/formguard/guard"
	"github.com/formguard/formguard/guard/captcha"
	"github.com/formguard/formguard/mailer"
)

const (
	relayUser = "web"
	relayPass = "relay-secret"
)

// testConfig is the example's configuration with a fresh data folder;
// relay is the SMTP relay's address ("": the file transport).
func testConfig(t *testing.T, relay string) config {
	cfg := config{Addr: "127.0.0.1:8080", Domain: "example.test", To: "support@example.test",
		Data: t.TempDir(), SMTP: relay}
	if relay != "" {
		cfg.SMTPUser, cfg.SMTPPassword = relayUser, relayPass
	}
	return cfg
}

// newTestApp wires the mailer and routes as run does. The mailer logs to
// logs (nil: nowhere) and is not started; both close when the test ends.
func newTestApp(t *testing.T, cfg config, now func() time.Time, logs io.Writer) *app {
	t.Helper()
	if logs == nil {
		logs = io.Discard
	}
	m, err := newMailer(cfg, slog.New(slog.NewJSONHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	a, err := newApp(cfg, m, now)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.g.Close() })
	return a
}

// TestDelivery runs the example against a real SMTP relay on loopback and
// checks what the relay receives: envelope, headers and a DKIM signature
// verified by an independent implementation against the TXT record the
// example logged.
func TestDelivery(t *testing.T) {
	relay := newRelay(t)
	cfg := testConfig(t, relay.addr)
	logs := &syncBuffer{}
	c := &clock{time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)}
	a := newTestApp(t, cfg, c.now, logs)
	a.m.Start(t.Context())
	dnsName, dnsTXT := loggedRecord(t, logs.String())

	post := func(path string, v url.Values) *httptest.ResponseRecorder {
		r := httptest.NewRequest("POST", path, strings.NewReader(v.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.Header.Set("Origin", "http://127.0.0.1:8080")
		r.Header.Set("Accept", "application/json")
		r.RemoteAddr = "192.0.2.1:1"
		w := httptest.NewRecorder()
		a.mux.ServeHTTP(w, r)
		return w
	}
	token := func() string {
		w := httptest.NewRecorder()
		a.mux.ServeHTTP(w, httptest.NewRequest("GET", "/", nil))
		m := regexp.MustCompile(`name="_fg_token" value="([^"]+)"`).FindStringSubmatch(w.Body.String())
		if m == nil {
			t.Fatal("no form token in the page")
		}
		c.t = c.t.Add(10 * time.Second) // a human takes a while to fill it in
		return m[1]
	}
	verify := func(t *testing.T, raw []byte) {
		t.Helper()
		verifyDKIM(t, raw, cfg.Domain, dnsName, dnsTXT)
	}

	t.Run("the DKIM key is written private and its logged record matches it", func(t *testing.T) {
		path := filepath.Join(cfg.Data, "dkim.pem")
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Fatalf("key file mode %v", fi.Mode().Perm())
		}
		key, err := mailer.LoadKey(path)
		if err != nil {
			t.Fatal(err)
		}
		name, txt, err := mailer.DNSRecord("s1", cfg.Domain, key.Public())
		if err != nil || name != dnsName || txt != dnsTXT {
			t.Fatalf("logged %s %q, key file publishes %s %q (%v)", dnsName, dnsTXT, name, txt, err)
		}
	})
	// First, while the queue is empty: nothing refused may reach it.
	t.Run("rejected posts queue and send nothing", func(t *testing.T) {
		for _, tt := range []struct {
			name   string
			path   string
			form   url.Values
			status int
		}{
			{"contact naming a recipient", "/contact", url.Values{"email": {"ada@example.org"}, "message": {"Hi"}, "to": {"x@evil.test"}, "_fg_token": {token()}}, 400},
			{"contact without a form token", "/contact", url.Values{"email": {"ada@example.org"}, "message": {"Hi"}}, 403},
			{"share without proof-of-work", "/share", url.Values{"to": {"a@x.test"}, "url": {"http://127.0.0.1:8080/"}}, 400},
			{"honeypot hit, answered as success", "/contact", url.Values{"email": {"a@b.test"}, "message": {"x"}, "_gotcha": {"bot"}, "_fg_token": {token()}}, 200},
		} {
			if w := post(tt.path, tt.form); w.Code != tt.status {
				t.Errorf("%s: status %d, want %d: %s", tt.name, w.Code, tt.status, w.Body)
			}
		}
		// Deliver returns once mail is queued, and a message leaves the
		// queue only after the relay took it: so an empty queue and an
		// empty relay mean nothing was accepted for delivery.
		st, err := a.m.Stats(t.Context())
		if err != nil || st.Depth != 0 || relay.count() != 0 {
			t.Fatalf("queue depth %d, relay got %d (%v)", st.Depth, relay.count(), err)
		}
	})
	t.Run("a contact post is mailed to the configured recipient, signed by the site", func(t *testing.T) {
		v := url.Values{"name": {"Ada"}, "email": {"ada@example.org"}, "subject": {"Hello"},
			"message": {"Is the shop open on Sunday?"}, "_fg_token": {token()}}
		if w := post("/contact", v); w.Code != http.StatusOK {
			t.Fatalf("status %d %s", w.Code, w.Body)
		}
		got := relay.wait(t, 1)[0]
		if got.from != "no-reply@example.test" || !slices.Equal(got.to, []string{cfg.To}) {
			t.Fatalf("envelope MAIL FROM %q RCPT TO %q", got.from, got.to)
		}
		msg := parse(t, got.data)
		checkAddr(t, msg, "From", "no-reply@example.test")
		checkAddr(t, msg, "To", cfg.To)
		checkAddr(t, msg, "Reply-To", "ada@example.org")
		if !bytes.Contains(got.data, []byte("Is the shop open on Sunday?")) {
			t.Errorf("message text missing:\n%s", got.data)
		}
		verify(t, got.data)
	})
	t.Run("a share post is mailed once to each friend", func(t *testing.T) {
		w := httptest.NewRecorder()
		a.mux.ServeHTTP(w, httptest.NewRequest("GET", "/share/challenge", nil))
		var ch captcha.Challenge
		if err := json.Unmarshal(w.Body.Bytes(), &ch); err != nil {
			t.Fatal(err)
		}
		v := url.Values{"to": {"a@x.test, b@x.test"}, "url": {"http://127.0.0.1:8080/"},
			"name": {"Ada"}, "email": {"ada@example.org"}, "altcha": {solve(t, ch)}}
		if w := post("/share", v); w.Code != http.StatusOK {
			t.Fatalf("status %d %s", w.Code, w.Body)
		}
		var friends []string
		for _, got := range relay.wait(t, 3)[1:] {
			if got.from != "no-reply@example.test" || len(got.to) != 1 {
				t.Fatalf("envelope MAIL FROM %q RCPT TO %q", got.from, got.to)
			}
			friends = append(friends, got.to[0])
			msg := parse(t, got.data)
			checkAddr(t, msg, "From", "no-reply@example.test")
			checkAddr(t, msg, "To", got.to[0]) // friends never see each other
			checkAddr(t, msg, "Reply-To", "ada@example.org")
			if !bytes.Contains(got.data, []byte("http://127.0.0.1:8080/")) {
				t.Errorf("shared URL missing:\n%s", got.data)
			}
			verify(t, got.data)
		}
		slices.Sort(friends)
		if !slices.Equal(friends, []string{"a@x.test", "b@x.test"}) {
			t.Fatalf("recipients %q", friends)
		}
	})
	t.Run("a post whose mail cannot be queued is answered 503 and not sent", func(t *testing.T) {
		a.m.Close() // stops the workers and closes the outbox
		v := url.Values{"email": {"grace@example.org"}, "message": {"Hi"}, "_fg_token": {token()}}
		w := post("/contact", v)
		var p struct{ Code string }
		_ = json.Unmarshal(w.Body.Bytes(), &p)
		if w.Code != http.StatusServiceUnavailable || p.Code != "outbox_unavailable" || w.Header().Get("Retry-After") != "30" {
			t.Fatalf("status %d Retry-After %q body %s", w.Code, w.Header().Get("Retry-After"), w.Body)
		}
		if n := relay.count(); n != 3 {
			t.Fatalf("relay got %d messages, want 3", n)
		}
	})
}

// TestDeliveryError checks the answer for each kind of Deliver failure,
// with a real mailer.
func TestDeliveryError(t *testing.T) {
	a := newTestApp(t, testConfig(t, ""), nil, nil)
	bad := a.m.Deliver(t.Context(), &post.Submission{ID: "not url-safe!", Form: "contact"})
	if e := deliveryError(bad); e.Status != http.StatusInternalServerError || !errors.Is(e, guard.ErrInternal) {
		t.Errorf("unusable submission: %d %s, want 500 internal", e.Status, e.Code)
	}
	a.m.Close()
	closed := a.m.Deliver(t.Context(), &post.Submission{ID: "s1", Form: "contact", Kind: post.Contact,
		ReplyTo: "ada@example.org", Message: "Hi", Recipients: []string{"support@example.test"}})
	if e := deliveryError(closed); e.Status != http.StatusServiceUnavailable || e.Code != "outbox_unavailable" || e.Cause == nil {
		t.Errorf("closed outbox: %d %s (cause %v), want 503 outbox_unavailable", e.Status, e.Code, e.Cause)
	}
}

// TestKeyKeptAcrossRestarts: the key is made on the first run only, so the
// published record stays valid.
func TestKeyKeptAcrossRestarts(t *testing.T) {
	cfg := testConfig(t, "")
	var first, second syncBuffer
	m, err := newMailer(cfg, slog.New(slog.NewJSONHandler(&first, nil)))
	if err != nil {
		t.Fatal(err)
	}
	m.Close()
	if m, err = newMailer(cfg, slog.New(slog.NewJSONHandler(&second, nil))); err != nil {
		t.Fatal(err)
	}
	m.Close()
	_, txt1 := loggedRecord(t, first.String())
	_, txt2 := loggedRecord(t, second.String())
	if txt1 != txt2 || !strings.Contains(first.String(), `"generated":true`) || !strings.Contains(second.String(), `"generated":false`) {
		t.Fatalf("restart changed the key or the log:\n%s\n%s", first.String(), second.String())
	}
}

// The shared helpers (examples/internal/exampletest).
var (
	loggedRecord = exampletest.LoggedRecord
	verifyDKIM   = exampletest.VerifyDKIM
)

type syncBuffer = exampletest.SyncBuffer

func parse(t *testing.T, raw []byte) *netmail.Message {
	t.Helper()
	m, err := netmail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// checkAddr wants exactly one address, addr, in header field.
func checkAddr(t *testing.T, m *netmail.Message, field, addr string) {
	t.Helper()
	list, err := m.Header.AddressList(field)
	if err != nil || len(list) != 1 || list[0].Address != addr {
		t.Errorf("%s: %q (%v), want %s", field, m.Header.Get(field), err, addr)
	}
}

// relay is a real SMTP server (emersion/go-smtp) on a loopback port that
// requires AUTH and keeps every message it accepts.
type relay struct {
	addr string
	got  chan struct{}
	mu   sync.Mutex
	msgs []received
}

type received struct {
	from string
	to   []string
	data []byte
}

func newRelay(t *testing.T) *relay {
	r := &relay{got: make(chan struct{}, 100)}
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) {
		return &session{r: r}, nil
	}))
	srv.Domain = "relay.test"
	srv.AllowInsecureAuth = true // loopback; the example insists on STARTTLS elsewhere
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.addr = ln.Addr().String()
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return r
}

func (r *relay) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.msgs)
}

// wait returns the messages once n have arrived, or fails the test.
func (r *relay) wait(t *testing.T, n int) []received {
	t.Helper()
	deadline := time.After(15 * time.Second)
	for {
		r.mu.Lock()
		msgs := slices.Clone(r.msgs)
		r.mu.Unlock()
		if len(msgs) >= n {
			return msgs
		}
		select {
		case <-r.got:
		case <-deadline:
			t.Fatalf("relay got %d messages, want %d", len(msgs), n)
		}
	}
}

type session struct {
	r      *relay
	authed bool
	m      received
}

func (s *session) AuthMechanisms() []string { return []string{sasl.Plain} }

func (s *session) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if user != relayUser || pass != relayPass {
			return errors.New("bad credentials")
		}
		s.authed = true
		return nil
	}), nil
}

func (s *session) Mail(from string, _ *smtp.MailOptions) error {
	if !s.authed {
		return smtp.ErrAuthRequired
	}
	s.m = received{from: from}
	return nil
}

func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.m.to = append(s.m.to, to)
	return nil
}

func (s *session) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.m.data = b
	s.r.mu.Lock()
	s.r.msgs = append(s.r.msgs, s.m)
	s.r.mu.Unlock()
	s.r.got <- struct{}{}
	return nil
}

func (s *session) Reset()        { s.m = received{} }
func (s *session) Logout() error { return nil }

// TestRunStopsCleanly: run starts the mailer and server, and when its
// context ends it shuts down and releases the outbox for the next start.
func TestRunStopsCleanly(t *testing.T) {
	cfg := testConfig(t, "")
	cfg.Addr = "127.0.0.1:0"
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
