package guard

import (
	"net/url"
	"unicode"
	"unicode/utf8"
)

// sharedURL checks a share form's url field and returns the URL the mail
// carries: the scheme, host and path of a page on one of the allowed
// origins, nothing else. The query and fragment are dropped, because they
// are free text a stranger writes into mail the site signs ("?q= Your
// account is locked. Unlock it at https://evil.example/login"). A path that,
// percent-decoded, holds whitespace, a control or format character, '@'
// or anything countLinks counts (a scheme, "//host", "www.", an IP
// literal, a domain name) is refused rather than cleaned: it is text or
// a link to somewhere else dressed as a page of the site.
func (g *Guard) sharedURL(raw, field string) (string, *Error) {
	if raw == "" {
		return "", ErrInvalidField.withq("field ", field, " is required")
	}
	u, err := url.Parse(raw)
	if err != nil || u.User != nil || u.Opaque != "" || !g.originAllowed(u.Scheme+"://"+u.Host) {
		return "", ErrOffsiteURL.withq("url ", truncate(raw, 100), "")
	}
	if !plainPath(u.Path) {
		return "", ErrOffsiteURL.withq("url ", truncate(raw, 100), " carries text or a link in its path")
	}
	kept := url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path, RawPath: u.RawPath}
	return kept.String(), nil
}

// plainPath reports whether p, a decoded URL path, is free of whitespace,
// control and format characters (bidi overrides, zero-width marks), '@'
// and links.
func plainPath(p string) bool {
	for i := 0; i < len(p); {
		r, size := utf8.DecodeRuneInString(p[i:])
		if r == '@' || r == utf8.RuneError || unicode.IsSpace(r) || unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			return false
		}
		i += size
	}
	return countLinks(p) == 0
}
