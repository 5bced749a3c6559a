package config

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"golang.org/x/net/publicsuffix"

	"github.com/formguard/formguard/guard"
)

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

// addressDomain checks a bare address the way the guard does and returns
// its domain, normalised.
func addressDomain(a string) (string, error) {
	n, err := guard.ParseAddress(a)
	if err != nil {
		return "", fmt.Errorf("%q: %v", a, err)
	}
	return n[strings.LastIndexByte(n, '@')+1:], nil
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
