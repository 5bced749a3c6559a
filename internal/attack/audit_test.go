package attack

import (
	"bytes"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-msgauth/dkim"
)

// testKey is a fixed Ed25519 key, so the audit's DKIM check runs against a
// real signature without touching anyone's key files.
func testKey(t *testing.T) (ed25519.PrivateKey, string) {
	t.Helper()
	k := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, 32))
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := DKIMRecordPEM(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	if err != nil {
		t.Fatal(err)
	}
	return k, rec
}

const (
	tOrigin = "https://example.test"
	tSub    = "sub0001"
)

// msgSpec is a hand-made message; good() is what the service should send.
type msgSpec struct {
	mailFrom string
	rcpt     []string
	headers  []string // "Key: value", in order, before signing
	html     string
	text     string
	sign     bool
	tamper   func([]byte) []byte // after signing
}

func good(form string, to ...string) msgSpec {
	return msgSpec{
		mailFrom: "bounces@example.test",
		rcpt:     to,
		headers: []string{
			"From: Ada via Example <no-reply@example.test>",
			"Reply-To: <ada@visitor.test>",
			"To: " + strings.Join(to, ", "),
			"Subject: [Example] Hello",
			"Date: Sun, 22 Nov 2026 08:00:00 +0000",
			"Message-ID: <" + tSub + ".abcdefgh@example.test>",
			"MIME-Version: 1.0",
			"Auto-Submitted: auto-generated",
		},
		text: "Hello from " + Marker(1) + "\r\n",
		html: `<!doctype html><html><body><p>&lt;script&gt;alert(1)&lt;/script&gt;</p><p><a href="https://example.test/page">https://example.test/page</a></p></body></html>`,
		sign: true,
	}
}

func (s msgSpec) build(t *testing.T, key ed25519.PrivateKey) Received {
	t.Helper()
	var b bytes.Buffer
	for _, h := range s.headers {
		b.WriteString(h + "\r\n")
	}
	const boundary = "BOUNDARY42"
	b.WriteString("Content-Type: multipart/alternative; boundary=" + boundary + "\r\n\r\n")
	b.WriteString("--" + boundary + "\r\nContent-Type: text/plain; charset=UTF-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n")
	b.WriteString(s.text + "\r\n")
	if s.html != "" {
		b.WriteString("--" + boundary + "\r\nContent-Type: text/html; charset=UTF-8\r\n\r\n")
		b.WriteString(s.html + "\r\n")
	}
	b.WriteString("--" + boundary + "--\r\n")
	raw := b.Bytes()
	if s.sign {
		var signed bytes.Buffer
		err := dkim.Sign(&signed, bytes.NewReader(raw), &dkim.SignOptions{
			Domain: "example.test", Selector: "s1", Signer: key,
			HeaderKeys: []string{"From", "Reply-To", "To", "Subject", "Date", "Message-ID", "MIME-Version", "Content-Type", "Auto-Submitted"},
		})
		if err != nil {
			t.Fatal(err)
		}
		raw = signed.Bytes()
	}
	if s.tamper != nil {
		raw = s.tamper(raw)
	}
	return Received{MailFrom: s.mailFrom, RcptTo: s.rcpt, Data: raw}
}

func testPolicy(rec string) Policy {
	return Policy{
		Domain: "example.test", DKIMSelector: "s1", DKIMRecord: rec,
		Contact: map[string][]string{"contact": {"support@example.test"}},
		Share:   map[string]int{"share": 3},
		Origins: []string{tOrigin},
		Caps:    map[string]Caps{"share": {PerIP: 2, PerSender: 2, PerRecipient: 2}, "contact": {PerIP: 2, PerSender: 2}},
	}
}

func contactReq() *Request {
	return &Request{ID: 1, Class: "c", Form: "contact", Status: 200, SubID: tSub, Marker: Marker(1),
		Legit: true, Client: "192.0.2.1", Sender: "ada@visitor.test", Markup: []string{"<script>alert(1)</script>"}}
}

func shareReq() *Request {
	r := contactReq()
	r.Form = "share"
	r.Allowed = []string{"friend@recipient.test"}
	return r
}

func replace(old, new string) func([]byte) []byte {
	return func(b []byte) []byte { return bytes.Replace(b, []byte(old), []byte(new), 1) }
}

func TestAuditAcceptsGoodMail(t *testing.T) {
	key, rec := testKey(t)
	p := testPolicy(rec)
	for _, tc := range []struct {
		name string
		req  *Request
		msg  msgSpec
	}{
		{"a contact message to the configured address", contactReq(), good("contact", "support@example.test")},
		{"a share message to the requested friend", shareReq(), good("share", "friend@recipient.test")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := Audit(p, []*Request{tc.req}, []Received{tc.msg.build(t, key)})
			if !r.OK() {
				t.Fatalf("violations on good mail:\n%s", r.Markdown())
			}
			if r.Total.Delivered != 1 || r.Total.Accepted != 1 {
				t.Errorf("totals = %+v", r.Total)
			}
		})
	}
}

// TestAuditDetects proves each rule can fail: every row is a message that
// breaks exactly the rule named.
func TestAuditDetects(t *testing.T) {
	key, rec := testKey(t)
	p := testPolicy(rec)
	hdr := func(s msgSpec, i int, v string) msgSpec {
		s.headers = append([]string(nil), s.headers...)
		s.headers[i] = v
		return s
	}
	add := func(s msgSpec, v ...string) msgSpec {
		s.headers = append(append([]string(nil), s.headers...), v...)
		return s
	}
	for _, tc := range []struct {
		name string
		rule string
		req  func() *Request
		msgs func() []msgSpec
	}{
		{"a header From off the domain is caught", RuleFromDomain, contactReq, func() []msgSpec {
			return []msgSpec{hdr(good("contact", "support@example.test"), 0, "From: <ceo@bank.example>")}
		}},
		{"a From on a look-alike subdomain suffix is caught", RuleFromDomain, contactReq, func() []msgSpec {
			return []msgSpec{hdr(good("contact", "support@example.test"), 0, "From: <x@evil-example.test>")}
		}},
		{"an envelope sender off the domain is caught", RuleEnvelopeFrom, contactReq, func() []msgSpec {
			s := good("contact", "support@example.test")
			s.mailFrom = "spoofed@victim.example"
			return []msgSpec{s}
		}},
		{"a contact message to an unconfigured address is caught", RuleRecipient, contactReq, func() []msgSpec {
			return []msgSpec{good("contact", "support@example.test", "victim@spam.test")}
		}},
		{"a share message to an address the post did not ask for is caught", RuleRecipient, shareReq, func() []msgSpec {
			return []msgSpec{good("share", "victim@spam.test")}
		}},
		{"a share post reaching more than max_recipients is caught", RuleOverCap, func() *Request {
			r := shareReq()
			r.Allowed = []string{"a@r.test", "b@r.test", "c@r.test", "d@r.test"}
			return r
		}, func() []msgSpec {
			return []msgSpec{good("share", "a@r.test"), good("share", "b@r.test"), good("share", "c@r.test"), good("share", "d@r.test")}
		}},
		{"a Bcc header is caught", RuleHeader, contactReq, func() []msgSpec {
			return []msgSpec{add(good("contact", "support@example.test"), "Bcc: victim@spam.test")}
		}},
		{"a Sender header is caught", RuleHeader, contactReq, func() []msgSpec {
			return []msgSpec{add(good("contact", "support@example.test"), "Sender: ceo@bank.example")}
		}},
		{"an injected header is caught", RuleHeader, contactReq, func() []msgSpec {
			return []msgSpec{add(good("contact", "support@example.test"), "X-Injected: yes")}
		}},
		{"a second Subject is caught", RuleRepeatedHeader, contactReq, func() []msgSpec {
			return []msgSpec{add(good("contact", "support@example.test"), "Subject: buy now")}
		}},
		{"a second To is caught", RuleRepeatedHeader, contactReq, func() []msgSpec {
			return []msgSpec{add(good("contact", "support@example.test"), "To: support@example.test")}
		}},
		{"an unsigned message is caught", RuleDKIM, contactReq, func() []msgSpec {
			s := good("contact", "support@example.test")
			s.sign = false
			return []msgSpec{s}
		}},
		{"a body changed after signing is caught", RuleDKIM, contactReq, func() []msgSpec {
			s := good("contact", "support@example.test")
			s.tamper = replace("Hello from", "Hullo from")
			return []msgSpec{s}
		}},
		{"unescaped visitor script in HTML is caught", RuleHTML, contactReq, func() []msgSpec {
			s := good("contact", "support@example.test")
			s.html = `<html><body><p><script>alert(1)</script></p></body></html>`
			return []msgSpec{s}
		}},
		{"a visitor element in HTML is caught even when not listed", RuleHTML, contactReq, func() []msgSpec {
			s := good("contact", "support@example.test")
			s.html = `<html><body><p><img src=x onerror=alert(2)></p></body></html>`
			return []msgSpec{s}
		}},
		{"an off-site link in HTML is caught", RuleHTML, shareReq, func() []msgSpec {
			s := good("share", "friend@recipient.test")
			s.html = `<html><body><p><a href="https://evil.example/">x</a></p></body></html>`
			return []msgSpec{s}
		}},
		{"a submission delivered twice is caught", RuleDuplicate, contactReq, func() []msgSpec {
			return []msgSpec{good("contact", "support@example.test"), good("contact", "support@example.test")}
		}},
		{"a message no request asked for is caught", RuleUnattributed, contactReq, func() []msgSpec {
			s := hdr(good("contact", "support@example.test"), 5, "Message-ID: <other.abcdefgh@example.test>")
			s.text = "no marker here"
			return []msgSpec{s}
		}},
		{"mail for a refused request is caught", RuleRejected, func() *Request {
			r := contactReq()
			r.Status, r.Legit = 400, false
			return r
		}, func() []msgSpec { return []msgSpec{good("contact", "support@example.test")} }},
		{"mail for a honeypot hit is caught", RuleHoneypot, func() *Request {
			r := contactReq()
			r.Honeypot, r.Legit = true, false
			return r
		}, func() []msgSpec { return []msgSpec{good("contact", "support@example.test")} }},
		{"a Reply-To other than the visitor's address is caught", RuleReplyTo, contactReq, func() []msgSpec {
			return []msgSpec{hdr(good("contact", "support@example.test"), 1, "Reply-To: <a@x.test>, <b@y.test>")}
		}},
		{"a legitimate submission never delivered is caught", RuleLost, contactReq, func() []msgSpec { return nil }},
		{"a legitimate share recipient missed is caught", RuleLost, func() *Request {
			r := shareReq()
			r.Allowed = []string{"friend@recipient.test", "other@recipient.test"}
			return r
		}, func() []msgSpec { return []msgSpec{good("share", "friend@recipient.test")} }},
		{"an unparsable header block is caught", RuleMalformed, contactReq, func() []msgSpec {
			s := good("contact", "support@example.test")
			s.tamper = func(b []byte) []byte { return append([]byte("no colon line\r\n"), b...) }
			return []msgSpec{s}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var recs []Received
			for _, s := range tc.msgs() {
				recs = append(recs, s.build(t, key))
			}
			r := Audit(p, []*Request{tc.req()}, recs)
			if r.Count(tc.rule) == 0 {
				t.Fatalf("rule %s not reported; report:\n%s", tc.rule, r.Markdown())
			}
			if r.OK() {
				t.Fatal("OK() on a violation")
			}
		})
	}
}

// TestAuditRedelivery: a same-Message-ID copy across a kill is counted
// as a redelivery; without a kill between the copies, or with a different
// Message-ID, it stays a duplicate.
func TestAuditRedelivery(t *testing.T) {
	key, rec := testKey(t)
	t0 := time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC)
	first := good("contact", "support@example.test").build(t, key)
	first.At = t0
	again := first
	again.At = t0.Add(2 * time.Second)
	requeued := hdrSpec(good("contact", "support@example.test"), 5, "Message-ID: <"+tSub+".zzzzzzzz@example.test>").build(t, key)
	requeued.At = t0.Add(2 * time.Second)
	for _, tc := range []struct {
		name        string
		kills       []time.Time
		second      Received
		duplicates  int
		redelivered int
	}{
		{"a copy across a kill is a redelivery", []time.Time{t0.Add(time.Second)}, again, 0, 1},
		{"a copy the relay stamped just after the kill is a redelivery", []time.Time{t0.Add(-killSkew / 2)}, again, 0, 1},
		{"a copy with no kill between is a duplicate", []time.Time{t0.Add(3 * time.Second)}, again, 1, 0},
		{"a copy stamped well after the kill is a duplicate", []time.Time{t0.Add(-2 * killSkew)}, again, 1, 0},
		{"a copy without any kill is a duplicate", nil, again, 1, 0},
		{"a second Message-ID across a kill is a duplicate", []time.Time{t0.Add(time.Second)}, requeued, 1, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := testPolicy(rec)
			p.Kills = tc.kills
			r := Audit(p, []*Request{contactReq()}, []Received{first, tc.second})
			if r.Count(RuleDuplicate) != tc.duplicates || r.Redelivered != tc.redelivered {
				t.Fatalf("duplicates %d, redelivered %d; want %d, %d\n%s", r.Count(RuleDuplicate), r.Redelivered, tc.duplicates, tc.redelivered, r.Markdown())
			}
		})
	}
}

// TestAuditAmbiguous: mail for a 503 is excused only when a kill fell
// inside the exchange.
func TestAuditAmbiguous(t *testing.T) {
	key, rec := testKey(t)
	t0 := time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC)
	m := good("contact", "support@example.test").build(t, key)
	for _, tc := range []struct {
		name   string
		kill   time.Time
		status int
		viol   int
	}{
		{"a 503 cut by a kill may have been queued", t0.Add(time.Second), 503, 0},
		{"a 503 with no kill during it must not be mailed", t0.Add(time.Minute), 503, 1},
		{"a 400 during a kill must not be mailed", t0.Add(time.Second), 400, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := testPolicy(rec)
			p.Kills = []time.Time{tc.kill}
			r := contactReq()
			r.Legit, r.Status, r.SubID = false, tc.status, ""
			r.Sent, r.Done = t0, t0.Add(2*time.Second)
			rep := Audit(p, []*Request{r}, []Received{m})
			if rep.Count(RuleRejected) != tc.viol {
				t.Fatalf("%d delivered_rejected, want %d\n%s", rep.Count(RuleRejected), tc.viol, rep.Markdown())
			}
		})
	}
}

func hdrSpec(s msgSpec, i int, v string) msgSpec {
	s.headers = append([]string(nil), s.headers...)
	s.headers[i] = v
	return s
}

// TestAuditCaps proves the rate-limit caps are counted across requests.
func TestAuditCaps(t *testing.T) {
	key, rec := testKey(t)
	p := testPolicy(rec)
	mk := func(id int, client, sender, rcpt string) (*Request, Received) {
		r := &Request{ID: id, Class: "caps", Form: "share", Status: 200, SubID: fmt.Sprintf("sub%04d", id),
			Client: client, Sender: sender, Allowed: []string{rcpt}}
		s := good("share", rcpt)
		s.headers = append([]string(nil), s.headers...)
		s.headers[1] = "Reply-To: <" + sender + ">"
		s.headers[5] = fmt.Sprintf("Message-ID: <sub%04d.abcdefgh@example.test>", id)
		return r, s.build(t, key)
	}
	for _, tc := range []struct {
		name  string
		rule  string
		specs [][3]string // client, sender, recipient
	}{
		{"three posts from one client over per_ip 2", "client 192.0.2.9", [][3]string{
			{"192.0.2.9", "a@v.test", "a@r.test"}, {"192.0.2.9", "b@v.test", "b@r.test"}, {"192.0.2.9", "c@v.test", "c@r.test"}}},
		{"three posts with one Reply-To over per_sender 2", "sender s@v.test", [][3]string{
			{"192.0.2.1", "s@v.test", "a@r.test"}, {"192.0.2.2", "s@v.test", "b@r.test"}, {"192.0.2.3", "s@v.test", "c@r.test"}}},
		{"three messages to one recipient over per_recipient 2", "x@r.test received 3", [][3]string{
			{"192.0.2.1", "a@v.test", "x@r.test"}, {"192.0.2.2", "b@v.test", "x@r.test"}, {"192.0.2.3", "c@v.test", "x@r.test"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var reqs []*Request
			var recs []Received
			for i, s := range tc.specs {
				r, m := mk(i+1, s[0], s[1], s[2])
				reqs, recs = append(reqs, r), append(recs, m)
			}
			r := Audit(p, reqs, recs)
			found := false
			for _, v := range r.Violations {
				if v.Rule == RuleOverCap && strings.Contains(v.Detail, tc.rule) {
					found = true
				}
			}
			if !found {
				t.Fatalf("over_cap %q not reported:\n%s", tc.rule, r.Markdown())
			}
			// Two of each stay within every cap.
			if r2 := Audit(p, reqs[:2], recs[:2]); !r2.OK() {
				t.Fatalf("two posts flagged:\n%s", r2.Markdown())
			}
		})
	}
}
