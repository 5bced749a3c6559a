package guard

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/formguard/formguard/guard/captcha"
	"github.com/formguard/formguard/post"
)

func (g *Guard) verdict(w http.ResponseWriter, r *http.Request, form string) (*post.Submission, *Error) {
	f := getFieldSet()
	sub, clientKey, e := g.steps(w, r, form, f)
	f.release()
	g.logDecision(r.Context(), form, clientKey, sub, e)
	return sub, e
}

// steps runs the steps of "What a post goes through" in order, parsing
// the body into vals.
func (g *Guard) steps(w http.ResponseWriter, r *http.Request, form string, vals *fieldSet) (*post.Submission, string, *Error) {
	p, ok := g.forms[form]
	if !ok {
		return nil, "", ErrUnknownForm.withq("form ", truncate(form, 64), "")
	}
	if e := checkMethod(w, r); e != nil {
		return nil, "", e
	}
	ctype := r.Header.Get("Content-Type")
	kind, params, maxBody, e := checkShape(r, p, ctype)
	if e != nil {
		return nil, "", e
	}
	ip, err := g.ips.ClientIP(r)
	if err != nil {
		return nil, "", ErrBadClient.with(err)
	}
	clientKey := g.ClientKey(ip)
	if e := g.checkOrigin(r, p); e != nil {
		return nil, clientKey, e
	}
	body, e := readBody(r, maxBody)
	if e != nil {
		return nil, clientKey, e
	}
	admitted, e := g.limitKnown(r.Context(), w, p, ctype, body, ip, clientKey)
	if e != nil {
		return nil, clientKey, e
	}
	if e := parseInto(vals, kind, params, body, p); e != nil {
		return nil, clientKey, e
	}
	sub, e := g.local(r.Context(), p, vals, clientKey)
	if e != nil {
		return sub, clientKey, e
	}
	sub.ClientIP, sub.ClientKey = ip, clientKey
	// Then the client's own limits and bans, before anything that spends
	// what other visitors share (see limitClient).
	if !admitted {
		if e := g.limitClient(r.Context(), w, p, sub); e != nil {
			g.passed.add(p.name, ctype, body)
			return nil, clientKey, e
		}
	}
	now := g.now()
	if e := g.defend(r.Context(), p, vals, captcha.Request{Form: form, RemoteIP: ip, ClientKey: clientKey, Now: now}); e != nil {
		return nil, clientKey, e
	}
	if e := g.limitShared(r.Context(), w, p, sub); e != nil {
		return nil, clientKey, e
	}
	sub.ID = newID()
	sub.Received = now
	return sub, clientKey, nil
}

// checkMethod admits only POST, naming it in Allow on a 405.
func checkMethod(w http.ResponseWriter, r *http.Request) *Error {
	if r.Method == http.MethodPost {
		return nil
	}
	if w != nil {
		w.Header().Set("Allow", http.MethodPost)
	}
	return ErrMethod.withText("method ", truncate(r.Method, 16), "")
}

// checkShape checks the content type and the declared size, before any
// of the body is read.
func checkShape(r *http.Request, p *policy, ctype string) (kind int, params map[string]string, maxBody int64, e *Error) {
	kind, params, err := mediaType(ctype)
	if err != nil {
		return 0, nil, 0, ErrContentType.with(err)
	}
	maxBody = p.maxBody
	if kind == bodyMultipart && p.form.AllowFiles && p.form.MaxBody == 0 {
		maxBody = DefaultMaxFileBody
	}
	if r.ContentLength > maxBody {
		return 0, nil, 0, ErrTooLarge.withf("Content-Length %d > %d", r.ContentLength, maxBody)
	}
	return kind, params, maxBody, nil
}

// parseInto parses body into vals, within the form's field limits.
func parseInto(vals *fieldSet, kind int, params map[string]string, body []byte, p *policy) *Error {
	err := vals.parse(kind, params, body, DefaultMaxFields, p.form.AllowFiles)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, errFilePart):
		return ErrFilesNotAllowed.with(err)
	}
	return ErrMalformed.with(err)
}

// local runs steps 4 to 7 on a parsed post (see the package
// documentation), reporting what no browser sends as an offence. A
// honeypot hit returns its decoy with ErrHoneypot.
func (g *Guard) local(ctx context.Context, p *policy, vals *fieldSet, clientKey string) (*post.Submission, *Error) {
	if hp := vals.get(p.honeypot); len(hp) > 0 && !blank(hp) {
		g.penalize(ctx, clientKey)
		e := ErrHoneypot.withq("honeypot field ", p.honeypot, " filled")
		e.decoy = g.decoy(p.name, vals)
		return e.decoy, e
	}
	sub, e := g.fields(p, vals)
	if e != nil {
		if e.Code == ErrHeaderInjection.Code || e.Code == ErrForbiddenField.Code {
			g.penalize(ctx, clientKey)
		}
		return nil, e
	}
	if next := vals.first(DefaultRedirectFieldKey); next != "" {
		if _, err := g.sameSite(next); err != nil {
			return nil, ErrOffsiteRedirect.with(err)
		}
		sub.Next = next
	}
	// A missing token is refused here, before it costs the client any of
	// its budget.
	if e := missingDefence(p, vals); e != nil {
		if e.Code == ErrTokenInvalid.Code {
			g.penalize(ctx, clientKey)
		}
		return nil, e
	}
	return sub, nil
}

// ErrBadClient answers requests whose client address cannot be trusted.
var ErrBadClient = newErr(http.StatusBadRequest, "bad_client_address", "The request's forwarding headers are malformed.")

// blank reports whether every value is empty or white space, as
// strings.TrimSpace(strings.Join(v, "")) == "" would, without joining.
func blank(v []string) bool {
	for _, s := range v {
		if strings.TrimSpace(s) != "" {
			return false
		}
	}
	return true
}

func first(v []string) string {
	if len(v) == 0 {
		return ""
	}
	return v[0]
}

// fields applies the sender lock, field rules, recipients and content rules.
func (g *Guard) fields(p *policy, vals *fieldSet) (*post.Submission, *Error) {
	// A field choosing a sender or recipient is reported (and penalised)
	// whatever else the post got wrong and wherever it came in the body.
	for _, k := range vals.names {
		if !p.allowed[k] && senderKeys[foldKey(k)] {
			return nil, ErrForbiddenField.withq("field ", truncate(k, 64), " would choose a sender or recipient")
		}
	}
	for i, k := range vals.names {
		if !p.allowed[k] {
			return nil, ErrUnknownField.withq("field ", truncate(k, 64), "")
		}
		if v := vals.vals[i]; len(v) > 1 && k != p.names.To {
			return nil, ErrDuplicateField.withf("field %q sent %d times", truncate(k, 64), len(v))
		}
	}
	in := input{
		name:          vals.first(p.names.Name),
		email:         vals.first(p.names.Email),
		subject:       vals.first(p.names.Subject),
		message:       vals.first(p.names.Message),
		url:           vals.first(p.names.URL),
		maxName:       p.maxName,
		maxSubject:    p.maxSubj,
		maxMessage:    p.maxMsg,
		maxURL:        maxURLLength,
		emailRequired: p.emailReq,
	}
	if e := validate(&in, p.names); e != nil {
		return nil, e
	}
	if strings.TrimSpace(in.message) == "" && p.form.Kind == post.Contact {
		return nil, ErrInvalidField.withq("field ", p.names.Message, " is required")
	}
	sub := &post.Submission{
		Form:    p.name,
		Kind:    p.form.Kind,
		Name:    strings.TrimSpace(in.name),
		Subject: strings.TrimSpace(in.subject),
		Message: in.message,
	}
	if in.email != "" {
		a, _ := ParseAddress(in.email) // validated above
		sub.ReplyTo = a
	}
	for _, x := range p.extra {
		v := vals.first(x)
		if v == "" {
			continue
		}
		if !SingleLine(v) {
			return nil, ErrHeaderInjection.withf("field %q contains a control character, line break or encoded word", x)
		}
		if len(v) > 1000 {
			return nil, ErrInvalidField.withf("field %q is too long", x)
		}
		if sub.Fields == nil {
			sub.Fields = make(map[string]string, len(p.extra))
		}
		sub.Fields[x] = v
	}
	if e := g.recipientsOf(p, vals.get(p.names.To), vals.first(p.choice), sub); e != nil {
		return nil, e
	}
	if links := countLinks(sub.Message) + countLinks(sub.Subject) + countLinks(sub.Name); links > max(p.maxLinks, 0) {
		return nil, ErrTooManyLinks.withf("%d links, at most %d allowed", links, max(p.maxLinks, 0))
	}
	if p.form.Kind == post.Share {
		u, e := g.sharedURL(in.url, p.names.URL)
		if e != nil {
			return nil, e
		}
		sub.URL = u
	}
	return sub, nil
}
