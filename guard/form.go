package guard

import (
	"fmt"
	"github.com/formguard/formguard/post"
	"net/url"
	"regexp"
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

// Bounds New puts on a Form's settings.
const (
	// MaxShareRecipients bounds MaxRecipients: a share form that mails
	// more strangers than this per post is a relay.
	MaxShareRecipients = 10
	// MaxFieldRunes bounds MaxName, MaxSubject and MaxMessage.
	MaxFieldRunes = 100_000
	// MaxBodyLimit bounds MaxBody.
	MaxBodyLimit = 32 << 20
)

// fieldNameRE is what a configured field or choice name may be: a plain
// token, so it reads the same in HTML, JSON and logs. A leading '_' is
// reserved for the guard's own fields (_gotcha, _next, _fg_token).
var fieldNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// FormError is New's report of a form setting it refuses. Key names the
// setting by Form's field names, as a path: "To[1]", "Choices.sales[0]",
// "Fields.Email", "MaxRecipients".
type FormError struct {
	Form string
	Key  string
	Msg  string
}

func (e *FormError) Error() string {
	return fmt.Sprintf("guard: form %q: %s: %s", e.Form, e.Key, e.Msg)
}

// WithDefaults returns f with every zero-value setting that has a default
// replaced by it: the values New really uses.
func (f Form) WithDefaults() Form {
	n := &f.Fields
	n.Name = orDefault(n.Name, "name")
	n.Email = orDefault(n.Email, "email")
	n.Subject = orDefault(n.Subject, "subject")
	n.Message = orDefault(n.Message, "message")
	f.MaxName = orDefault(f.MaxName, DefaultMaxName)
	f.MaxSubject = orDefault(f.MaxSubject, DefaultMaxSubject)
	f.MaxBody = orDefault(f.MaxBody, int64(DefaultMaxBody))
	switch f.Kind {
	case post.Contact:
		if len(f.Choices) > 0 {
			f.ChoiceField = orDefault(f.ChoiceField, DefaultChoiceField)
		}
		f.MaxMessage = orDefault(f.MaxMessage, DefaultMaxMessage)
		f.MaxLinks = orDefault(f.MaxLinks, DefaultContactLinks)
		f.RequireEmail = true
	case post.Share:
		n.To = orDefault(n.To, "to")
		n.URL = orDefault(n.URL, "url")
		f.MaxMessage = orDefault(f.MaxMessage, DefaultMaxShareMessage)
		f.MaxLinks = orDefault(f.MaxLinks, DefaultShareLinks)
		f.MaxRecipients = orDefault(f.MaxRecipients, DefaultMaxRecipients)
	}
	l := &f.Limits
	l.PerIP = orLimit(l.PerIP, DefaultPerIP)
	l.PerNetwork = orLimit(l.PerNetwork, DefaultPerNetwork)
	l.PerSender = orLimit(l.PerSender, DefaultPerSender)
	l.PerRecipient = orLimit(l.PerRecipient, DefaultPerRecipient)
	l.PerForm = orLimit(l.PerForm, DefaultPerForm)
	return f
}

// compileForm checks f and builds its policy from f.WithDefaults().
func compileForm(g *Guard, name string, f Form) (*policy, error) {
	if name == "" || strings.ContainsAny(name, "/?#% ") {
		return nil, fmt.Errorf("guard: form name %q: must be non-empty and URL-path safe", name)
	}
	e := f.WithDefaults()
	c := &formCompiler{p: &policy{name: name, form: f, honeypot: DefaultHoneypotField}}
	p := c.p
	p.names, p.maxBody, p.limits = e.Fields, e.MaxBody, e.Limits
	p.maxName, p.maxSubj, p.maxMsg = e.MaxName, e.MaxSubject, e.MaxMessage
	p.maxLinks, p.emailReq, p.maxRcpt = max(e.MaxLinks, -1), e.RequireEmail, e.MaxRecipients
	p.choice = orDefault(f.ChoiceField, DefaultChoiceField)
	c.checkBounds(e)
	switch f.Kind {
	case post.Contact:
		c.contact(f)
	case post.Share:
		c.share(f)
	default:
		return nil, &FormError{Form: name, Key: "Kind", Msg: fmt.Sprintf("unknown kind %d", f.Kind)}
	}
	c.fields(f)
	var err error
	if p.successTo, err = g.sameSite(f.SuccessURL); err != nil {
		c.bad("SuccessURL", "%v", err)
	}
	if p.errorTo, err = g.sameSite(f.ErrorURL); err != nil {
		c.bad("ErrorURL", "%v", err)
	}
	if c.err != nil {
		return nil, c.err
	}
	return p, nil
}

// formCompiler builds one policy, keeping the first problem found.
type formCompiler struct {
	p   *policy
	err *FormError
}

func (c *formCompiler) bad(key, format string, args ...any) {
	if c.err == nil {
		c.err = &FormError{Form: c.p.name, Key: key, Msg: fmt.Sprintf(format, args...)}
	}
}

func (c *formCompiler) checkBounds(e Form) {
	for key, v := range map[string]int{"MaxName": e.MaxName, "MaxSubject": e.MaxSubject, "MaxMessage": e.MaxMessage} {
		if v < 0 || v > MaxFieldRunes {
			c.bad(key, "must be between 0 (default) and %d", MaxFieldRunes)
		}
	}
	if e.MaxBody < 0 || e.MaxBody > MaxBodyLimit {
		c.bad("MaxBody", "must be between 0 (default) and %d", MaxBodyLimit)
	}
}

func (c *formCompiler) contact(f Form) {
	p := c.p
	p.allowed = c.baseFields()
	p.allowed[p.names.Subject] = true
	switch {
	case f.MaxRecipients != 0:
		c.bad("MaxRecipients", "applies to share forms only")
	case len(f.RecipientDomains) > 0 || len(f.DenyRecipientDomains) > 0:
		c.bad("RecipientDomains", "recipient domain lists apply to share forms only (a contact form's recipients are fixed)")
	case f.Fields.To != "" || f.Fields.URL != "":
		c.bad("Fields", "To and URL apply to share forms only")
	case len(f.To) == 0 && len(f.Choices) == 0:
		c.bad("To", "a contact form needs To or Choices")
	}
	p.to = c.addresses("To", f.To)
	if len(f.Choices) > 0 {
		p.allowed[p.choice] = true
		p.choices = make(map[string][]string, len(f.Choices))
		for _, k := range sortedKeys(f.Choices) {
			if !fieldNameRE.MatchString(k) || len(f.Choices[k]) == 0 {
				c.bad("Choices."+k, "choice %q needs a name of 1-64 letters, digits, _, . and - and at least one address", k)
			}
			p.choices[k] = c.addresses("Choices."+k, f.Choices[k])
		}
	}
}

func (c *formCompiler) addresses(key string, list []string) []string {
	var out []string
	for i, a := range list {
		n, err := ParseAddress(a)
		if err != nil {
			c.bad(fmt.Sprintf("%s[%d]", key, i), "recipient %q: %v", a, err)
		}
		out = append(out, n)
	}
	return out
}

func (c *formCompiler) share(f Form) {
	p := c.p
	p.allowed = c.baseFields()
	p.allowed[p.names.To] = true
	p.allowed[p.names.URL] = true
	switch {
	case len(f.To) > 0 || len(f.Choices) > 0:
		c.bad("To", "share forms take recipients from the visitor; To and Choices are for contact forms")
	case p.maxRcpt < 1 || p.maxRcpt > MaxShareRecipients:
		c.bad("MaxRecipients", "must be between 1 and %d", MaxShareRecipients)
	case f.Captcha == nil && f.Token == nil && !f.AllowNoBotDefence:
		c.bad("Captcha", "a share form needs a Captcha or Token verifier (or AllowNoBotDefence): without one it is an open relay")
	}
	p.allowDom = c.domains("RecipientDomains", f.RecipientDomains)
	p.denyDom = c.domains("DenyRecipientDomains", f.DenyRecipientDomains)
}

func (c *formCompiler) domains(key string, list []string) []string {
	var out []string
	for i, d := range list {
		n, err := normaliseDomain(d)
		if err != nil {
			c.bad(fmt.Sprintf("%s[%d]", key, i), "domain %q: %v", d, err)
		}
		out = append(out, n)
	}
	return out
}

func (c *formCompiler) baseFields() map[string]bool {
	n := c.p.names
	return map[string]bool{n.Name: true, n.Email: true, n.Message: true, c.p.honeypot: true, DefaultRedirectFieldKey: true}
}

// fields checks the configured field names and adds the bot defences' and
// the extra fields to what a post may carry.
func (c *formCompiler) fields(f Form) {
	p := c.p
	seen := map[string]string{}
	name := func(key, v string) {
		if v == "" {
			return
		}
		switch other, dup := seen[v]; {
		case !fieldNameRE.MatchString(v):
			c.bad(key, "%q: a field name is 1-64 letters, digits, _, . and -, not starting with _ (reserved)", v)
		case dup:
			c.bad(key, "%q is also used by %s", v, other)
		case senderKeys[foldKey(v)] && !(f.Kind == post.Share && key == "Fields.To"):
			c.bad(key, "field name %q would let a visitor choose a sender or recipient", v)
		}
		seen[v] = key
	}
	n := p.names
	name("Fields.Name", n.Name)
	name("Fields.Email", n.Email)
	name("Fields.Subject", n.Subject)
	name("Fields.Message", n.Message)
	if f.Kind == post.Share {
		name("Fields.To", n.To)
		name("Fields.URL", n.URL)
	}
	if len(f.Choices) > 0 {
		name("ChoiceField", p.choice)
	}
	for i, x := range f.ExtraFields {
		key := fmt.Sprintf("ExtraFields[%d]", i)
		if x == "" || fieldNameRE.MatchString(x) && (senderKeys[foldKey(x)] || p.allowed[x]) {
			c.bad(key, "extra field %q is empty, reserved or duplicated", x)
		}
		name(key, x)
		p.allowed[x] = true
		p.extra = append(p.extra, x)
	}
	if f.Captcha != nil {
		p.captchaF = f.Captcha.Field()
		p.allowed[p.captchaF] = true
	}
	if f.Token != nil {
		p.tokenF = f.Token.Field()
		p.allowed[p.tokenF] = true
	}
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
