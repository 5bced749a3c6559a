package guard

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/idna"
)

// Address errors, wrapped by ParseAddress.
var (
	errAddrEmpty   = errors.New("empty address")
	errAddrSyntax  = errors.New("not a bare address (user@example.com)")
	errAddrLength  = errors.New("address too long (RFC 5321 4.5.3.1)")
	errAddrDomain  = errors.New("invalid domain")
	errAddrDisplay = errors.New("display names, groups, comments and source routes are not accepted")
	errAddrRoute   = errors.New("'%' and '!' in the local part (relay source routing) are not accepted")
)

// idnaProfile converts internationalised domains to their ASCII (punycode)
// form with the lookup rules of UTS #46, refusing what browsers refuse.
var idnaProfile = idna.New(
	idna.MapForLookup(),
	idna.BidiRule(),
	idna.ValidateLabels(true),
	idna.StrictDomainName(true),
	idna.Transitional(false),
)

// ParseAddress validates one visitor-supplied mailbox and returns it
// normalised: a bare addr-spec (RFC 5322 3.4.1) whose local part is a
// dot-atom of ASCII atext and whose domain is a host name, lower-cased and
// converted to punycode (see normaliseDomain); the local part is kept as
// given. Display names ("Ada <a@x>"), angle brackets, group syntax,
// comments, quoted local parts, domain literals and source routes are
// refused rather than interpreted: a form field holds one address.
//
// '%' and '!' are atext, but in a local part they are the old source-route
// forms ("a%evil.test@relay", "evil.test!a@relay") that some relays still
// forward on, which would take mail past a domain allow or deny list; no
// address a visitor needs to give uses them, so they are refused.
func ParseAddress(s string) (string, error) {
	if s == "" {
		return "", errAddrEmpty
	}
	if len(s) > 2*MaxEmailLength {
		return "", errAddrLength
	}
	if strings.ContainsAny(s, "<>\"(),:;[] \t\\") {
		return "", errAddrDisplay
	}
	at := strings.LastIndexByte(s, '@')
	if at <= 0 || at == len(s)-1 {
		return "", errAddrSyntax
	}
	local, domain := s[:at], s[at+1:]
	if strings.IndexByte(local, '@') >= 0 {
		return "", errAddrDisplay // @a:b@c style source routes and a@b@c
	}
	if len(local) > MaxLocalPartLength {
		return "", errAddrLength
	}
	if !isDotAtom(local) {
		return "", errAddrSyntax
	}
	// '=' and '?' are atext, but a local part holding an RFC 2047 encoded
	// word is what SingleLine refuses everywhere else: a decoding layer
	// downstream could turn it into a header break, and no real mailbox
	// needs it.
	if !SingleLine(local) {
		return "", errAddrSyntax
	}
	if strings.ContainsAny(local, "%!") {
		return "", errAddrRoute
	}
	d, err := normaliseDomain(domain)
	if err != nil {
		return "", err
	}
	if len(local)+1+len(d) > MaxEmailLength {
		return "", errAddrLength
	}
	if d == domain {
		return s, nil // already normal: no copy
	}
	return local + "@" + d, nil
}

// isDotAtom reports whether s is a dot-atom of RFC 5322 atext (3.2.3).
func isDotAtom(s string) bool {
	if s == "" || s[0] == '.' || s[len(s)-1] == '.' {
		return false
	}
	prevDot := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '.' {
			if prevDot {
				return false
			}
			prevDot = true
			continue
		}
		prevDot = false
		if !isAtext(c) {
			return false
		}
	}
	return true
}

func isAtext(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-/=?^_`{|}~", c) >= 0
}

// normaliseDomain returns d's one normal form, the one every domain rule
// (the site's own domain, allow and deny lists) is matched against and mail
// is sent to: lower-cased, IDNs converted to punycode by UTS #46 (which also
// maps the full-width and ideographic dots U+FF0E, U+3002 and U+FF61 to
// '.'), one trailing dot dropped. A domain that does not convert, an
// "xn--" label that is not valid punycode among them, is refused, as is
// anything but a host name of at least two labels (RFC 5321 2.3.5; RFC 1035
// 2.3.4).
func normaliseDomain(d string) (string, error) {
	ascii := true
	for i := 0; i < len(d); i++ {
		if d[i] >= 0x80 {
			ascii = false
			break
		}
	}
	if ascii {
		d = strings.ToLower(d)
	}
	if !ascii && !utf8.ValidString(d) {
		return "", errAddrDomain // IDNA would encode U+FFFD, not refuse
	}
	if !ascii || strings.Contains(d, "xn--") {
		p, err := idnaProfile.ToASCII(d)
		if err != nil {
			return "", fmt.Errorf("%w: %v", errAddrDomain, err)
		}
		d = p
	}
	d = strings.TrimSuffix(d, ".")
	if len(d) == 0 || len(d) > 253 {
		return "", errAddrDomain
	}
	labels := 0
	for rest := d; rest != ""; {
		l := rest
		if i := strings.IndexByte(rest, '.'); i >= 0 {
			l, rest = rest[:i], rest[i+1:]
			if rest == "" {
				return "", errAddrDomain
			}
		} else {
			rest = ""
		}
		labels++
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return "", errAddrDomain
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
				return "", errAddrDomain
			}
		}
	}
	if labels < 2 {
		return "", errAddrDomain
	}
	return d, nil
}

// addressDomain returns the domain part of a normalised address.
func addressDomain(a string) string { return a[strings.LastIndexByte(a, '@')+1:] }

// domainMatches reports whether d is domain or a subdomain of it.
func domainMatches(d, domain string) bool {
	return d == domain || strings.HasSuffix(d, "."+domain)
}

// splitRecipients splits a share form's `to` values: each value may hold a
// comma-separated list. Semicolons and other separators are refused, not
// guessed at.
func splitRecipients(values []string) ([]string, error) {
	var out []string
	for _, v := range values {
		for _, p := range strings.Split(v, ",") {
			p = strings.TrimSpace(p)
			if p == "" {
				continue
			}
			out = append(out, p)
		}
	}
	return out, nil
}
