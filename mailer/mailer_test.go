package mailer

import (
	"bytes"
	"context"
	"crypto"
	"errors"
	"fmt"
	"github.com/formguard/formguard/post"
	"io"
	"log/slog"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	netmail "net/mail"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-msgauth/dkim"
	"github.com/formguard/formguard/mailer/outbox"
)

const testDomain = "example.test"

var t0 = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

func loadKey(tb testing.TB, name string) crypto.Signer {
	tb.Helper()
	k, err := LoadKey(filepath.Join("..", "testdata", "dkim", name))
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

// clock is an injectable, advanceable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type fixture struct {
	m      *Mailer
	q      *outbox.Dir
	clock  *clock
	mu     sync.Mutex
	events []DeliveryEvent
}

func (f *fixture) outcomes() map[outbox.Outcome]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := map[outbox.Outcome]int{}
	for _, e := range f.events {
		n[e.Outcome]++
	}
	return n
}

// newFixture builds a Mailer on a fresh spool; mutate adjusts the Config.
func newFixture(t testing.TB, spool string, tr Transport, key crypto.Signer, mutate func(*Config)) *fixture {
	t.Helper()
	f := &fixture{clock: &clock{t: t0}}
	if spool == "" {
		spool = t.TempDir()
	}
	q, err := outbox.NewDir(outbox.DirConfig{Path: spool, Now: f.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	f.q = q
	cfg := Config{
		Domain: testDomain, SiteName: "Example", From: "no-reply@example.test",
		Bounce: "bounces@mail.example.test", DKIM: DKIM{Selector: "s1", Signer: key},
		Transport: tr, Outbox: q, Now: f.clock.Now,
		Retry:  Retry{BaseDelay: time.Second, MaxDelay: time.Minute, PollInterval: 10 * time.Millisecond},
		Logger: slog.New(slog.DiscardHandler),
		OnDelivery: func(e DeliveryEvent) {
			f.mu.Lock()
			f.events = append(f.events, e)
			f.mu.Unlock()
		},
	}
	if mutate != nil {
		mutate(&cfg)
	}
	f.m, err = New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.m.Close() })
	return f
}

func smtpTo(t testing.TB, addr string) *SMTP {
	t.Helper()
	s, err := NewSMTP(SMTPConfig{Addr: addr, HELO: "web.example.test", Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func contact(id string) *post.Submission {
	return &post.Submission{
		ID: id, Form: "contact", Kind: post.Contact,
		Name: "Ada Lovelace", ReplyTo: "ada@visitor.example", Subject: "Hello",
		Message: "Hi there.\nSecond line.", Recipients: []string{"support@example.test"},
		Received: t0,
	}
}

// verifyDKIM checks every signature with emersion/go-msgauth, an
// independent implementation, fed the key's TXT record.
func verifyDKIM(t testing.TB, raw []byte, pub crypto.PublicKey) {
	t.Helper()
	name, txt, err := DNSRecord("s1", testDomain, pub)
	if err != nil {
		t.Fatal(err)
	}
	vs, err := dkim.VerifyWithOptions(bytes.NewReader(raw), &dkim.VerifyOptions{
		LookupTXT: func(domain string) ([]string, error) {
			if domain != name {
				return nil, fmt.Errorf("no TXT at %s", domain)
			}
			// Like net.LookupTXT: one record, its character-strings joined.
			return []string{strings.Join(SplitTXT(txt), "")}, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) != 1 {
		t.Fatalf("%d DKIM signatures, want 1", len(vs))
	}
	for _, v := range vs {
		if v.Err != nil {
			t.Fatalf("DKIM signature does not verify: %v\n%s", v.Err, raw)
		}
		if v.Domain != testDomain {
			t.Fatalf("d=%s", v.Domain)
		}
		for _, h := range []string{"from", "reply-to", "to", "subject", "date", "message-id", "mime-version", "content-type"} {
			found := false
			for _, hk := range v.HeaderKeys {
				found = found || strings.EqualFold(hk, h)
			}
			if !found {
				t.Errorf("%s not signed (h=%v)", h, v.HeaderKeys)
			}
		}
		count := map[string]int{}
		for _, hk := range v.HeaderKeys {
			count[strings.ToLower(hk)]++
		}
		for _, h := range []string{"from", "subject", "reply-to"} {
			if count[h] < 2 {
				t.Errorf("%s not over-signed (h=%v)", h, v.HeaderKeys)
			}
		}
	}
}

// parts returns the decoded text/plain and text/html bodies.
func parts(t testing.TB, raw []byte) (text, html string) {
	t.Helper()
	msg, err := netmail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	mt, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(mt, "multipart/") {
		b, _ := io.ReadAll(quotedprintable.NewReader(msg.Body))
		return crlf(b), ""
	}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(p)
		switch ct, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type")); ct {
		case "text/plain":
			text = crlf(b)
		case "text/html":
			html = crlf(b)
		}
	}
}

func decodeHeader(t testing.TB, v string) string {
	t.Helper()
	d, err := new(mime.WordDecoder).DecodeHeader(v)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

var msgIDRe = regexp.MustCompile(`^<sub-1\.[a-z2-7]{16}@example\.test>$`)

func TestDeliverSignsAndLocks(t *testing.T) {
	keys := map[string]crypto.Signer{
		"rsa2048-pkcs1": loadKey(t, "rsa2048.pkcs1.pem"),
		"ed25519":       loadKey(t, "ed25519.pem"),
	}
	long := strings.Repeat("x", 1500) + " end"
	for keyName, key := range keys {
		for _, canon := range []Canonicalization{Relaxed, Simple} {
			t.Run(keyName+"/"+string(canon), func(t *testing.T) {
				relay := newSink(t, "")
				f := newFixture(t, "", smtpTo(t, relay.Addr), key, func(c *Config) { c.DKIM.Canonicalization = canon })
				s := contact("sub-1")
				s.Name = "Zoë Ämmälä 李"
				s.Subject = "Grüße — про «форму» " + strings.Repeat("lang ", 20)
				s.Message = "Héllo <b>not bold</b>\n" + long + "\n.\nline after a lone dot"
				if err := f.m.Deliver(context.Background(), s); err != nil {
					t.Fatal(err)
				}
				if n := f.m.Flush(context.Background()); n != 1 {
					t.Fatalf("flushed %d", n)
				}
				got := relay.wait(1)
				r := got[0]
				if r.From != "bounces@mail.example.test" || len(r.To) != 1 || r.To[0] != "support@example.test" {
					t.Fatalf("envelope = %q -> %q", r.From, r.To)
				}
				verifyDKIM(t, r.Data, key.Public())

				from := header(t, r.Data, "From")
				a, err := netmail.ParseAddress(from[0])
				if err != nil || a.Address != "no-reply@example.test" || a.Name != "Zoë Ämmälä 李 via Example" {
					t.Errorf("From = %q (%v)", from, err)
				}
				if rt := header(t, r.Data, "Reply-To"); len(rt) != 1 || !strings.Contains(rt[0], "ada@visitor.example") {
					t.Errorf("Reply-To = %q", rt)
				}
				if id := header(t, r.Data, "Message-Id"); len(id) != 1 || !msgIDRe.MatchString(id[0]) {
					t.Errorf("Message-ID = %q", id)
				}
				if as := header(t, r.Data, "Auto-Submitted"); len(as) != 1 || as[0] != "auto-generated" {
					t.Errorf("Auto-Submitted = %q", as)
				}
				if subj := decodeHeader(t, header(t, r.Data, "Subject")[0]); subj != "[Example] "+strings.TrimSpace(cleanLine(s.Subject, 200)) {
					t.Errorf("Subject = %q", subj)
				}
				if d := header(t, r.Data, "Date"); len(d) != 1 || !strings.Contains(d[0], "4 Mar 2026 05:06:07") {
					t.Errorf("Date = %q", d)
				}
				for _, h := range []string{"Sender", "Cc", "Bcc", "Return-Path"} {
					if v := header(t, r.Data, h); len(v) != 0 {
						t.Errorf("%s present: %q", h, v)
					}
				}
				for _, line := range strings.Split(string(r.Data), "\r\n") {
					if len(line) > 998 {
						t.Fatalf("line of %d octets (RFC 5322 2.1.1)", len(line))
					}
				}
				text, html := parts(t, r.Data)
				if !strings.Contains(text, long) || !strings.Contains(text, "Héllo <b>not bold</b>") ||
					!strings.Contains(text, "\n.\nline after a lone dot") {
					t.Errorf("text body lost content:\n%s", text)
				}
				if strings.Contains(html, "<b>not bold</b>") || !strings.Contains(html, "&lt;b&gt;not bold&lt;/b&gt;") {
					t.Errorf("visitor text not escaped in HTML:\n%s", html)
				}
			})
		}
	}
}

func TestShareOneMessagePerRecipient(t *testing.T) {
	relay := newSink(t, "")
	key := loadKey(t, "ed25519.pem")
	f := newFixture(t, "", smtpTo(t, relay.Addr), key, nil)
	s := &post.Submission{
		ID: "sub-2", Form: "share", Kind: post.Share, Name: "Mallory <evil@x.example>",
		ReplyTo: "m@visitor.example", Message: "look <script>alert(1)</script>",
		URL:        "https://example.test/post/1",
		Recipients: []string{"a@one.example", "b@two.example", "c@three.example"},
		Received:   t0,
	}
	if err := f.m.Deliver(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	if st, _ := f.m.Stats(context.Background()); st.Depth != 3 {
		t.Fatalf("queued %d, want 3", st.Depth)
	}
	f.m.Flush(context.Background())
	got := relay.wait(3)
	seen := map[string]bool{}
	for _, r := range got {
		if len(r.To) != 1 {
			t.Fatalf("one message to %d recipients", len(r.To))
		}
		seen[r.To[0]] = true
		verifyDKIM(t, r.Data, key.Public())
		to := header(t, r.Data, "To")
		if len(to) != 1 || !strings.Contains(to[0], r.To[0]) || strings.Count(to[0], "@") != 1 {
			t.Errorf("To = %q for RCPT %s", to, r.To[0])
		}
		from, _ := netmail.ParseAddress(header(t, r.Data, "From")[0])
		if from.Name != "Example" || from.Address != "no-reply@example.test" {
			t.Errorf("share From = %q; the visitor's name must not reach a stranger's From", from)
		}
		subj := decodeHeader(t, header(t, r.Data, "Subject")[0])
		if strings.Contains(subj, "Mallory") || strings.Contains(subj, "look") {
			t.Errorf("visitor text in Subject: %q", subj)
		}
		_, html := parts(t, r.Data)
		if strings.Contains(html, "<script>") || !strings.Contains(html, "&lt;script&gt;") {
			t.Errorf("share note not escaped:\n%s", html)
		}
	}
	if len(seen) != 3 {
		t.Fatalf("recipients = %v", seen)
	}
}

func TestRelayDownThenUp(t *testing.T) {
	// Reserve a port, then leave it closed: the relay is down.
	probe := newSink(t, "")
	addr := probe.Addr
	probe.Close()
	f := newFixture(t, "", smtpTo(t, addr), loadKey(t, "ed25519.pem"), nil)
	ctx := context.Background()
	for i := range 5 {
		if err := f.m.Deliver(ctx, contact(fmt.Sprintf("sub-%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	if n := f.m.Flush(ctx); n != 5 {
		t.Fatalf("attempted %d", n)
	}
	if o := f.outcomes(); o[outbox.Retried] != 5 {
		t.Fatalf("outcomes = %v", o)
	}
	st, _ := f.m.Stats(ctx)
	if st.Depth != 5 {
		t.Fatalf("depth = %d", st.Depth)
	}
	relay := newSink(t, addr) // the relay comes back on the same port
	f.clock.Add(time.Minute)  // past every backoff
	f.m.Flush(ctx)
	got := relay.wait(5)
	ids := map[string]int{}
	for _, r := range got {
		verifyDKIM(t, r.Data, f.m.dkim.Signer.Public())
		ids[header(t, r.Data, "Message-Id")[0]]++
	}
	if len(ids) != 5 {
		t.Fatalf("distinct messages = %d", len(ids))
	}
	f.clock.Add(time.Hour)
	if n := f.m.Flush(ctx); n != 0 {
		t.Fatalf("%d messages attempted again after delivery", n)
	}
	if len(relay.messages()) != 5 {
		t.Fatalf("delivered %d, want 5 exactly once", len(relay.messages()))
	}
	if st, _ := f.m.Stats(ctx); st.Depth != 0 {
		t.Fatalf("depth = %d", st.Depth)
	}
}

func TestTemporaryThenSuccess(t *testing.T) {
	relay := newSink(t, "")
	relay.reject = func(stage string, n int) error {
		if stage == "data" && n == 1 {
			return &smtpError451
		}
		return nil
	}
	f := newFixture(t, "", smtpTo(t, relay.Addr), loadKey(t, "ed25519.pem"), nil)
	ctx := context.Background()
	if err := f.m.Deliver(ctx, contact("sub-1")); err != nil {
		t.Fatal(err)
	}
	f.m.Flush(ctx)
	f.mu.Lock()
	first := f.events[0]
	f.mu.Unlock()
	if first.Outcome != outbox.Retried || first.Code != 451 || !IsTemporary(first.Err) {
		t.Fatalf("first attempt = %+v", first)
	}
	if n := f.m.Flush(ctx); n != 0 {
		t.Fatal("retried before the backoff elapsed")
	}
	f.clock.Add(time.Minute)
	f.m.Flush(ctx)
	got := relay.wait(1)
	if len(got) != 1 {
		t.Fatalf("delivered %d", len(got))
	}
	verifyDKIM(t, got[0].Data, f.m.dkim.Signer.Public())
	if o := f.outcomes(); o[outbox.Delivered] != 1 || o[outbox.Retried] != 1 {
		t.Fatalf("outcomes = %v", o)
	}
	// The same connection carried both attempts: 451 leaves it usable.
	if c := relay.conns.Load(); c != 1 {
		t.Errorf("connections = %d, want 1", c)
	}
}

func TestPermanentFailureDeadLetters(t *testing.T) {
	relay := newSink(t, "")
	relay.reject = func(stage string, n int) error {
		if stage == "rcpt" {
			return &smtpError550
		}
		return nil
	}
	f := newFixture(t, "", smtpTo(t, relay.Addr), loadKey(t, "ed25519.pem"), nil)
	ctx := context.Background()
	if err := f.m.Deliver(ctx, contact("sub-1")); err != nil {
		t.Fatal(err)
	}
	f.m.Flush(ctx)
	f.mu.Lock()
	ev := f.events[0]
	f.mu.Unlock()
	if ev.Outcome != outbox.DeadLettered || ev.Code != 550 || !IsPermanent(ev.Err) || IsTemporary(ev.Err) {
		t.Fatalf("event = %+v", ev)
	}
	dl, err := f.q.DeadLetters()
	if err != nil || len(dl) != 1 || !strings.Contains(dl[0].LastError, "550") || dl[0].Ref != "sub-1" {
		t.Fatalf("dead letters = %+v, %v", dl, err)
	}
	st, _ := f.m.Stats(ctx)
	if st.Depth != 0 || st.Dead != 1 {
		t.Fatalf("stats = %+v", st)
	}
	f.clock.Add(24 * time.Hour)
	if n := f.m.Flush(ctx); n != 0 {
		t.Fatal("dead letter attempted again")
	}
}

func TestStartDeliversInBackground(t *testing.T) {
	relay := newSink(t, "")
	f := newFixture(t, "", smtpTo(t, relay.Addr), loadKey(t, "ed25519.pem"), nil)
	ctx := context.Background()
	f.m.Start(ctx)
	for i := range 10 {
		if err := f.m.Deliver(ctx, contact(fmt.Sprintf("sub-%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range relay.wait(10) {
		verifyDKIM(t, r.Data, f.m.dkim.Signer.Public())
	}
	if err := f.m.Close(); err != nil {
		t.Fatal(err)
	}
	if c := relay.conns.Load(); c > DefaultPoolSize {
		t.Errorf("%d connections for 10 messages; pool is %d", c, DefaultPoolSize)
	}
}

func TestNewValidates(t *testing.T) {
	q, err := outbox.NewDir(outbox.DirConfig{Path: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	tr := TransportFunc(func(context.Context, Envelope, []byte) error { return nil })
	key := loadKey(t, "ed25519.pem")
	base := func() Config {
		return Config{Domain: testDomain, DKIM: DKIM{Selector: "s1", Signer: key}, Transport: tr, Outbox: q}
	}
	cases := []struct {
		name   string
		mutate func(*Config)
		want   string
	}{
		{"missing domain", func(c *Config) { c.Domain = "" }, "Config.Domain"},
		{"From off the domain", func(c *Config) { c.From = "x@other.test" }, "not on Config.Domain"},
		{"From with display name", func(c *Config) { c.From = "X <x@example.test>" }, "bare address"},
		{"Bounce on another organisation", func(c *Config) { c.Bounce = "b@evil.test" }, "organisational domain"},
		{"no DKIM key", func(c *Config) { c.DKIM = DKIM{} }, "DKIM is required"},
		{"selector without key", func(c *Config) { c.DKIM.Signer = nil }, "Signer is required"},
		{"bad selector", func(c *Config) { c.DKIM.Selector = "a b" }, "Selector"},
		{"bad canonicalization", func(c *Config) { c.DKIM.Canonicalization = "nofws" }, "Canonicalization"},
		{"RSA 1024", func(c *Config) { c.DKIM.Signer = rsa1024(t) }, "1024 bits refused"},
		{"no transport", func(c *Config) { c.Transport = nil }, "Transport"},
		{"no outbox", func(c *Config) { c.Outbox = nil }, "Outbox"},
		{"template without text", func(c *Config) { c.Templates = map[string]Template{"x": {}} }, "Text is required"},
		{"negative MaxPending", func(c *Config) { c.MaxPending = -1 }, "MaxPending"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := base()
			tc.mutate(&c)
			_, err := New(c)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "mailer: ") {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
	t.Run("subdomain bounce aligns", func(t *testing.T) {
		c := base()
		c.Bounce = "b@bounce.example.test"
		if _, err := New(c); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("unsigned only when allowed", func(t *testing.T) {
		c := base()
		c.DKIM, c.AllowUnsigned = DKIM{}, true
		if _, err := New(c); err != nil {
			t.Fatal(err)
		}
	})
}

func TestDeliverRefusesBadSubmissions(t *testing.T) {
	f := newFixture(t, "", TransportFunc(func(context.Context, Envelope, []byte) error { return nil }), loadKey(t, "ed25519.pem"), nil)
	for name, mutate := range map[string]func(*post.Submission){
		"no recipients":       func(s *post.Submission) { s.Recipients = nil },
		"recipient injection": func(s *post.Submission) { s.Recipients = []string{"a@b.example>\r\nRCPT TO:<c@d.example"} },
		"reply-to list":       func(s *post.Submission) { s.ReplyTo = "a@b.example, c@d.example" },
		"reply-to with name":  func(s *post.Submission) { s.ReplyTo = "Eve <a@b.example>" },
		"id not URL-safe":     func(s *post.Submission) { s.ID = "a@b" },
		"unknown kind":        func(s *post.Submission) { s.Kind = 7; s.Form = "other" },
	} {
		t.Run(name, func(t *testing.T) {
			s := contact("sub-1")
			mutate(s)
			if err := f.m.Deliver(context.Background(), s); !errors.Is(err, ErrSubmission) {
				t.Fatalf("err = %v", err)
			}
		})
	}
	if st, _ := f.m.Stats(context.Background()); st.Depth != 0 {
		t.Fatalf("refused submissions were queued: %d", st.Depth)
	}
}

func TestControlCharactersNeverReachHeaders(t *testing.T) {
	f := newFixture(t, "", TransportFunc(func(context.Context, Envelope, []byte) error { return nil }), loadKey(t, "ed25519.pem"), nil)
	s := contact("sub-1")
	s.Name = "Eve\r\nBcc: victim@x.example"
	s.Subject = "hi\nBcc: victim@x.example\u2028Cc: v@x.example"
	msgs, err := f.m.Compose(s)
	if err != nil {
		t.Fatal(err)
	}
	raw := msgs[0].Raw
	if len(header(t, raw, "Bcc")) != 0 || len(header(t, raw, "Cc")) != 0 {
		t.Fatalf("header injection:\n%s", raw)
	}
}

func crlf(b []byte) string { return strings.ReplaceAll(string(b), "\r\n", "\n") }
