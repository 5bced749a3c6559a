package mailer

import (
	"bytes"
	"encoding/base32"
	"errors"
	"fmt"
	"github.com/formguard/formguard/post"
	"io"
	netmail "net/mail"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/formguard/formguard/mailer/outbox"
	mail "github.com/wneessen/go-mail"
)

var b32 = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// ErrSubmission is returned by Deliver for a submission it cannot mail.
var ErrSubmission = errors.New("mailer: unusable submission")

func badSubmission(format string, a ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrSubmission}, a...)...)
}

// randomToken returns 16 lower-case base32 characters (80 bits) from r.
func randomToken(r io.Reader) (string, error) {
	var b [10]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return "", fmt.Errorf("mailer: reading randomness: %w", err)
	}
	return b32.EncodeToString(b[:]), nil
}

// validSubmissionID allows the URL-safe alphabet the guard produces, so the
// ID can sit in a Message-ID's dot-atom (RFC 5322 3.6.4).
func validSubmissionID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

// cleanLine makes s a safe single header line: control characters become
// spaces, runs of whitespace collapse, and it is capped at max runes.
func cleanLine(s string, max int) string {
	var b strings.Builder
	space := false
	n := 0
	for _, r := range s {
		if r == utf8.RuneError || unicode.IsControl(r) || unicode.IsSpace(r) ||
			unicode.In(r, unicode.Cf, unicode.Zl, unicode.Zp) {
			space = true
			continue
		}
		if n >= max {
			break
		}
		if space && b.Len() > 0 {
			b.WriteByte(' ')
			n++
		}
		space = false
		b.WriteRune(r)
		n++
	}
	return b.String()
}

// displayName builds "Ada via Example" from a visitor's name. Characters
// that make a name look like an address or break out of a quoted string
// are dropped, so "ceo@bank.example" cannot pose as a sender.
func displayName(visitor, site string) string {
	v := strings.Map(func(r rune) rune {
		switch r {
		case '"', '\\', '<', '>', '@', ',', ';', ':', '(', ')', '[', ']':
			return -1
		}
		return r
	}, visitor)
	v = cleanLine(v, MaxDisplayNameRunes)
	if v == "" {
		return site
	}
	return v + " via " + site
}

// Compose renders s into finished, signed messages with their envelopes,
// without queueing them: one message to all recipients of a contact form,
// one message per recipient of a share form (recipients never see each
// other). Each result has passed the Policy. It is for previews, tools and
// tests: Deliver queues the messages unsigned (and sealed) and the delivery
// worker signs them right before sending.
func (m *Mailer) Compose(s *post.Submission) ([]*outbox.Message, error) {
	return m.compose(s, true)
}

// compose renders s; sign selects signed messages (Compose) or unsigned,
// sealed ones for the outbox (Deliver).
func (m *Mailer) compose(s *post.Submission, sign bool) ([]*outbox.Message, error) {
	built, err := m.build(s)
	if err != nil {
		return nil, err
	}
	out := make([]*outbox.Message, 0, len(built))
	for _, b := range built {
		om, err := m.finish(b.msg, b.qid, s.ID, b.env, sign)
		if err != nil {
			return nil, err
		}
		out = append(out, om)
	}
	return out, nil
}

// builtMsg is an unsigned go-mail message with its envelope.
type builtMsg struct {
	msg *mail.Msg
	qid string
	env Envelope
}

// build renders s into unsigned go-mail messages.
func (m *Mailer) build(s *post.Submission) ([]builtMsg, error) {
	tpl, err := m.checkSubmission(s)
	if err != nil {
		return nil, err
	}
	subject, text, html, err := m.render(s, tpl)
	if err != nil {
		return nil, err
	}
	// Share forms: the visitor's name is not put in a header of a message
	// to a stranger; contact forms go to staff, who benefit from it.
	name := m.site
	groups := [][]string{s.Recipients}
	if s.Kind == post.Contact {
		name = displayName(s.Name, m.site)
	} else {
		groups = groups[:0]
		for _, r := range s.Recipients {
			groups = append(groups, []string{r})
		}
	}
	out := make([]builtMsg, 0, len(groups))
	for _, to := range groups {
		msg, qid, err := m.newMsg(s.ID)
		if err != nil {
			return nil, err
		}
		msg.FromMailAddress(&netmail.Address{Name: name, Address: m.from})
		if s.ReplyTo != "" {
			if err := msg.ReplyTo(s.ReplyTo); err != nil {
				return nil, badSubmission("malformed Reply-To")
			}
		}
		if err := msg.To(to...); err != nil {
			return nil, badSubmission("malformed recipient")
		}
		msg.Subject(subject)
		msg.SetBodyString(mail.TypeTextPlain, text)
		if html != "" {
			msg.AddAlternativeString(mail.TypeTextHTML, html)
		}
		if err := msg.EnvelopeFrom(m.bounce); err != nil {
			return nil, fmt.Errorf("mailer: envelope sender: %w", err)
		}
		out = append(out, builtMsg{msg: msg, qid: qid, env: Envelope{From: m.bounce, To: to}})
	}
	return out, nil
}

// checkSubmission refuses a submission that cannot be mailed and returns
// the template for its form.
func (m *Mailer) checkSubmission(s *post.Submission) (Template, error) {
	if s == nil {
		return Template{}, badSubmission("nil submission")
	}
	if !validSubmissionID(s.ID) {
		return Template{}, badSubmission("submission ID %q is not URL-safe", s.ID)
	}
	if len(s.Recipients) == 0 {
		return Template{}, badSubmission("no recipients")
	}
	for _, r := range s.Recipients {
		if _, err := netmail.ParseAddress(r); err != nil || !validPath(r) {
			return Template{}, badSubmission("malformed recipient")
		}
	}
	if s.ReplyTo != "" && !bareAddress(s.ReplyTo) {
		return Template{}, badSubmission("malformed Reply-To")
	}
	if tpl, ok := m.templates[s.Form]; ok {
		return tpl, nil
	}
	switch s.Kind {
	case post.Contact:
		return DefaultContactTemplate, nil
	case post.Share:
		return DefaultShareTemplate, nil
	}
	return Template{}, badSubmission("unknown form kind %d", s.Kind)
}

// render executes tpl's parts for s; the subject is cut to one clean line.
// The built-in contact parts are rendered by fastpath.go: the template
// engine was about 40 % of the request path's CPU in composing a message.
func (m *Mailer) render(s *post.Submission, tpl Template) (subject, text, html string, err error) {
	data := &TemplateData{
		Site: m.site, Domain: m.domain, Form: s.Form, Kind: s.Kind.String(), ID: s.ID,
		Name: cleanLine(s.Name, 200), Email: s.ReplyTo, Subject: cleanLine(s.Subject, MaxSubjectRunes),
		Message: s.Message, URL: s.URL, Fields: s.Fields, Received: s.Received,
	}
	var b bytes.Buffer
	if tpl.Subject != nil {
		if !fastSubject(tpl, data, &b) {
			if err := tpl.Subject.Execute(&b, data); err != nil {
				return "", "", "", fmt.Errorf("mailer: subject template for form %q: %w", s.Form, err)
			}
		}
		subject, _, _ = strings.Cut(b.String(), "\n")
		subject, _, _ = strings.Cut(subject, "\r")
		subject = cleanLine(subject, MaxSubjectRunes)
		b.Reset()
	}
	if !fastText(tpl, data, &b) {
		if err := tpl.Text.Execute(&b, data); err != nil {
			return "", "", "", fmt.Errorf("mailer: text template for form %q: %w", s.Form, err)
		}
	}
	text = b.String()
	if tpl.HTML != nil {
		b.Reset()
		if !fastHTML(tpl, data, &b) {
			if err := tpl.HTML.Execute(&b, data); err != nil {
				return "", "", "", fmt.Errorf("mailer: HTML template for form %q: %w", s.Form, err)
			}
		}
		html = b.String()
	}
	return subject, text, html, nil
}

// newMsg starts a message with the fields the Mailer always controls.
func (m *Mailer) newMsg(ref string) (*mail.Msg, string, error) {
	qid, err := randomToken(m.rand)
	if err != nil {
		return nil, "", err
	}
	// The MIME boundary must be unpredictable: a visitor who knew it could
	// end a part early from inside the message text. It comes from Rand
	// (crypto/rand unless a test injects a seeded source).
	boundary, err := randomToken(m.rand)
	if err != nil {
		return nil, "", err
	}
	msg := mail.NewMsg(mail.WithNoDefaultUserAgent(), mail.WithEncoding(mail.EncodingQP),
		mail.WithCharset(mail.CharsetUTF8), mail.WithBoundary("fg-"+boundary+qid))
	msg.SetDateWithValue(m.now())
	msg.SetMessageIDWithValue(ref + "." + qid + "@" + m.domain)
	// RFC 3834 5: auto-responders must not answer auto-generated mail.
	msg.SetGenHeader("Auto-Submitted", "auto-generated")
	// Microsoft's equivalent, so Exchange out-of-office replies stay quiet.
	msg.SetGenHeader("X-Auto-Response-Suppress", "All")
	return msg, qid, nil
}

// finish renders msg and wraps it for the outbox. With sign, the result is
// DKIM-signed and passes the full Policy. Without, it is the unsigned
// message the worker will sign: it passes every Policy rule but carries no
// DKIM-Signature yet, and is sealed so the worker signs only what this
// Mailer (or another holding the same key) queued.
func (m *Mailer) finish(msg *mail.Msg, qid, ref string, env Envelope, sign bool) (*outbox.Message, error) {
	msg.SetDKIM(nil) // any signer a caller set is replaced by the Mailer's
	var buf bytes.Buffer
	if _, err := msg.WriteTo(&buf); err != nil {
		return nil, fmt.Errorf("mailer: rendering message: %w", err)
	}
	raw := buf.Bytes()
	om := &outbox.Message{ID: qid, Ref: ref, From: env.From, To: env.To, Enqueued: m.now()}
	if m.dkim.Signer == nil {
		if err := m.policy.Check(env, raw); err != nil {
			return nil, err
		}
		om.Raw = raw
		return om, nil
	}
	if err := m.policy.check(env, raw, false); err != nil {
		return nil, err
	}
	if !sign {
		om.Raw = raw
		m.sealer.seal(om)
		return om, nil
	}
	signed, err := m.dkim.sign(m.domain, m.now, raw)
	if err != nil {
		return nil, err
	}
	if err := m.policy.Check(env, signed); err != nil {
		return nil, err
	}
	om.Raw = signed
	return om, nil
}

// composeMsg locks a hand-built message for DeliverMsg.
func (m *Mailer) composeMsg(msg *mail.Msg) (*outbox.Message, error) {
	if msg == nil {
		return nil, badSubmission("nil message")
	}
	if len(msg.GetCc()) > 0 || len(msg.GetBcc()) > 0 {
		return nil, violation(RuleForbidden, "Cc or Bcc recipients")
	}
	to := msg.GetToString()
	if len(to) == 0 {
		return nil, violation(RuleRecipients, "no To recipients")
	}
	rcpt := make([]string, 0, len(to))
	for _, a := range msg.GetTo() {
		rcpt = append(rcpt, a.Address)
	}
	if len(msg.GetFrom()) == 0 {
		return nil, violation(RuleFrom, "no From address")
	}
	// The envelope sender is the configured Bounce unless the caller chose
	// one, which the Policy then checks.
	from := m.bounce
	if ef := msg.GetAddrHeader(mail.HeaderEnvelopeFrom); len(ef) > 0 {
		from = ef[0].Address
	}
	qid, err := randomToken(m.rand)
	if err != nil {
		return nil, err
	}
	ref := "msg"
	if msg.GetMessageID() == "" {
		msg.SetMessageIDWithValue(ref + "." + qid + "@" + m.domain)
	}
	if len(msg.GetGenHeader("Auto-Submitted")) == 0 {
		msg.SetGenHeader("Auto-Submitted", "auto-generated")
	}
	return m.finish(msg, qid, ref, Envelope{From: from, To: rcpt}, false)
}
