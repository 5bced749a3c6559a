package config

import (
	"errors"
	"fmt"
	"net"
	"net/mail"
	"net/netip"
	"net/url"
	"strconv"
	"strings"

	"golang.org/x/net/publicsuffix"
)

// SameSite reports whether u is a relative path on this site or an
// absolute URL on one of its origins (the only redirect targets allowed).
func (c *Config) SameSite(u string) bool {
	if hasControl(u) || strings.ContainsRune(u, '\\') {
		return false
	}
	if strings.HasPrefix(u, "/") {
		return !strings.HasPrefix(u, "//")
	}
	pu, err := url.Parse(u)
	if err != nil || pu.User != nil {
		return false
	}
	origin := strings.ToLower(pu.Scheme + "://" + pu.Host)
	for _, o := range c.Site.Origins {
		if o == origin {
			return true
		}
	}
	return false
}

// NormalizeOrigin checks an origin (scheme://host[:port], no path) and
// returns it lower-cased without a trailing slash.
func NormalizeOrigin(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil {
		return "", fmt.Errorf("%q is not a URL", s)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", fmt.Errorf("%q: scheme must be http or https", s)
	}
	if u.Host == "" || u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return "", fmt.Errorf("%q: an origin is scheme://host[:port] with no path, query or user", s)
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return "", fmt.Errorf("%q: bad port", s)
		}
	}
	return strings.ToLower(u.Scheme + "://" + u.Host), nil
}

// ParseProxy reads a trusted proxy: a CIDR or a single IP.
func ParseProxy(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is not a CIDR", s)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not an IP or CIDR", s)
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

func checkHostPort(p *problems, key, v string, allowEmptyHost bool) {
	host, port, err := net.SplitHostPort(v)
	if err != nil {
		p.add(key, fmt.Sprintf("%q is not host:port", v))
		return
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 || (n == 0 && !allowEmptyHost) {
		p.add(key, fmt.Sprintf("%q: bad port", v))
	}
	if host == "" && !allowEmptyHost {
		p.add(key, fmt.Sprintf("%q: missing host", v))
	}
	if hasControl(host) || strings.ContainsAny(host, " /") {
		p.add(key, fmt.Sprintf("%q: bad host", v))
	}
}

// checkDomain accepts a lower-case ASCII domain of at least two labels
// (internationalised names in their xn-- A-label form).
func checkDomain(d string) error {
	if d == "" || len(d) > 253 {
		return fmt.Errorf("%q is not a domain name", d)
	}
	if d != strings.ToLower(d) {
		return fmt.Errorf("%q: write domains in lower case", d)
	}
	labels := strings.Split(d, ".")
	if len(labels) < 2 {
		return fmt.Errorf("%q: a mail domain has at least two labels", d)
	}
	for _, l := range labels {
		if !labelRE.MatchString(l) {
			return fmt.Errorf("%q: %q is not a DNS label (internationalised names go in xn-- form)", d, l)
		}
	}
	return nil
}

// checkAddress accepts a bare addr-spec (RFC 5322 3.4.1) with a domain that
// checkDomain accepts, and returns the lower-cased domain.
func checkAddress(a string) (string, error) {
	if a == "" {
		return "", errors.New("empty address")
	}
	if hasControl(a) || len(a) > 254 {
		return "", fmt.Errorf("%q is not a bare address", a)
	}
	pa, err := mail.ParseAddress(a)
	if err != nil || pa.Name != "" || pa.Address != a {
		return "", fmt.Errorf("%q is not a bare address (user@domain, no display name)", a)
	}
	at := strings.LastIndexByte(a, '@')
	local, dom := a[:at], strings.ToLower(a[at+1:])
	if len(local) > 64 {
		return "", fmt.Errorf("%q: local part longer than 64 (RFC 5321 4.5.3.1.1)", a)
	}
	if err := checkDomain(dom); err != nil {
		return "", err
	}
	return dom, nil
}

func sameOrgDomain(a, b string) bool {
	a, b = strings.ToLower(a), strings.ToLower(b)
	if a == b {
		return true
	}
	oa, err1 := publicsuffix.EffectiveTLDPlusOne(a)
	ob, err2 := publicsuffix.EffectiveTLDPlusOne(b)
	return err1 == nil && err2 == nil && oa == ob
}

func loopbackHost(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}

func hasControl(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == '\u2028' || r == '\u2029' {
			return true
		}
	}
	return false
}

func or(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
