package attack

import (
	"fmt"
	"sort"
	"time"
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
