package attack

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/mail"
	"sort"
	"strings"
	"time"

	"github.com/emersion/go-msgauth/dkim"
	"golang.org/x/net/html"
)

// Violation rules, stable strings used in reports and tests.
const (
	RuleFromDomain     = "from_domain"        // header From missing, repeated or off the site domain
	RuleEnvelopeFrom   = "envelope_from"      // MAIL FROM off the site domain
	RuleRecipient      = "recipient"          // a recipient no accepted post was allowed to reach
	RuleOverCap        = "over_cap"           // more recipients or messages than a cap allows
	RuleHeader         = "unexpected_header"  // Cc, Bcc, Sender, injected or unknown header
	RuleRepeatedHeader = "repeated_header"    // more than one From/To/Subject/Reply-To/...
	RuleDKIM           = "dkim"               // signature missing or not verifying
	RuleHTML           = "html_markup"        // visitor markup unescaped in the HTML part
	RuleMalformed      = "malformed"          // the message cannot be parsed
	RuleDuplicate      = "duplicate"          // one submission delivered twice to one recipient
	RuleUnattributed   = "unattributed"       // a message no request of this run asked for
	RuleRejected       = "delivered_rejected" // a message for a request that was not accepted
	RuleHoneypot       = "honeypot_delivered" // a honeypot hit produced mail
	RuleReplyTo        = "reply_to"           // Reply-To not the visitor's validated address
	RuleLost           = "lost"               // an accepted (or legitimate) submission not delivered
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

// Policy is what the audit holds the delivered mail to.
type Policy struct {
	// Domain is the site domain: header From and MAIL FROM must be on it.
	Domain string
	// DKIMSelector and DKIMRecord are the selector and the TXT record
	// ("v=DKIM1; k=...; p=...") the verifier is fed for
	// selector._domainkey.Domain.
	DKIMSelector string
	DKIMRecord   string
	// Contact maps a contact form to its configured recipients.
	Contact map[string][]string
	// Share maps a share form to its max_recipients.
	Share map[string]int
	// Origins are the scheme://host[:port] prefixes links in HTML may use.
	Origins []string
	// Caps are the rate-limit caps per form over the whole run (zero: not
	// checked).
	Caps map[string]Caps
	// RequireAccepted makes every accepted (2xx, not a honeypot) request
	// that got a submission ID a delivery the audit insists on, as the
	// fault scenarios need; legitimate requests are always insisted on.
	RequireAccepted bool
	// Kills are when the service (or Redis) was killed with SIGKILL. A
	// request answered 503 while a kill happened may still have been
	// queued (Report.Ambiguous). A message whose
	// relay acceptance raced a kill may be sent again after the restart,
	// with the same Message-ID (SMTP cannot tell the client the 250 was
	// received: RFC 5321 6.1, RFC 1047); such a copy is counted in
	// Report.Redelivered instead of as a duplicate. Copies with different
	// Message-IDs (queued twice), or with no kill between them, are
	// always duplicates.
	Kills []time.Time
}

// Caps are one form's rate-limit caps as the audit checks them.
type Caps struct {
	PerIP, PerSender, PerRecipient int
}

// Request is one request the harness sent, as the audit needs it.
type Request struct {
	ID     int
	Class  string
	Form   string
	Status int // HTTP status; 0 when the request failed below HTTP
	// SuccessRedirect is a 303 to a page other than the error page: the
	// success answer to a plain HTML post.
	SuccessRedirect bool
	// Note describes the variant (for the trace).
	Note string
	// Sent and Done bracket the exchange.
	Sent, Done time.Time
	SubID      string // submission ID from a JSON success answer
	Marker     string // token put in the visitor's message, "" when none
	// Legit requests must be accepted and delivered to every address in
	// Allowed (share) or to the form's recipients (contact).
	Legit bool
	// Honeypot requests must produce no mail whatever the answer.
	Honeypot bool
	// Allowed are the share recipients this request may legitimately
	// reach, lower-case (IDNs in both Unicode and punycode forms).
	Allowed []string
	// Client is the client identity the service should see (an IPv4
	// address or an IPv6 /64), for the per-IP cap.
	Client string
	// Sender is the visitor address the request gave ("" none).
	Sender string
	// Markup are visitor strings that must never appear verbatim in an
	// HTML part (they must arrive escaped).
	Markup []string
}

// Accepted reports a 2xx answer, or the success redirect of an HTML post.
func (r *Request) Accepted() bool { return r.Status >= 200 && r.Status < 300 || r.SuccessRedirect }

// Violation is one broken rule.
type Violation struct {
	Class   string
	Rule    string
	Request int // request ID, -1 when unattributed
	Detail  string
}

func (v Violation) String() string {
	return fmt.Sprintf("%s: %s (request %d): %s", v.Class, v.Rule, v.Request, v.Detail)
}

// ClassResult is one row of the report.
type ClassResult struct {
	Class      string
	Requests   int
	Accepted   int
	Delivered  int
	Violations int
	Lost       int
}

// Report is the audit's outcome.
type Report struct {
	Classes    []ClassResult
	Total      ClassResult
	Violations []Violation
	// Clients is the number of distinct client identities that sent.
	Clients int
	// Redelivered counts same-Message-ID copies sent again across a kill.
	Redelivered int
	// Ambiguous counts requests answered 503 while a dependency was being
	// killed whose mail was nevertheless queued and delivered (the write
	// landed, its reply was lost).
	Ambiguous []int
}

// OK reports no violation (lost submissions are violations too).
func (r *Report) OK() bool { return len(r.Violations) == 0 }

// Count returns how many violations have rule.
func (r *Report) Count(rule string) int {
	n := 0
	for _, v := range r.Violations {
		if v.Rule == rule {
			n++
		}
	}
	return n
}

// Markdown renders the per-class table and lists the violations.
func (r *Report) Markdown() string {
	var b strings.Builder
	if r.Clients > 0 {
		fmt.Fprintf(&b, "%d requests from %d distinct clients.\n\n", r.Total.Requests, r.Clients)
	}
	b.WriteString("| class | requests | accepted (2xx/303) | messages delivered | violations | lost |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|\n")
	row := func(c ClassResult, bold bool) {
		name := c.Class
		if bold {
			name = "**" + name + "**"
		}
		fmt.Fprintf(&b, "| %s | %d | %d | %d | %d | %d |\n", name, c.Requests, c.Accepted, c.Delivered, c.Violations, c.Lost)
	}
	for _, c := range r.Classes {
		row(c, false)
	}
	row(r.Total, true)
	if len(r.Violations) > 0 {
		b.WriteString("\nViolations:\n\n")
		for i, v := range r.Violations {
			if i == 50 {
				fmt.Fprintf(&b, "- ... and %d more\n", len(r.Violations)-50)
				break
			}
			fmt.Fprintf(&b, "- %s\n", v)
		}
	}
	return b.String()
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

// Audit checks every received message against p and the requests sent.
func Audit(p Policy, reqs []*Request, msgs []Received) *Report {
	a := &auditor{p: p, rep: &Report{}, bySub: map[string]*Request{}, byMarker: map[string]*Request{},
		delivered: map[*Request][]*parsed{}, classes: map[string]*ClassResult{}}
	for _, r := range reqs {
		c := a.class(r.Class)
		c.Requests++
		if r.Accepted() {
			c.Accepted++
		}
		if r.SubID != "" {
			a.bySub[r.SubID] = r
		}
		if r.Marker != "" {
			a.byMarker[r.Marker] = r
		}
	}
	for _, m := range msgs {
		a.message(m)
	}
	clients := map[string]bool{}
	for _, r := range reqs {
		if r.Client != "" {
			clients[r.Client] = true
		}
	}
	a.rep.Clients = len(clients)
	a.perRequest(reqs)
	a.caps(reqs)
	names := make([]string, 0, len(a.classes))
	for n := range a.classes {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		c := a.classes[n]
		a.rep.Classes = append(a.rep.Classes, *c)
		t := &a.rep.Total
		t.Requests += c.Requests
		t.Accepted += c.Accepted
		t.Delivered += c.Delivered
		t.Violations += c.Violations
		t.Lost += c.Lost
	}
	a.rep.Total.Class = "total"
	return a.rep
}

type auditor struct {
	p         Policy
	rep       *Report
	bySub     map[string]*Request
	byMarker  map[string]*Request
	delivered map[*Request][]*parsed
	classes   map[string]*ClassResult
}

// Unattributed is the class of messages no request asked for.
const Unattributed = "unattributed"

func (a *auditor) class(name string) *ClassResult {
	c, ok := a.classes[name]
	if !ok {
		c = &ClassResult{Class: name}
		a.classes[name] = c
	}
	return c
}

func (a *auditor) violate(r *Request, rule, format string, args ...any) {
	v := Violation{Class: Unattributed, Rule: rule, Request: -1, Detail: fmt.Sprintf(format, args...)}
	if r != nil {
		v.Class, v.Request = r.Class, r.ID
	}
	a.rep.Violations = append(a.rep.Violations, v)
	a.class(v.Class).Violations++
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

// perRequest checks what each request got against what it may get.
func (a *auditor) perRequest(reqs []*Request) {
	for _, r := range reqs {
		got := a.delivered[r]
		if r.Honeypot && len(got) > 0 {
			a.violate(r, RuleHoneypot, "%d messages for a honeypot hit", len(got))
			continue
		}
		// No answer at all (the service was killed mid-request) may or may
		// not have been queued: delivery is allowed, twice is not.
		if len(got) > 0 && r.Status == 503 && a.killedDuring(r) {
			a.rep.Ambiguous = append(a.rep.Ambiguous, r.ID)
		} else if len(got) > 0 && !r.Accepted() && r.Status != 0 {
			a.violate(r, RuleRejected, "%d messages for a request answered %d", len(got), r.Status)
		}
		seen := map[string]int{}
		copies := map[string][]*parsed{}
		for _, m := range got {
			for _, x := range m.rec.RcptTo {
				seen[strings.ToLower(x)]++
				copies[strings.ToLower(x)] = append(copies[strings.ToLower(x)], m)
			}
		}
		for x, n := range seen {
			if n <= 1 {
				continue
			}
			if a.redelivery(copies[x]) {
				a.rep.Redelivered += n - 1
				continue
			}
			var desc []string
			for _, m := range copies[x] {
				desc = append(desc, fmt.Sprintf("%s at %s", m.hdr.Get("Message-Id"), m.rec.At.Format("15:04:05.000")))
			}
			a.violate(r, RuleDuplicate, "%q got this submission %d times: %s", x, n, strings.Join(desc, ", "))
		}
		if capN, ok := a.p.Share[r.Form]; ok && len(seen) > capN {
			a.violate(r, RuleOverCap, "share post reached %d recipients, max_recipients is %d", len(seen), capN)
		}
		want := a.expected(r)
		if len(want) == 0 {
			continue
		}
		lost := 0
		for _, x := range want {
			if seen[strings.ToLower(x)] == 0 {
				lost++
			}
		}
		if lost > 0 {
			a.class(r.Class).Lost++
			a.violate(r, RuleLost, "answered %d, %d of %d recipients never got it", r.Status, lost, len(want))
		}
	}
}

// killedDuring reports a kill while r was in flight.
func (a *auditor) killedDuring(r *Request) bool {
	for _, k := range a.p.Kills {
		if !k.Before(r.Sent) && !k.After(r.Done) {
			return true
		}
	}
	return false
}

// killSkew is how much later than a kill the relay may record a copy
// that the killed process had already written: the relay reads and stamps
// it on its own goroutine, which a loaded machine can delay.
const killSkew = 250 * time.Millisecond

// redelivery reports copies of one message (one Message-ID), each pair
// separated by a kill of the service.
func (a *auditor) redelivery(ms []*parsed) bool {
	if len(a.p.Kills) == 0 {
		return false
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].rec.At.Before(ms[j].rec.At) })
	id := ms[0].hdr.Get("Message-Id")
	for i := 1; i < len(ms); i++ {
		if id == "" || ms[i].hdr.Get("Message-Id") != id {
			return false
		}
		killed := false
		for _, k := range a.p.Kills {
			// The relay stamps a copy when it has read it, which can be
			// just after the kill of a process that wrote it just before.
			killed = killed || (k.After(ms[i-1].rec.At.Add(-killSkew)) && k.Before(ms[i].rec.At))
		}
		if !killed {
			return false
		}
	}
	return true
}

// expected are the recipients r must reach.
func (a *auditor) expected(r *Request) []string {
	if r.Honeypot || !(r.Legit || (a.p.RequireAccepted && r.Accepted() && r.SubID != "")) {
		return nil
	}
	if to, ok := a.p.Contact[r.Form]; ok {
		return to
	}
	if r.Legit {
		return dedupIDN(r.Allowed)
	}
	// An accepted non-legit share post: at least one of its recipients.
	if len(a.delivered[r]) == 0 {
		return []string{"(any recipient)"}
	}
	return nil
}

// dedupIDN keeps one form of each address (Allowed lists IDNs twice).
func dedupIDN(xs []string) []string {
	var out []string
	for _, x := range xs {
		if !strings.Contains(domainOf(x), "xn--") && !isASCII(x) {
			continue // the Unicode twin of a punycode entry
		}
		out = append(out, x)
	}
	return out
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// caps checks the rate-limit tiers over everything delivered.
func (a *auditor) caps(reqs []*Request) {
	type key struct{ form, k string }
	perIP := map[key][]*Request{}
	perSender := map[key][]*Request{}
	perRcpt := map[key]int{}
	for _, r := range reqs {
		got := a.delivered[r]
		if len(got) == 0 {
			continue
		}
		if r.Client != "" {
			perIP[key{r.Form, r.Client}] = append(perIP[key{r.Form, r.Client}], r)
		}
		if r.Sender != "" {
			k := key{r.Form, strings.ToLower(r.Sender)}
			perSender[k] = append(perSender[k], r)
		}
		if _, share := a.p.Share[r.Form]; share {
			for _, m := range got {
				for _, x := range m.rec.RcptTo {
					perRcpt[key{r.Form, strings.ToLower(x)}]++
				}
			}
		}
	}
	for k, rs := range perIP {
		if c := a.p.Caps[k.form].PerIP; c > 0 && len(rs) > c {
			a.violate(rs[c], RuleOverCap, "client %s got %d posts through form %s, per_ip is %d", k.k, len(rs), k.form, c)
		}
	}
	for k, rs := range perSender {
		if c := a.p.Caps[k.form].PerSender; c > 0 && len(rs) > c {
			a.violate(rs[c], RuleOverCap, "sender %s got %d posts through form %s, per_sender is %d", k.k, len(rs), k.form, c)
		}
	}
	for k, n := range perRcpt {
		if c := a.p.Caps[k.form].PerRecipient; c > 0 && n > c {
			a.violate(nil, RuleOverCap, "%s received %d messages from form %s, per_recipient is %d", k.k, n, k.form, c)
		}
	}
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
