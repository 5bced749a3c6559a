package mailer

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net/mail"
	"net/textproto"
	"strings"

	"golang.org/x/net/publicsuffix"
)

// ErrPolicy matches every *PolicyError with errors.Is.
var ErrPolicy = errors.New("mailer: message violates the sending policy")

// Policy rules, as stable codes in PolicyError.Rule.
const (
	RuleMalformed     = "malformed"       // the message or envelope cannot be parsed
	RuleEnvelopeFrom  = "envelope_from"   // MAIL FROM not on the site's organisational domain
	RuleRecipients    = "recipients"      // no, or malformed, RCPT TO addresses
	RuleFrom          = "from"            // header From missing, repeated, or not one address on the domain
	RuleForbidden     = "forbidden_field" // Sender, Cc, Bcc, Return-Path or Resent-* present
	RuleReplyTo       = "reply_to"        // more than one Reply-To address
	RuleToHeader      = "to_header"       // a To address that is not an envelope recipient
	RuleMessageID     = "message_id"      // Message-ID missing or not on the domain
	RuleAutoSubmitted = "auto_submitted"  // Auto-Submitted missing or not auto-generated
	RuleDKIM          = "dkim"            // DKIM-Signature missing, or d=/s= not ours
	RuleSeal          = "seal"            // an unsigned queued message without the Mailer's seal
)

// PolicyError is a message refused before any connection was made.
type PolicyError struct {
	Rule   string // one of the Rule* codes
	Detail string
}

func (e *PolicyError) Error() string {
	return "mailer: policy " + e.Rule + ": " + e.Detail
}

// Is makes errors.Is(err, ErrPolicy) true.
func (e *PolicyError) Is(target error) bool { return target == ErrPolicy }

// Temporary reports false: a refused message never becomes acceptable.
func (e *PolicyError) Temporary() bool { return false }

func violation(rule, format string, a ...any) error {
	return &PolicyError{Rule: rule, Detail: fmt.Sprintf(format, a...)}
}

// Policy is the alignment lock every outgoing message passes, including
// hand-built ones and messages read back from the outbox:
//
//   - header From is exactly one address on Domain (DMARC alignment,
//     RFC 7489 3.1) and there is exactly one From field (RFC 5322 3.6);
//   - the envelope MAIL FROM is on the same organisational domain, so SPF
//     (RFC 7208) aligns with From;
//   - Sender, Cc, Bcc, Return-Path and Resent-* are absent (Return-Path is
//     added by the final delivery agent, RFC 5321 4.4);
//   - Reply-To, the only place a visitor's address may appear, holds at
//     most one address;
//   - every To address is an envelope recipient;
//   - Message-ID is <...@Domain> and Auto-Submitted is auto-generated
//     (RFC 3834 5), so auto-responders do not answer;
//   - when Selector is set, there is exactly one DKIM-Signature and its d=
//     equals the From domain and s= the selector (RFC 6376 3.5); any other
//     DKIM-Signature is refused either way.
type Policy struct {
	Domain   string // site domain (lower case)
	Selector string // DKIM selector; "" when messages are unsigned
}

// orgDomain returns the organisational domain (eTLD+1) of d, or d itself
// when the public suffix list has no answer (e.g. a bare TLD).
func orgDomain(d string) string {
	d = strings.ToLower(strings.TrimSuffix(d, "."))
	if o, err := publicsuffix.EffectiveTLDPlusOne(d); err == nil {
		return o
	}
	return d
}

func addrDomain(addr string) string {
	i := strings.LastIndexByte(addr, '@')
	if i < 0 {
		return ""
	}
	return strings.ToLower(addr[i+1:])
}

// validPath reports whether a is a plain addr-spec fit for MAIL/RCPT:
// local@domain, no whitespace, controls or angle brackets (RFC 5321 4.1.2).
func validPath(a string) bool {
	if len(a) > 254 || strings.Count(a, "@") < 1 {
		return false
	}
	for _, r := range a {
		if r <= ' ' || r == 0x7f || r == '<' || r == '>' {
			return false
		}
	}
	i := strings.LastIndexByte(a, '@')
	return i > 0 && i < len(a)-1
}

// Check verifies env and raw against the policy. It reads only the header.
func (p *Policy) Check(env Envelope, raw []byte) error { return p.check(env, raw, true) }

// check is Check; signed=false checks a message before it is signed: every
// rule applies, except that there must be no DKIM-Signature at all yet (a
// signature already present would be a second one, or a forged one).
func (p *Policy) check(env Envelope, raw []byte, signed bool) error {
	domain := strings.ToLower(p.Domain)
	if !validPath(env.From) || orgDomain(addrDomain(env.From)) != orgDomain(domain) {
		return violation(RuleEnvelopeFrom, "MAIL FROM %q is not on %s", env.From, orgDomain(domain))
	}
	if len(env.To) == 0 {
		return violation(RuleRecipients, "no envelope recipients")
	}
	rcpt := make(map[string]bool, len(env.To))
	for _, to := range env.To {
		if !validPath(to) {
			return violation(RuleRecipients, "malformed envelope recipient %q", to)
		}
		rcpt[strings.ToLower(to)] = true
	}
	hdr, err := readHeader(raw)
	if err != nil {
		return violation(RuleMalformed, "%v", err)
	}
	if err := checkAddresses(hdr, domain, rcpt); err != nil {
		return err
	}
	if id := hdr.Values("Message-Id"); len(id) != 1 || !messageIDOn(id[0], domain) {
		return violation(RuleMessageID, "Message-ID must be one <...@%s>", domain)
	}
	if as := hdr.Values("Auto-Submitted"); len(as) != 1 || !strings.EqualFold(strings.TrimSpace(as[0]), "auto-generated") {
		return violation(RuleAutoSubmitted, "Auto-Submitted must be auto-generated")
	}
	return p.checkSignatures(hdr.Values("Dkim-Signature"), domain, signed)
}

// checkAddresses applies the rules on From, the forbidden fields,
// Reply-To and To; rcpt holds the envelope recipients in lower case.
func checkAddresses(hdr textproto.MIMEHeader, domain string, rcpt map[string]bool) error {
	from := hdr.Values("From")
	if len(from) != 1 {
		return violation(RuleFrom, "%d From fields", len(from))
	}
	fa, err := mail.ParseAddressList(from[0])
	if err != nil || len(fa) != 1 {
		return violation(RuleFrom, "From is not exactly one address")
	}
	if d := addrDomain(fa[0].Address); d != domain {
		return violation(RuleFrom, "From domain %q is not %s", d, domain)
	}
	for name := range hdr {
		switch n := strings.ToLower(name); {
		case n == "sender", n == "cc", n == "bcc", n == "return-path", strings.HasPrefix(n, "resent-"):
			return violation(RuleForbidden, "%s field present", name)
		}
	}
	if rt := hdr.Values("Reply-To"); len(rt) > 1 {
		return violation(RuleReplyTo, "%d Reply-To fields", len(rt))
	} else if len(rt) == 1 {
		if l, err := mail.ParseAddressList(rt[0]); err != nil || len(l) != 1 {
			return violation(RuleReplyTo, "Reply-To is not exactly one address")
		}
	}
	for _, v := range hdr.Values("To") {
		l, err := mail.ParseAddressList(v)
		if err != nil {
			return violation(RuleToHeader, "unparsable To")
		}
		for _, a := range l {
			if !rcpt[strings.ToLower(a.Address)] {
				return violation(RuleToHeader, "To %q is not an envelope recipient", a.Address)
			}
		}
	}
	return nil
}

// checkSignatures applies the DKIM rule; From is known to be on domain.
func (p *Policy) checkSignatures(sigs []string, domain string, signed bool) error {
	if !signed && len(sigs) != 0 {
		return violation(RuleDKIM, "%d DKIM signatures before signing, want none", len(sigs))
	}
	if signed && p.Selector != "" && len(sigs) != 1 {
		return violation(RuleDKIM, "%d DKIM signatures, want 1", len(sigs))
	}
	for _, s := range sigs {
		tags := dkimTags(s)
		if !strings.EqualFold(tags["d"], domain) {
			return violation(RuleDKIM, "DKIM d=%q does not match From domain %s", tags["d"], domain)
		}
		if p.Selector != "" && tags["s"] != p.Selector {
			return violation(RuleDKIM, "DKIM s=%q is not selector %q", tags["s"], p.Selector)
		}
	}
	return nil
}

// readHeader parses the header block of raw (RFC 5322 2.2), which must end
// with an empty line.
func readHeader(raw []byte) (textproto.MIMEHeader, error) {
	end := bytes.Index(raw, []byte("\r\n\r\n"))
	if end < 0 {
		return nil, errors.New("no end of header")
	}
	r := textproto.NewReader(bufio.NewReader(bytes.NewReader(raw[:end+4])))
	h, err := r.ReadMIMEHeader()
	if err != nil {
		return nil, err
	}
	return h, nil
}

// messageIDOn reports whether v is one msg-id "<left@right>" with right
// equal to domain (RFC 5322 3.6.4).
func messageIDOn(v, domain string) bool {
	v = strings.TrimSpace(v)
	if len(v) < 5 || v[0] != '<' || v[len(v)-1] != '>' || strings.ContainsAny(v[1:len(v)-1], "<> \t") {
		return false
	}
	at := strings.LastIndexByte(v, '@')
	return at > 1 && strings.EqualFold(v[at+1:len(v)-1], domain)
}

// dkimTags parses a DKIM-Signature tag list (RFC 6376 3.2) loosely: enough
// to read d= and s=, whitespace removed.
func dkimTags(v string) map[string]string {
	tags := map[string]string{}
	for _, part := range strings.Split(v, ";") {
		k, val, ok := strings.Cut(part, "=")
		if !ok {
			continue
		}
		k = strings.TrimSpace(k)
		if _, dup := tags[k]; dup {
			tags[k] = "\x00duplicate" // RFC 6376 3.2: duplicate tags invalidate
			continue
		}
		tags[k] = strings.Map(func(r rune) rune {
			if r == ' ' || r == '\t' || r == '\r' || r == '\n' {
				return -1
			}
			return r
		}, val)
	}
	return tags
}
