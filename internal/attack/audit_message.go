package attack

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/mail"
	"strings"

	"github.com/emersion/go-msgauth/dkim"
	"golang.org/x/net/html"
)

// allowedHeaders are the only header fields the service's messages may
// carry (RFC 5322 3.6 plus MIME, DKIM and RFC 3834's Auto-Submitted).
var allowedHeaders = map[string]bool{
	"From": true, "To": true, "Subject": true, "Date": true, "Message-Id": true,
	"Reply-To": true, "Mime-Version": true, "Content-Type": true,
	"Content-Transfer-Encoding": true, "Dkim-Signature": true,
	"Auto-Submitted": true, "X-Auto-Response-Suppress": true,
}

// singleHeaders may appear at most once (RFC 5322 3.6 table).
var singleHeaders = []string{"From", "To", "Subject", "Date", "Message-Id", "Reply-To", "Mime-Version", "Content-Type"}

// allowedTags are the elements the service's own HTML templates use; any
// other element in a message's HTML part came from a visitor.
var allowedTags = map[string]bool{
	"html": true, "head": true, "body": true, "p": true, "b": true, "table": true,
	"tr": true, "td": true, "pre": true, "a": true, "blockquote": true,
	"hr": true, "small": true, "meta": true, "br": true, "div": true, "span": true,
}

// parsed is one received message, decoded.
type parsed struct {
	rec     Received
	hdr     mail.Header
	subRef  string // submission ID from the Message-ID
	text    string
	html    string
	err     error
	request *Request
}

func domainOf(addr string) string {
	i := strings.LastIndexByte(addr, '@')
	if i < 0 {
		return ""
	}
	return strings.ToLower(strings.TrimSuffix(addr[i+1:], "."))
}

func (a *auditor) message(rec Received) {
	m := parse(rec)
	m.request = a.attribute(m)
	r := m.request
	if r == nil {
		a.class(Unattributed).Delivered++
		a.violate(nil, RuleUnattributed, "message to %v (Message-ID ref %q) matches no request", rec.RcptTo, m.subRef)
	} else {
		a.class(r.Class).Delivered++
		a.delivered[r] = append(a.delivered[r], m)
	}
	// The envelope first: it is what SPF judges (RFC 7208 2.4).
	if domainOf(rec.MailFrom) != strings.ToLower(a.p.Domain) {
		a.violate(r, RuleEnvelopeFrom, "MAIL FROM %q is off %s", rec.MailFrom, a.p.Domain)
	}
	if m.err != nil {
		a.violate(r, RuleMalformed, "%v", m.err)
		return
	}
	h := m.hdr
	for k, vs := range h {
		if !allowedHeaders[k] {
			a.violate(r, RuleHeader, "header %s: %q", k, vs)
		}
	}
	for _, k := range singleHeaders {
		if n := len(h[k]); n > 1 {
			a.violate(r, RuleRepeatedHeader, "%d %s fields", n, k)
		}
	}
	for _, k := range []string{"From", "To", "Subject"} {
		if len(h[k]) == 0 {
			a.violate(r, RuleRepeatedHeader, "no %s field", k)
		}
	}
	if froms, err := h.AddressList("From"); err != nil || len(froms) != 1 {
		a.violate(r, RuleFromDomain, "From %q is not one address", h["From"])
	} else if domainOf(froms[0].Address) != strings.ToLower(a.p.Domain) {
		a.violate(r, RuleFromDomain, "From %q is off %s", froms[0].Address, a.p.Domain)
	}
	a.recipients(r, m)
	if rt := h["Reply-To"]; len(rt) > 0 {
		list, err := h.AddressList("Reply-To")
		switch {
		case err != nil || len(list) != 1:
			a.violate(r, RuleReplyTo, "Reply-To %q is not one address", rt)
		case r != nil && !strings.EqualFold(list[0].Address, r.Sender):
			a.violate(r, RuleReplyTo, "Reply-To %q, the visitor gave %q", list[0].Address, r.Sender)
		}
	}
	a.dkim(r, rec.Data)
	a.html(r, m)
}

// attribute finds the request a message answers: by the submission ID in
// its Message-ID, else by the marker in its text.
func (a *auditor) attribute(m *parsed) *Request {
	if r, ok := a.bySub[m.subRef]; ok && m.subRef != "" {
		return r
	}
	for _, body := range []string{m.text, m.html} {
		for _, tok := range markerRE(body) {
			if r, ok := a.byMarker[tok]; ok {
				return r
			}
		}
	}
	return nil
}

func (a *auditor) recipients(r *Request, m *parsed) {
	rcpts := m.rec.RcptTo
	if len(rcpts) == 0 {
		a.violate(r, RuleRecipient, "no RCPT TO")
	}
	var hdrTo []string
	if list, err := m.hdr.AddressList("To"); err == nil {
		for _, x := range list {
			hdrTo = append(hdrTo, strings.ToLower(x.Address))
		}
	} else if len(m.hdr["To"]) > 0 {
		a.violate(r, RuleRecipient, "To %q does not parse: %v", m.hdr["To"], err)
	}
	env := map[string]bool{}
	for _, x := range rcpts {
		env[strings.ToLower(x)] = true
	}
	for _, x := range hdrTo {
		if !env[x] {
			a.violate(r, RuleRecipient, "To %q is not an envelope recipient", x)
		}
	}
	if r == nil {
		return
	}
	if to, ok := a.p.Contact[r.Form]; ok {
		allowed := lowerSet(to)
		for _, x := range rcpts {
			if !allowed[strings.ToLower(x)] {
				a.violate(r, RuleRecipient, "contact form %s mailed %q, configured %v", r.Form, x, to)
			}
		}
		return
	}
	if _, ok := a.p.Share[r.Form]; !ok {
		a.violate(r, RuleRecipient, "form %q is neither a configured contact nor a share form", r.Form)
		return
	}
	// The per-request cap is checked over all its messages in perRequest.
	if len(rcpts) > 1 {
		a.violate(r, RuleOverCap, "one share message to %d recipients (each must get their own)", len(rcpts))
	}
	allowed := lowerSet(r.Allowed)
	for _, x := range rcpts {
		if !allowed[strings.ToLower(x)] {
			a.violate(r, RuleRecipient, "share form %s mailed %q, which the post did not legitimately ask for", r.Form, x)
		}
	}
}

func lowerSet(xs []string) map[string]bool {
	s := make(map[string]bool, len(xs))
	for _, x := range xs {
		s[strings.ToLower(x)] = true
	}
	return s
}

func (a *auditor) dkim(r *Request, raw []byte) {
	opts := &dkim.VerifyOptions{
		LookupTXT: func(name string) ([]string, error) {
			if strings.EqualFold(strings.TrimSuffix(name, "."), a.p.DKIMSelector+"._domainkey."+a.p.Domain) {
				return []string{a.p.DKIMRecord}, nil
			}
			return nil, fmt.Errorf("no TXT record for %s", name)
		},
		MaxVerifications: 5,
	}
	vs, err := dkim.VerifyWithOptions(bytes.NewReader(raw), opts)
	if err != nil {
		a.violate(r, RuleDKIM, "verifier: %v", err)
		return
	}
	if len(vs) == 0 {
		a.violate(r, RuleDKIM, "no DKIM-Signature")
		return
	}
	for _, v := range vs {
		if v.Err != nil {
			a.violate(r, RuleDKIM, "signature d=%s: %v", v.Domain, v.Err)
		} else if !strings.EqualFold(v.Domain, a.p.Domain) {
			a.violate(r, RuleDKIM, "signature by d=%s, not %s", v.Domain, a.p.Domain)
		}
	}
}

// html checks the HTML part: only the templates' own elements, links only
// to the site, and no visitor markup verbatim.
func (a *auditor) html(r *Request, m *parsed) {
	if m.html == "" {
		return
	}
	if r != nil {
		for _, s := range r.Markup {
			if s != "" && strings.Contains(m.html, s) {
				a.violate(r, RuleHTML, "visitor markup %q appears unescaped", s)
			}
		}
	}
	z := html.NewTokenizer(strings.NewReader(m.html))
	for {
		tt := z.Next()
		if tt == html.ErrorToken {
			return
		}
		if tt != html.StartTagToken && tt != html.SelfClosingTagToken && tt != html.EndTagToken {
			continue
		}
		t := z.Token()
		if !allowedTags[t.Data] {
			a.violate(r, RuleHTML, "element <%s> is not the template's", t.Data)
			continue
		}
		for _, at := range t.Attr {
			switch {
			case at.Key == "style":
			case at.Key == "href" && t.Data == "a":
				if !a.onSite(at.Val) {
					a.violate(r, RuleHTML, "link to %q is off the site", at.Val)
				}
			case (at.Key == "charset" || at.Key == "name" || at.Key == "content") && t.Data == "meta":
			default:
				a.violate(r, RuleHTML, "attribute %s=%q on <%s>", at.Key, at.Val, t.Data)
			}
		}
	}
}

func (a *auditor) onSite(u string) bool {
	for _, o := range a.p.Origins {
		if u == o || strings.HasPrefix(u, o+"/") || strings.HasPrefix(u, o+"?") || strings.HasPrefix(u, o+"#") {
			return true
		}
	}
	return false
}

// parse decodes a message's header and its text and HTML parts.
func parse(rec Received) *parsed {
	m := &parsed{rec: rec}
	msg, err := mail.ReadMessage(bytes.NewReader(rec.Data))
	if err != nil {
		m.err = fmt.Errorf("header: %w", err)
		return m
	}
	m.hdr = msg.Header
	if id := strings.Trim(msg.Header.Get("Message-Id"), "<> "); id != "" {
		if i := strings.IndexByte(id, '.'); i > 0 {
			m.subRef = id[:i]
		}
	}
	if err := m.walk(msg.Header.Get("Content-Type"), msg.Header.Get("Content-Transfer-Encoding"), msg.Body, 0); err != nil {
		m.err = err
	}
	return m
}

func (m *parsed) walk(ctype, cte string, body io.Reader, depth int) error {
	if depth > 5 {
		return fmt.Errorf("MIME nesting deeper than 5")
	}
	if ctype == "" {
		ctype = "text/plain"
	}
	mt, params, err := mime.ParseMediaType(ctype)
	if err != nil {
		return fmt.Errorf("Content-Type %q: %w", ctype, err)
	}
	if strings.HasPrefix(mt, "multipart/") {
		mr := multipart.NewReader(body, params["boundary"])
		for {
			part, err := mr.NextPart()
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return fmt.Errorf("multipart: %w", err)
			}
			// multipart.Reader decodes quoted-printable itself.
			if err := m.walk(part.Header.Get("Content-Type"), part.Header.Get("Content-Transfer-Encoding"), part, depth+1); err != nil {
				return err
			}
		}
	}
	var r io.Reader = body
	switch strings.ToLower(strings.TrimSpace(cte)) {
	case "base64":
		r = base64.NewDecoder(base64.StdEncoding, body)
	case "quoted-printable":
		r = newQP(body)
	}
	b, err := io.ReadAll(io.LimitReader(r, MaxSinkMessage))
	if err != nil {
		return fmt.Errorf("%s body: %w", mt, err)
	}
	switch mt {
	case "text/plain":
		m.text += string(b)
	case "text/html":
		m.html += string(b)
	default:
		return fmt.Errorf("unexpected part %s", mt)
	}
	return nil
}
