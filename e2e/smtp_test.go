package e2e

import (
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/formguard/formguard/internal/attack"
	"github.com/formguard/formguard/internal/testutil"
)

// smtpConfig delivers to a loopback SMTP server; REDIS is replaced with a
// redis_url line or nothing.
const smtpConfig = `
log: {format: json}
data_dir: DATA
site: {domain: example.org, name: Example Org, origins: ["https://www.example.org"]}
REDIS
mail:
  from: no-reply@example.org
  bounce: bounces@example.org
  transport: smtp
  smtp: {addr: SINK, tls: none}
  dkim: {selector: s1, key_file: DATA/dkim.pem, generate: true}
forms:
  contact:
    choices: {sales: [sales@example.org], support: [support@example.org]}
  share: {kind: share, max_recipients: 2, limits: {per_recipient: 1/d}}
  api:
    to: [api@example.org]
    captcha: {provider: none}
    limits: {per_ip: 4/h, per_sender: 10/h}
`

const site = "https://www.example.org"

type expectMail struct {
	rcpt []string
	text string // a string the message must contain
}

// runSMTPScenario starts the binary against a loopback SMTP sink, posts
// good and hostile submissions, and checks exactly what the sink got.
func runSMTPScenario(t *testing.T, redisURL string) {
	sink, err := attack.StartSink()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sink.Close() })
	dir := t.TempDir()
	cfg := strings.NewReplacer("DATA", dir, "SINK", sink.Addr).Replace(smtpConfig)
	if redisURL != "" {
		cfg = strings.Replace(cfg, "REDIS", "redis_url: "+redisURL, 1)
	} else {
		cfg = strings.Replace(cfg, "REDIS", "", 1)
	}
	cfgFile := filepath.Join(dir, "formguard.yaml")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	p := start(t, dir, nil, "serve", "-config", cfgFile)

	var want []expectMail
	steps := []struct {
		name       string
		form       string
		vals       func() url.Values
		origin     string
		wantStatus int
		wantCode   string
		mail       *expectMail
	}{
		{"a contact post with a solved proof of work reaches the chosen department", "contact", func() url.Values {
			return url.Values{"department": {"sales"}, "name": {"Ada"}, "email": {"ada@example.net"}, "subject": {"Quote"}, "message": {"Contact body 1"}, "altcha": {solve(t, p.URL, "contact")}}
		}, site, 200, "", &expectMail{[]string{"sales@example.org"}, "Contact body 1"}},
		{"a contact post without the proof of work is refused", "contact", func() url.Values {
			return url.Values{"department": {"sales"}, "name": {"Ada"}, "email": {"ada@example.net"}, "message": {"no pow"}}
		}, site, 400, "captcha_missing", nil},
		{"a forged proof of work is refused", "contact", func() url.Values {
			return url.Values{"department": {"sales"}, "name": {"Ada"}, "email": {"ada@example.net"}, "message": {"bad pow"}, "altcha": {"eyJhbGdvcml0aG0iOiJTSEEtMjU2In0="}}
		}, site, 403, "captcha_invalid", nil},
		{"a visitor cannot pick an address outside the choices", "contact", func() url.Values {
			return url.Values{"department": {"victim@example.net"}, "name": {"Ada"}, "email": {"ada@example.net"}, "message": {"x"}, "altcha": {solve(t, p.URL, "contact")}}
		}, site, 422, "", nil},
		{"a share post sends the template to each recipient", "share", func() url.Values {
			return url.Values{"to": {"f1@example.net, f2@example.com"}, "url": {site + "/blog/1"}, "name": {"Ada"}, "message": {"Have a look"}, "altcha": {solve(t, p.URL, "share")}}
		}, site, 200, "", nil},
		{"a share post over max_recipients is refused whole", "share", func() url.Values {
			return url.Values{"to": {"a@example.net,b@example.net,c@example.net"}, "url": {site + "/"}, "altcha": {solve(t, p.URL, "share")}}
		}, site, 422, "too_many_recipients", nil},
		{"sharing an offsite URL is refused", "share", func() url.Values {
			return url.Values{"to": {"a@example.net"}, "url": {"https://spam.test/buy"}, "altcha": {solve(t, p.URL, "share")}}
		}, site, 422, "offsite_url", nil},
		{"a recipient already mailed today is rate limited", "share", func() url.Values {
			return url.Values{"to": {"f1@example.net"}, "url": {site + "/blog/2"}, "altcha": {solve(t, p.URL, "share")}}
		}, site, 429, "rate_limited", nil},
		{"a post from another origin is refused", "api", func() url.Values {
			return url.Values{"name": {"Ada"}, "email": {"ada@example.net"}, "message": {"x"}}
		}, "https://evil.test", 403, "bad_origin", nil},
		{"CRLF in the name cannot add a Bcc", "api", func() url.Values {
			return url.Values{"name": {"Ada\r\nBcc: victim@example.net"}, "email": {"ada@example.net"}, "message": {"x"}}
		}, site, 400, "header_injection", nil},
		{"a spoofed sender only ever becomes Reply-To", "api", func() url.Values {
			return url.Values{"name": {"CEO"}, "email": {"ceo@bank.example"}, "message": {"API body 2"}}
		}, site, 200, "", &expectMail{[]string{"api@example.org"}, "API body 2"}},
		{"a honeypot hit looks like success and sends nothing", "api", func() url.Values {
			return url.Values{"name": {"Bot"}, "email": {"bot@example.net"}, "message": {"spam"}, "_gotcha": {"x"}}
		}, site, 200, "", nil},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			a := post(t, p.URL, s.form, s.vals(), s.origin)
			if a.Status != s.wantStatus {
				t.Fatalf("status %d, want %d: %s", a.Status, s.wantStatus, a.Body)
			}
			if s.wantCode != "" && a.code() != s.wantCode {
				t.Errorf("code %q, want %q", a.code(), s.wantCode)
			}
			if s.wantStatus == 429 && a.Header.Get("Retry-After") == "" {
				t.Error("429 without Retry-After")
			}
			if s.mail != nil {
				want = append(want, *s.mail)
			}
		})
	}
	// The share post: one message per recipient.
	want = append(want, expectMail{[]string{"f1@example.net"}, site + "/blog/1"}, expectMail{[]string{"f2@example.com"}, site + "/blog/1"})

	if !sink.WaitQuiet(len(want), 500*time.Millisecond, 30*time.Second) {
		t.Fatalf("sink got %d messages, want %d", sink.Len(), len(want))
	}
	got := sink.Messages()
	if len(got) != len(want) {
		for _, m := range got {
			t.Logf("got: %v %q", m.RcptTo, header(m.Data, "Subject"))
		}
		t.Fatalf("sink got %d messages, want %d", len(got), len(want))
	}
	for _, w := range want {
		i := slices.IndexFunc(got, func(m attack.Received) bool { return slices.Equal(m.RcptTo, w.rcpt) })
		if i < 0 {
			t.Errorf("no message to %v", w.rcpt)
			continue
		}
		m := got[i]
		if m.MailFrom != "bounces@example.org" {
			t.Errorf("MAIL FROM %q", m.MailFrom)
		}
		if from := header(m.Data, "From"); !strings.HasSuffix(from, "<no-reply@example.org>") {
			t.Errorf("From %q", from)
		}
		if !strings.Contains(string(m.Data), w.text) {
			t.Errorf("message to %v lacks %q", w.rcpt, w.text)
		}
		for _, bad := range []string{"victim@example.net", "\r\nBcc:", "\r\nCc:"} {
			if strings.Contains(string(m.Data), bad) {
				t.Errorf("message to %v contains %q", w.rcpt, bad)
			}
		}
		verifyDKIM(t, m.Data, filepath.Join(dir, "dkim.pem"), "s1", "example.org")
	}
	i := slices.IndexFunc(got, func(m attack.Received) bool { return slices.Equal(m.RcptTo, []string{"api@example.org"}) })
	if i >= 0 {
		if rt := header(got[i].Data, "Reply-To"); rt != "<ceo@bank.example>" {
			t.Errorf("Reply-To %q", rt)
		}
		if from := header(got[i].Data, "From"); strings.Contains(from, "bank.example") {
			t.Errorf("the visitor's domain reached From: %q", from)
		}
	}
	m := get(t, p.URL+"/metrics")
	for _, w := range []string{`formguard_decisions_total{code="accepted",form="api"} 1`, `formguard_decisions_total{code="honeypot",form="api"} 1`, `formguard_delivery_attempts_total{outcome="delivered"}`} {
		if !strings.Contains(m.Body, w) {
			t.Errorf("metrics lack %s", w)
		}
	}
	if r := get(t, p.URL+"/readyz"); r.Status != 200 {
		t.Errorf("/readyz: %d %s", r.Status, r.Body)
	}
	if code := p.stop(t); code != 0 {
		t.Errorf("exit status %d", code)
	}
}

func TestSMTPDeliveryMemory(t *testing.T) { runSMTPScenario(t, "") }

// The same scenario with redis_url set: limits, the replay cache and the
// outbox live in a real redis-server, with no other config change.
func TestSMTPDeliveryRedis(t *testing.T) {
	r := testutil.StartRedis(t)
	runSMTPScenario(t, r.URL())
}
