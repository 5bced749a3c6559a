package dnscheck

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rsa"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// Config says what to check. Only Domain is required.
type Config struct {
	// Domain is the header From domain (site.domain). Required.
	Domain string
	// Bounce is the envelope MAIL FROM domain, the one SPF authorises
	// (RFC 7208 section 2.4). A whole address (bounces@example.com, as
	// mail.bounce holds it) is accepted and reduced to its domain. Empty
	// means Domain.
	Bounce string
	// SigningDomain is the DKIM d= domain (RFC 6376 section 3.5). Empty
	// means Domain.
	SigningDomain string
	// Selector is the DKIM s= selector. Empty skips the DKIM checks (and
	// says so in the report's notes).
	Selector string
	// PublicKey is the public half of the configured DKIM key: an
	// *rsa.PublicKey or an ed25519.PublicKey. A crypto.Signer (the private
	// key itself) is accepted and reduced to its public half. Nil skips the
	// DKIM_KEY_MISMATCH check.
	PublicKey crypto.PublicKey
	// RelayIPs are the addresses mail leaves from towards the Internet.
	// They are checked against the bounce domain's SPF record and for
	// forward-confirmed reverse DNS.
	RelayIPs []netip.Addr
	// RelayHost is the SMTP relay (host or host:port). When RelayIPs is
	// empty, its public A/AAAA addresses are used instead.
	RelayHost string
	// Server is the DNS server to ask, HOST:PORT. Empty means the system's
	// resolvers (DefaultResolvConf). Ignored when Resolver is set.
	Server string
	// Timeout bounds each DNS exchange. Zero means DefaultTimeout. Ignored
	// when Resolver is set; bound the whole check with ctx.
	Timeout time.Duration
	// Resolver replaces the DNS client (for example with a *net.Resolver).
	// Nil means NewResolver(Server, Timeout).
	Resolver DNSResolver
}

// checker carries one run of Check.
type checker struct {
	cfg Config
	res DNSResolver
	rep *Report
	// relayIPs are the addresses actually checked.
	relayIPs []netip.Addr
	// spfOK is false when the bounce domain has no usable SPF record
	// (missing or multiple), so evaluating the relay would only repeat it.
	spfOK bool
}

// Check looks up the SPF, DKIM and DMARC records of cfg's domains and returns
// a report of what is wrong with them. The error is non-nil only when cfg is
// invalid or DNS could not be asked (a timeout, a server failure); problems
// with the records themselves are findings in the report.
func Check(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.normalize(); err != nil {
		return nil, err
	}
	res := cfg.Resolver
	if res == nil {
		r, err := NewResolver(cfg.Server, cfg.Timeout)
		if err != nil {
			return nil, err
		}
		res = r
	}
	c := &checker{cfg: cfg, res: res, rep: &Report{Domain: cfg.Domain, Findings: []Finding{}}}
	if cfg.Bounce != cfg.Domain {
		c.rep.note("SPF checked for the bounce domain %s", cfg.Bounce)
	}
	if err := c.relays(ctx); err != nil {
		return nil, err
	}
	steps := []func(context.Context) error{c.checkSPF, c.checkRelaySPF, c.checkDKIM, c.checkDMARC, c.checkRDNS}
	for _, step := range steps {
		if err := step(ctx); err != nil {
			return nil, err
		}
	}
	c.rep.sortFindings()
	return c.rep, nil
}

// normalize fills defaults and validates cfg.
func (cfg *Config) normalize() error {
	var err error
	if cfg.Domain == "" {
		return fmt.Errorf("dnscheck: Domain is required")
	}
	if cfg.Domain, err = normalizeDomain("Domain", cfg.Domain); err != nil {
		return err
	}
	if at := strings.LastIndexByte(cfg.Bounce, '@'); at >= 0 {
		cfg.Bounce = cfg.Bounce[at+1:]
	}
	if cfg.Bounce == "" {
		cfg.Bounce = cfg.Domain
	} else if cfg.Bounce, err = normalizeDomain("Bounce", cfg.Bounce); err != nil {
		return err
	}
	if cfg.SigningDomain == "" {
		cfg.SigningDomain = cfg.Domain
	} else if cfg.SigningDomain, err = normalizeDomain("SigningDomain", cfg.SigningDomain); err != nil {
		return err
	}
	if cfg.Selector != "" {
		if _, ok := dns.IsDomainName(cfg.Selector + "._domainkey." + cfg.SigningDomain); !ok || strings.ContainsAny(cfg.Selector, " \t;=") {
			return fmt.Errorf("dnscheck: Selector %q is not a valid DKIM selector", cfg.Selector)
		}
	}
	switch k := cfg.PublicKey.(type) {
	case nil, *rsa.PublicKey, ed25519.PublicKey:
	case crypto.Signer:
		cfg.PublicKey = k.Public()
	default:
		return fmt.Errorf("dnscheck: PublicKey has unsupported type %T (want *rsa.PublicKey or ed25519.PublicKey)", cfg.PublicKey)
	}
	for i, ip := range cfg.RelayIPs {
		if !ip.IsValid() {
			return fmt.Errorf("dnscheck: RelayIPs[%d] is not a valid address", i)
		}
	}
	if cfg.Timeout < 0 {
		return fmt.Errorf("dnscheck: Timeout %v is negative", cfg.Timeout)
	}
	return nil
}

// normalizeDomain lower-cases a domain, drops a trailing dot, and checks it is
// a syntactically valid, multi-label name.
func normalizeDomain(field, s string) (string, error) {
	d := strings.ToLower(strings.TrimSuffix(strings.TrimSpace(s), "."))
	if _, ok := dns.IsDomainName(d); !ok || d == "" || !strings.Contains(d, ".") || strings.ContainsAny(d, " @/:") {
		return "", fmt.Errorf("dnscheck: %s %q is not a domain name", field, s)
	}
	return d, nil
}

// relays settles which relay addresses are checked.
func (c *checker) relays(ctx context.Context) error {
	if len(c.cfg.RelayIPs) > 0 {
		c.relayIPs = c.cfg.RelayIPs
		return nil
	}
	if c.cfg.RelayHost == "" {
		c.rep.note("no relay IP given; the relay's SPF authorisation and reverse DNS were not checked")
		return nil
	}
	host := c.cfg.RelayHost
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	var addrs []netip.Addr
	if ip, err := netip.ParseAddr(host); err == nil {
		addrs = []netip.Addr{ip}
	} else {
		ips, err := c.res.LookupIPAddr(ctx, host)
		if err != nil && !IsNotFound(err) {
			return fmt.Errorf("dnscheck: resolving relay host %s: %w", host, err)
		}
		for _, ip := range ips {
			if a, ok := netip.AddrFromSlice(ip.IP); ok {
				addrs = append(addrs, a.Unmap())
			}
		}
		if len(addrs) == 0 {
			c.rep.note("relay host %s has no A/AAAA record; the relay was not checked", host)
			return nil
		}
	}
	for _, a := range addrs {
		if a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() || a.IsUnspecified() {
			// A local MTA relays the mail on; the address the
			// world sees is not this one.
			c.rep.note("relay address %s is not public; pass the address mail leaves from with -relay-ip", a)
			continue
		}
		c.relayIPs = append(c.relayIPs, a)
	}
	if len(c.relayIPs) > 0 {
		c.rep.note("relay IPs taken from the SMTP relay host's addresses")
	}
	return nil
}

// lookupTXT returns name's TXT records. A name that does not exist and a name
// without TXT records both give no records and a nil error; other failures
// are returned, wrapped.
func (c *checker) lookupTXT(ctx context.Context, name string) ([]string, error) {
	txts, err := c.res.LookupTXT(ctx, name)
	if err != nil {
		if IsNotFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("dnscheck: looking up TXT %s: %w", name, err)
	}
	return txts, nil
}
