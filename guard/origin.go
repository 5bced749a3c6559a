package guard

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// NormaliseOrigin checks an allowed origin and returns its one normal
// form, the one New matches Origin and Referer against: scheme://host or
// scheme://host:port, lower-case, without the scheme's default port (so
// https://example.test:443 and https://example.test are one origin).
func NormaliseOrigin(o string) (string, error) {
	n, ok := normaliseOrigin(o)
	if !ok {
		return "", fmt.Errorf("%q is not an origin: want scheme://host[:port] with scheme http or https, a port up to 65535 and no path, query or user", o)
	}
	return n, nil
}

func normaliseOrigin(o string) (string, bool) {
	u, err := url.Parse(strings.TrimSpace(o))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return "", false
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n > 65535 {
			return "", false
		}
	}
	host := strings.ToLower(u.Host)
	if u.Scheme == "http" {
		host = strings.TrimSuffix(host, ":80")
	} else {
		host = strings.TrimSuffix(host, ":443")
	}
	return u.Scheme + "://" + host, true
}

func (g *Guard) originAllowed(o string) bool {
	if g.origins[o] {
		return true // already in normal form: the common case, no parsing
	}
	if isNormalOrigin(o) {
		return false // normalising would not change it: no need to parse
	}
	n, ok := normaliseOrigin(o)
	return ok && g.origins[n]
}

// isNormalOrigin reports whether o is certainly its own normal form:
// http:// or https:// and a non-empty host of lower-case letters, digits,
// '.', '-' and ':' not ending in the scheme's default port. Such an origin
// either fails normaliseOrigin or comes out unchanged.
func isNormalOrigin(o string) bool {
	host, ok := strings.CutPrefix(o, "https://")
	if ok {
		if strings.HasSuffix(host, ":443") {
			return false
		}
	} else if host, ok = strings.CutPrefix(o, "http://"); !ok || strings.HasSuffix(host, ":80") {
		return false
	}
	if host == "" {
		return false
	}
	for i := 0; i < len(host); i++ {
		c := host[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '.' || c == '-' || c == ':') {
			return false
		}
	}
	return true
}

// checkOrigin applies the Origin, else Referer, rule.
func (g *Guard) checkOrigin(r *http.Request, p *policy) *Error {
	if o := r.Header.Get("Origin"); o != "" {
		if !g.originAllowed(o) {
			return ErrOrigin.withq("Origin ", truncate(o, 100), " is not allowed")
		}
		return nil
	}
	if ref := r.Header.Get("Referer"); ref != "" {
		u, err := url.Parse(ref)
		if err != nil || !g.originAllowed(u.Scheme+"://"+u.Host) {
			return ErrOrigin.withq("Referer ", truncate(ref, 100), " is not on an allowed origin")
		}
		return nil
	}
	if p.form.AllowMissingOrigin {
		return nil
	}
	return ErrOrigin.withText("neither Origin nor Referer is present", "", "")
}
