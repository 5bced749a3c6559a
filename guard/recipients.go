package guard

import (
	"github.com/formguard/formguard/post"
	"strings"
)

// recipients is recipientsOf over parsed Values (the fuzz test's entry).
func (g *Guard) recipients(p *policy, vals Values, sub *post.Submission) *Error {
	return g.recipientsOf(p, vals[p.names.To], first(vals[p.choice]), sub)
}

// recipientsOf sets sub.Recipients from a share form's raw "to" values or
// a contact form's choice.
//
// A share recipient is a bare address (ParseAddress) and is matched, and
// mailed, in its one normal form: the domain lower-cased, without a
// trailing dot and in punycode, so "CEO@EXAMPLE.TEST." and "ceo@example．test"
// are the same recipient as "CEO@example.test". The site's own domain and
// its subdomains are always refused: a share form exists to mail people
// outside the site, and mail the site signs to its own staff is the mail
// they trust most. Then RecipientDomains and DenyRecipientDomains apply,
// matched on whole labels.
func (g *Guard) recipientsOf(p *policy, raw []string, c string, sub *post.Submission) *Error {
	if p.form.Kind == post.Contact {
		if len(p.choices) > 0 {
			if c == "" && len(p.to) > 0 {
				sub.Recipients = p.to
				return nil
			}
			list, ok := p.choices[c]
			if !ok {
				if c == "" {
					return ErrNoRecipient.withf("field %q is required", p.choice)
				}
				return ErrInvalidRecipient.withf("%q is not one of the form's choices", truncate(c, 64))
			}
			sub.Recipients = list
			return nil
		}
		sub.Recipients = p.to
		return nil
	}
	for _, v := range raw {
		if !SingleLine(v) {
			return ErrHeaderInjection.withf("field %q contains a control character, line break or encoded word", p.names.To)
		}
	}
	list, _ := splitRecipients(raw)
	if len(list) == 0 {
		return ErrNoRecipient.withf("field %q is empty", p.names.To)
	}
	if len(list) > 4*p.maxRcpt+4 {
		return ErrTooManyRecipients.withf("%d recipients, at most %d", len(list), p.maxRcpt)
	}
	seen := make(map[string]bool, len(list))
	out := make([]string, 0, len(list))
	for _, a := range list {
		n, err := ParseAddress(a)
		if err != nil {
			return ErrInvalidRecipient.withf("recipient: %v", err)
		}
		d := addressDomain(n)
		if domainMatches(d, g.domain) {
			return ErrInvalidRecipient.withf("domain %q is the site's own", d)
		}
		if len(p.allowDom) > 0 && !matchesAny(d, p.allowDom) {
			return ErrInvalidRecipient.withf("domain %q is not allowed", d)
		}
		if matchesAny(d, p.denyDom) {
			return ErrInvalidRecipient.withf("domain %q is denied", d)
		}
		key := strings.ToLower(n)
		if seen[key] {
			continue
		}
		seen[key] = true
		out = append(out, n)
	}
	if len(out) > p.maxRcpt {
		return ErrTooManyRecipients.withf("%d recipients, at most %d", len(out), p.maxRcpt)
	}
	sub.Recipients = out // only a fully valid list is ever set
	return nil
}

// matchesAny reports whether d is one of domains or a subdomain of one.
func matchesAny(d string, domains []string) bool {
	for _, x := range domains {
		if domainMatches(d, x) {
			return true
		}
	}
	return false
}
