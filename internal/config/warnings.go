package config

import (
	"fmt"
	"net/netip"
	"net/url"
	"strings"
)

// Warnings lists settings that are valid but risky or surprising in
// production, in a stable order. `serve` logs them at start and
// `serve -check` prints them.
func (c *Config) Warnings() []string {
	var w []string
	reserved := ReservedDomain(c.Site.Domain)
	for i, p := range c.TrustedProxies {
		if pr, err := netip.ParsePrefix(p); err == nil && pr.Bits() < 8 {
			w = append(w, fmt.Sprintf("trusted_proxies[%d] %s trusts nearly every address: clients can then choose their own rate-limit key with X-Forwarded-For", i, p))
		}
	}
	if c.AdminListen != "" && !loopbackHost(c.AdminListen) {
		w = append(w, "admin_listen "+c.AdminListen+" is not a loopback address: /metrics and /readyz are reachable from other hosts")
	}
	if c.Mail.DKIM.Generate && !reserved {
		w = append(w, "mail.dkim.generate is on: a key made at start-up is not yet published in DNS; create it with `formguard dkim-keygen` and publish it before sending")
	}
	if c.Mail.Transport == TransportFile && !reserved {
		w = append(w, "mail.transport is file: mail is written to "+c.Mail.OutboxDir+"/sent, not sent")
	}
	for i, o := range c.Site.Origins {
		u, err := url.Parse(o)
		if err == nil && u.Scheme == "http" && !loopbackHost(u.Host) && !reserved {
			w = append(w, fmt.Sprintf("site.origins[%d] %s is plain http: browsers only run the proof-of-work widget in a secure context (HTTPS)", i, o))
		}
	}
	for _, name := range c.FormNames() {
		f := c.Forms[name]
		if f == nil {
			continue
		}
		if f.AllowMissingOrigin && c.FormCaptcha(name).Provider == ProviderNone {
			w = append(w, "forms."+name+" takes posts from any client without a CAPTCHA: only its rate limits protect it")
		}
	}
	return w
}

// ReservedDomain reports whether domain is a name reserved for tests and
// documentation (RFC 2606, RFC 6761), such as the demo's example.test,
// which never has real DNS records.
func ReservedDomain(domain string) bool {
	d := strings.ToLower(strings.TrimSuffix(domain, "."))
	for _, r := range []string{"test", "example", "invalid", "localhost", "example.com", "example.net", "example.org"} {
		if d == r || strings.HasSuffix(d, "."+r) {
			return true
		}
	}
	return false
}
