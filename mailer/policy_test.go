package mailer

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/formguard/formguard/mailer/outbox"
	mail "github.com/wneessen/go-mail"
)

// handBuilt returns a go-mail message a caller might assemble itself.
func handBuilt() *mail.Msg {
	m := mail.NewMsg()
	m.From("no-reply@example.test")
	m.To("staff@example.test")
	m.Subject("hand built")
	m.SetBodyString(mail.TypeTextPlain, "hello")
	return m
}

func TestDeliverMsgRefusesMisaligned(t *testing.T) {
	relay := newSink(t, "")
	key := loadKey(t, "ed25519.pem")
	f := newFixture(t, "", smtpTo(t, relay.Addr), key, nil)
	cases := []struct {
		name   string
		mutate func(*mail.Msg)
		rule   string
	}{
		{"From on another domain", func(m *mail.Msg) { m.From("ceo@bank.example") }, RuleFrom},
		{"From on a subdomain", func(m *mail.Msg) { m.From("x@sub.example.test") }, RuleFrom},
		{"From via a raw header field", func(m *mail.Msg) { m.SetGenHeader("From", "ceo@bank.example") }, RuleFrom},
		{"envelope sender on another organisation", func(m *mail.Msg) { m.EnvelopeFrom("bounce@evil.example") }, RuleEnvelopeFrom},
		{"Cc", func(m *mail.Msg) { m.Cc("victim@x.example") }, RuleForbidden},
		{"Bcc", func(m *mail.Msg) { m.Bcc("victim@x.example") }, RuleForbidden},
		{"Sender", func(m *mail.Msg) { m.SetGenHeader("Sender", "v@visitor.example") }, RuleForbidden},
		{"Return-Path", func(m *mail.Msg) { m.SetGenHeader("Return-Path", "<v@visitor.example>") }, RuleForbidden},
		{"Resent-From", func(m *mail.Msg) { m.SetGenHeader("Resent-From", "v@visitor.example") }, RuleForbidden},
		{"two Reply-To addresses", func(m *mail.Msg) { m.SetAddrHeader(mail.HeaderReplyTo, "a@x.example", "b@y.example") }, RuleReplyTo},
		{"Message-ID on another domain", func(m *mail.Msg) { m.SetMessageIDWithValue("x@evil.example") }, RuleMessageID},
		{"Auto-Submitted changed", func(m *mail.Msg) { m.SetGenHeader("Auto-Submitted", "no") }, RuleAutoSubmitted},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := handBuilt()
			tc.mutate(m)
			err := f.m.DeliverMsg(context.Background(), m)
			var pe *PolicyError
			if !errors.Is(err, ErrPolicy) || !errors.As(err, &pe) || pe.Rule != tc.rule {
				t.Fatalf("err = %v, want rule %s", err, tc.rule)
			}
			if !IsPermanent(err) {
				t.Fatal("policy errors must be permanent")
			}
		})
	}
	if st, _ := f.m.Stats(context.Background()); st.Depth != 0 {
		t.Fatalf("%d refused messages queued", st.Depth)
	}
	if c := relay.conns.Load(); c != 0 {
		t.Fatalf("%d connections made for refused messages", c)
	}

	t.Run("aligned hand-built message is signed and sent", func(t *testing.T) {
		m := handBuilt()
		m.ReplyTo("visitor@v.example")
		if err := f.m.DeliverMsg(context.Background(), m); err != nil {
			t.Fatal(err)
		}
		f.m.Flush(context.Background())
		r := relay.wait(1)[0]
		verifyDKIM(t, r.Data, key.Public())
		if as := header(t, r.Data, "Auto-Submitted"); len(as) != 1 || as[0] != "auto-generated" {
			t.Fatalf("Auto-Submitted = %q", as)
		}
	})
}

// A message written into the outbox behind the Mailer's back (older
// version, another instance, an intruder) is refused by the worker before
// any connection and dead-lettered with the reason.
func TestWorkerRefusesTamperedOutbox(t *testing.T) {
	relay := newSink(t, "")
	key := loadKey(t, "ed25519.pem")
	f := newFixture(t, "", smtpTo(t, relay.Addr), key, nil)
	ctx := context.Background()
	good, err := f.m.Compose(contact("sub-1"))
	if err != nil {
		t.Fatal(err)
	}
	forged := bytes.Replace(good[0].Raw, []byte("From: \"Ada Lovelace via Example\" <no-reply@example.test>"),
		[]byte("From: <ceo@bank.example>"), 1)
	if bytes.Equal(forged, good[0].Raw) {
		t.Fatalf("test did not alter From:\n%s", good[0].Raw)
	}
	bad := []*outbox.Message{
		{From: "bounces@mail.example.test", To: []string{"x@y.example"}, Raw: forged},
		{From: "spoof@evil.example", To: good[0].To, Raw: good[0].Raw},
	}
	if err := f.q.Enqueue(ctx, bad...); err != nil {
		t.Fatal(err)
	}
	f.m.Flush(ctx)
	if c := relay.conns.Load(); c != 0 {
		t.Fatalf("%d connections for refused messages", c)
	}
	dl, _ := f.q.DeadLetters()
	if len(dl) != 2 {
		t.Fatalf("dead letters = %d", len(dl))
	}
	for _, m := range dl {
		if !strings.Contains(m.LastError, "mailer: policy") {
			t.Errorf("reason = %q", m.LastError)
		}
	}
}

func TestPolicyCheck(t *testing.T) {
	p := &Policy{Domain: testDomain, Selector: "s1"}
	env := Envelope{From: "b@example.test", To: []string{"r@x.example"}}
	base := "DKIM-Signature: v=1; a=ed25519-sha256; d=example.test; s=s1; h=from; bh=x; b=y\r\n" +
		"From: <n@example.test>\r\nTo: r@x.example\r\nMessage-ID: <a.b@example.test>\r\n" +
		"Auto-Submitted: auto-generated\r\nSubject: s\r\n\r\nbody\r\n"
	if err := p.Check(env, []byte(base)); err != nil {
		t.Fatalf("base message refused: %v", err)
	}
	cases := []struct {
		name string
		env  *Envelope
		raw  string
		rule string
	}{
		{"DKIM by another domain", nil, strings.Replace(base, "d=example.test", "d=evil.example", 1), RuleDKIM},
		{"DKIM other selector", nil, strings.Replace(base, "s=s1", "s=s2", 1), RuleDKIM},
		{"no DKIM", nil, base[strings.Index(base, "From:"):], RuleDKIM},
		{"second signature", nil, "DKIM-Signature: d=example.test; s=s1\r\n" + base, RuleDKIM},
		{"duplicate d= tag", nil, strings.Replace(base, "d=example.test;", "d=example.test; d=evil.example;", 1), RuleDKIM},
		{"two From fields", nil, strings.Replace(base, "To:", "From: <x@example.test>\r\nTo:", 1), RuleFrom},
		{"From list of two", nil, strings.Replace(base, "From: <n@example.test>", "From: <n@example.test>, <e@evil.example>", 1), RuleFrom},
		{"From group syntax", nil, strings.Replace(base, "From: <n@example.test>", "From: g: <n@example.test>, <e@evil.example>;", 1), RuleFrom},
		{"To not an envelope recipient", nil, strings.Replace(base, "To: r@x.example", "To: r@x.example, other@z.example", 1), RuleToHeader},
		{"no header end", nil, "From: <n@example.test>\r\n", RuleMalformed},
		{"envelope recipient with bracket", &Envelope{From: env.From, To: []string{"a@b>"}}, base, RuleRecipients},
		{"envelope sender with CRLF", &Envelope{From: "b@example.test\r\nRCPT TO:<x@y>", To: env.To}, base, RuleEnvelopeFrom},
		{"empty envelope", &Envelope{From: env.From}, base, RuleRecipients},
		{"public suffix is not an organisation", &Envelope{From: "b@co.uk", To: env.To}, base, RuleEnvelopeFrom},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := env
			if tc.env != nil {
				e = *tc.env
			}
			err := p.Check(e, []byte(tc.raw))
			var pe *PolicyError
			if !errors.As(err, &pe) || pe.Rule != tc.rule {
				t.Fatalf("err = %v, want rule %s", err, tc.rule)
			}
		})
	}
}

func FuzzPolicyCheck(f *testing.F) {
	f.Add("b@example.test", "r@x.example", "From: <n@example.test>\r\nTo: r@x.example\r\nMessage-ID: <a@example.test>\r\nAuto-Submitted: auto-generated\r\n\r\nx")
	f.Add("b@example.test", "r@x.example", "From: =?utf-8?q?a?= <n@example.test>\r\nReply-To: \"x\" <a@b>\r\n\r\n")
	f.Add("", "", "\r\n\r\n")
	p := &Policy{Domain: testDomain}
	f.Fuzz(func(t *testing.T, from, to, raw string) {
		env := Envelope{From: from, To: []string{to}}
		if err := p.Check(env, []byte(raw)); err != nil {
			return
		}
		// Whatever passes is aligned.
		h, err := readHeader([]byte(raw))
		if err != nil {
			t.Fatal("accepted an unparsable header")
		}
		if orgDomain(addrDomain(from)) != testDomain {
			t.Fatalf("accepted MAIL FROM %q", from)
		}
		for _, k := range []string{"Sender", "Cc", "Bcc", "Return-Path"} {
			if len(h.Values(k)) != 0 {
				t.Fatalf("accepted %s", k)
			}
		}
		if len(h.Values("From")) != 1 {
			t.Fatal("accepted From count != 1")
		}
	})
}

func FuzzRefoldSignature(f *testing.F) {
	f.Add([]byte("DKIM-Signature: v=1; c=relaxed/relaxed; d=example.test; s=s1;\r\n h=From:To:Su\r\n bject; bh=abc; b=AAAA\r\n BBBB\r\nFrom: x\r\n\r\nbody"))
	f.Add([]byte("From: x\r\n\r\n"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		out := refoldSignature(raw)
		// Unfolding both must give the same text under relaxed header
		// canonicalization (RFC 6376 3.4.2: runs of WSP are one SP):
		// refolding only moves folding whitespace after "; " and inside
		// b=.
		unfold := func(b []byte) string {
			s := strings.NewReplacer("\r\n ", "", "\r\n\t", "").Replace(string(b))
			s = strings.Join(strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == '\t' }), " ")
			return strings.ReplaceAll(s, "; ", ";")
		}
		if !bytes.HasPrefix(raw, []byte("DKIM-Signature:")) && !bytes.Equal(out, raw) {
			t.Fatal("changed a message without a leading signature")
		}
		a, b := unfold(raw), unfold(out)
		if a != b {
			t.Fatalf("content changed:\n%q\n%q", a, b)
		}
	})
}

func TestCheckedTransport(t *testing.T) {
	relay := newSink(t, "")
	tr := Checked(smtpTo(t, relay.Addr), &Policy{Domain: testDomain})
	defer tr.Close()
	forged := []byte("From: <ceo@bank.example>\r\nTo: r@x.example\r\n\r\nhi\r\n")
	err := tr.Send(context.Background(), Envelope{From: "b@example.test", To: []string{"r@x.example"}}, forged)
	if !errors.Is(err, ErrPolicy) {
		t.Fatalf("err = %v", err)
	}
	if c := relay.conns.Load(); c != 0 {
		t.Fatalf("%d connections for a refused message", c)
	}
}

// Mailer.Policy is the lock the Mailer applies: a message it composed
// passes it, through Checked too, and a forged one does not.
func TestMailerPolicy(t *testing.T) {
	relay := newSink(t, "")
	f := newFixture(t, "", TransportFunc(nil), loadKey(t, "ed25519.pem"), nil)
	msgs, err := f.m.Compose(contact("sub-1"))
	if err != nil {
		t.Fatal(err)
	}
	p := f.m.Policy()
	if p.Domain != testDomain || p.Selector == "" {
		t.Fatalf("Policy() = %+v", p)
	}
	env := Envelope{From: msgs[0].From, To: msgs[0].To}
	tr := Checked(smtpTo(t, relay.Addr), p)
	defer tr.Close()
	if err := tr.Send(context.Background(), env, msgs[0].Raw); err != nil {
		t.Fatalf("a composed message: %v", err)
	}
	forged := []byte("From: <ceo@bank.example>\r\nTo: r@x.example\r\n\r\nhi\r\n")
	if err := p.Check(env, forged); !errors.Is(err, ErrPolicy) {
		t.Fatalf("a forged message: err = %v", err)
	}
	relay.wait(1)
}
