package guard

import (
	"fmt"
	"net/url"
	"sort"
	"strings"

	"github.com/formguard/formguard/guard/ratelimit"
)

// senderKeys are field names by which other form tools let a visitor choose
// the sender or extra recipients. They are refused outright (after folding
// case and dropping "_", "-" and "." so "_Reply-To" and "replyto" match).
var senderKeys = map[string]bool{
	"from": true, "sender": true, "cc": true, "bcc": true, "replyto": true,
	"returnpath": true, "mailfrom": true, "envelopefrom": true, "envelopesender": true,
	"fromaddress": true, "fromemail": true, "fromname": true, "headers": true, "header": true,
	"xheaders": true, "errorsto": true, "resentfrom": true, "resentto": true, "resentcc": true,
	"resentbcc": true, "dispositionnotificationto": true, "recipient": true, "recipients": true,
	"to": true, "toaddress": true, "toemail": true, "sendto": true, "mailto": true,
}

func foldKey(k string) string {
	var b strings.Builder
	for i := 0; i < len(k); i++ {
		c := k[i]
		switch {
		case c == '_' || c == '-' || c == '.' || c == ' ':
			continue
		case 'A' <= c && c <= 'Z':
			b.WriteByte(c + 'a' - 'A')
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// policy is a Form with every default applied and every list parsed: built
// once by New so Check never re-derives settings per request.
type policy struct {
	name      string
	form      Form
	names     FieldNames
	choice    string
	honeypot  string
	captchaF  string
	tokenF    string
	allowed   map[string]bool // every field name a post may carry
	extra     []string
	maxRcpt   int
	maxLinks  int // -1: none allowed
	maxBody   int64
	limits    Limits
	emailReq  bool
	maxName   int
	maxSubj   int
	maxMsg    int
	to        []string            // contact: fixed recipients, normalised
	choices   map[string][]string // contact: normalised
	allowDom  []string
	denyDom   []string
	successTo string
	errorTo   string
}

func orDefault[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

func orLimit(l, def ratelimit.Limit) ratelimit.Limit {
	if l.IsZero() {
		return def
	}
	return l
}

func compileForm(g *Guard, name string, f Form) (*policy, error) {
	if name == "" || strings.ContainsAny(name, "/?#% ") {
		return nil, fmt.Errorf("guard: form name %q: must be non-empty and URL-path safe", name)
	}
	p := &policy{name: name, form: f, honeypot: DefaultHoneypotField}
	p.names = FieldNames{
		Name:    orDefault(f.Fields.Name, "name"),
		Email:   orDefault(f.Fields.Email, "email"),
		Subject: orDefault(f.Fields.Subject, "subject"),
		Message: orDefault(f.Fields.Message, "message"),
		To:      orDefault(f.Fields.To, "to"),
		URL:     orDefault(f.Fields.URL, "url"),
	}
	p.choice = orDefault(f.ChoiceField, DefaultChoiceField)
	p.maxBody = orDefault(f.MaxBody, int64(DefaultMaxBody))
	if f.MaxBody < 0 {
		return nil, fmt.Errorf("guard: form %q: MaxBody must not be negative", name)
	}
	p.maxName = orDefault(f.MaxName, DefaultMaxName)
	p.maxSubj = orDefault(f.MaxSubject, DefaultMaxSubject)
	p.limits = Limits{
		PerIP:        orLimit(f.Limits.PerIP, DefaultPerIP),
		PerNetwork:   orLimit(f.Limits.PerNetwork, DefaultPerNetwork),
		PerSender:    orLimit(f.Limits.PerSender, DefaultPerSender),
		PerRecipient: orLimit(f.Limits.PerRecipient, DefaultPerRecipient),
		PerForm:      orLimit(f.Limits.PerForm, DefaultPerForm),
	}
	p.allowed = map[string]bool{p.names.Name: true, p.names.Email: true, p.names.Message: true, p.honeypot: true, DefaultRedirectFieldKey: true}
	switch f.Kind {
	case KindContact:
		p.maxMsg = orDefault(f.MaxMessage, DefaultMaxMessage)
		p.maxLinks = orDefault(f.MaxLinks, DefaultContactLinks)
		p.emailReq = true
		p.allowed[p.names.Subject] = true
		if f.MaxRecipients != 0 || len(f.RecipientDomains) > 0 || len(f.DenyRecipientDomains) > 0 {
			return nil, fmt.Errorf("guard: form %q: MaxRecipients and recipient domain lists apply to share forms only", name)
		}
		if len(f.To) == 0 && len(f.Choices) == 0 {
			return nil, fmt.Errorf("guard: form %q: a contact form needs To or Choices", name)
		}
		for _, a := range f.To {
			n, err := ParseAddress(a)
			if err != nil {
				return nil, fmt.Errorf("guard: form %q: recipient %q: %v", name, a, err)
			}
			p.to = append(p.to, n)
		}
		if len(f.Choices) > 0 {
			p.allowed[p.choice] = true
			p.choices = make(map[string][]string, len(f.Choices))
			for k, list := range f.Choices {
				if k == "" || !SingleLine(k) || len(list) == 0 {
					return nil, fmt.Errorf("guard: form %q: choice %q needs a name and at least one address", name, k)
				}
				for _, a := range list {
					n, err := ParseAddress(a)
					if err != nil {
						return nil, fmt.Errorf("guard: form %q: choice %q: recipient %q: %v", name, k, a, err)
					}
					p.choices[k] = append(p.choices[k], n)
				}
			}
		}
	case KindShare:
		p.maxMsg = orDefault(f.MaxMessage, DefaultMaxShareMessage)
		p.maxLinks = orDefault(f.MaxLinks, DefaultShareLinks)
		p.emailReq = f.RequireEmail
		p.maxRcpt = orDefault(f.MaxRecipients, DefaultMaxRecipients)
		if f.MaxRecipients < 0 {
			return nil, fmt.Errorf("guard: form %q: MaxRecipients must be positive", name)
		}
		if len(f.To) > 0 || len(f.Choices) > 0 {
			return nil, fmt.Errorf("guard: form %q: share forms take recipients from the visitor; To and Choices are for contact forms", name)
		}
		p.allowed[p.names.To] = true
		p.allowed[p.names.URL] = true
		for _, d := range f.RecipientDomains {
			n, err := normaliseDomain(d)
			if err != nil {
				return nil, fmt.Errorf("guard: form %q: recipient domain %q: %v", name, d, err)
			}
			p.allowDom = append(p.allowDom, n)
		}
		for _, d := range f.DenyRecipientDomains {
			n, err := normaliseDomain(d)
			if err != nil {
				return nil, fmt.Errorf("guard: form %q: denied domain %q: %v", name, d, err)
			}
			p.denyDom = append(p.denyDom, n)
		}
		if f.Captcha == nil && f.Token == nil && !f.AllowNoBotDefence {
			return nil, fmt.Errorf("guard: form %q: a share form needs a Captcha or Token verifier (or AllowNoBotDefence)", name)
		}
	default:
		return nil, fmt.Errorf("guard: form %q: unknown kind %d", name, f.Kind)
	}
	if f.RequireEmail {
		p.emailReq = true
	}
	if p.maxLinks < 0 {
		p.maxLinks = -1
	}
	if f.Captcha != nil {
		p.captchaF = f.Captcha.Field()
		p.allowed[p.captchaF] = true
	}
	if f.Token != nil {
		p.tokenF = f.Token.Field()
		p.allowed[p.tokenF] = true
	}
	for _, x := range f.ExtraFields {
		if x == "" || senderKeys[foldKey(x)] || p.allowed[x] {
			return nil, fmt.Errorf("guard: form %q: extra field %q is empty, reserved or duplicated", name, x)
		}
		p.allowed[x] = true
		p.extra = append(p.extra, x)
	}
	for field := range p.allowed {
		if senderKeys[foldKey(field)] && !(f.Kind == KindShare && field == p.names.To) {
			return nil, fmt.Errorf("guard: form %q: field name %q would let a visitor choose a sender or recipient", name, field)
		}
	}
	var err error
	if p.successTo, err = g.sameSite(f.SuccessURL); err != nil {
		return nil, fmt.Errorf("guard: form %q: SuccessURL: %v", name, err)
	}
	if p.errorTo, err = g.sameSite(f.ErrorURL); err != nil {
		return nil, fmt.Errorf("guard: form %q: ErrorURL: %v", name, err)
	}
	return p, nil
}

// sameSite accepts "" (none), a path ("/thanks") or an absolute URL on one
// of the allowed origins.
func (g *Guard) sameSite(s string) (string, error) {
	if s == "" {
		return "", nil
	}
	u, err := url.Parse(s)
	if err != nil {
		return "", err
	}
	if u.Scheme == "" && u.Host == "" && u.User == nil && strings.HasPrefix(u.Path, "/") && !strings.HasPrefix(s, "//") && !strings.ContainsAny(s, "\\\r\n\t") {
		return s, nil
	}
	if g.originAllowed(u.Scheme+"://"+u.Host) && u.User == nil {
		return s, nil
	}
	return "", fmt.Errorf("%q is not on an allowed origin", s)
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
