package dnscheck

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// DefaultTimeout bounds one DNS exchange (one server, one transport) when
// Config.Timeout is zero.
const DefaultTimeout = 5 * time.Second

// DefaultResolvConf is the file the system resolver's servers are read from
// when no server is given.
const DefaultResolvConf = "/etc/resolv.conf"

// udpAttempts is how many times a query that times out over UDP is sent to
// one server before the next server is tried (resolv.conf's "attempts").
const udpAttempts = 2

// ednsBufferSize is the UDP payload size advertised in EDNS(0) (RFC 6891). 1232
// bytes is the size the DNS flag day 2020 settled on: it avoids IP
// fragmentation, and anything bigger comes back truncated and is asked again
// over TCP.
const ednsBufferSize = 1232

// DNSResolver is the set of lookups the doctor needs. It has the method set of
// *net.Resolver and of blitiri.com.ar/go/spf's DNSResolver, so either a
// *Resolver or a *net.Resolver fits.
//
// Errors follow the net package's convention: a *net.DNSError whose
// IsNotFound is true means the name does not exist (NXDOMAIN); a name that
// exists but has no record of the asked type (no data) answers an empty slice
// and a nil error from *Resolver. Both are "void lookups" in the sense of
// RFC 7208 section 4.6.4.
type DNSResolver interface {
	LookupTXT(ctx context.Context, name string) ([]string, error)
	LookupMX(ctx context.Context, name string) ([]*net.MX, error)
	LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error)
	LookupAddr(ctx context.Context, addr string) ([]string, error)
}

var _ DNSResolver = (*Resolver)(nil)
var _ DNSResolver = (*net.Resolver)(nil)

// Resolver asks one or more DNS servers directly, with github.com/miekg/dns.
// It queries over UDP with EDNS(0) and repeats the query over TCP when the UDP
// answer is truncated (RFC 1035 section 4.2.1, RFC 7766). Servers are tried in
// order until one gives an answer that is not a server failure.
//
// A Resolver holds no connections between lookups and is safe for concurrent
// use.
type Resolver struct {
	servers []string
	udp     *dns.Client
	tcp     *dns.Client
}

// NewResolver returns a Resolver that asks server (HOST:PORT; a bare host gets
// port 53). An empty server means the system's resolvers, read from
// DefaultResolvConf. timeout bounds each exchange; zero means DefaultTimeout.
func NewResolver(server string, timeout time.Duration) (*Resolver, error) {
	if timeout < 0 {
		return nil, fmt.Errorf("dnscheck: timeout %v is negative", timeout)
	}
	if timeout == 0 {
		timeout = DefaultTimeout
	}
	var servers []string
	if server == "" {
		cc, err := dns.ClientConfigFromFile(DefaultResolvConf)
		if err != nil {
			return nil, fmt.Errorf("dnscheck: reading system resolvers: %w", err)
		}
		for _, s := range cc.Servers {
			servers = append(servers, net.JoinHostPort(s, cc.Port))
		}
		if len(servers) == 0 {
			return nil, fmt.Errorf("dnscheck: %s lists no nameserver", DefaultResolvConf)
		}
	} else {
		addr, err := normalizeServer(server)
		if err != nil {
			return nil, err
		}
		servers = []string{addr}
	}
	return &Resolver{
		servers: servers,
		udp:     &dns.Client{Net: "udp", Timeout: timeout, UDPSize: ednsBufferSize},
		tcp:     &dns.Client{Net: "tcp", Timeout: timeout},
	}, nil
}

// normalizeServer checks a HOST:PORT server address, adding port 53 to a
// bare host or IP address.
func normalizeServer(server string) (string, error) {
	host, port, err := net.SplitHostPort(server)
	if err != nil {
		// A bare name or address (IPv6 without brackets included).
		host, port = strings.Trim(server, "[]"), "53"
	}
	if host == "" {
		return "", fmt.Errorf("dnscheck: DNS server %q has no host", server)
	}
	if port == "" {
		return "", fmt.Errorf("dnscheck: DNS server %q has an empty port", server)
	}
	return net.JoinHostPort(host, port), nil
}

// Servers reports the servers the Resolver asks, in order.
func (r *Resolver) Servers() []string {
	return append([]string(nil), r.servers...)
}

// query asks for name/qtype and returns the answer section's records of that
// type. An NXDOMAIN answer is a *net.DNSError with IsNotFound; an empty answer
// (no data) is nil records and a nil error.
func (r *Resolver) query(ctx context.Context, name string, qtype uint16) ([]dns.RR, error) {
	fqdn := dns.Fqdn(name)
	if _, ok := dns.IsDomainName(fqdn); !ok {
		return nil, &net.DNSError{Err: "invalid domain name", Name: name, IsNotFound: true}
	}
	m := new(dns.Msg)
	m.SetQuestion(fqdn, qtype)
	m.RecursionDesired = true
	m.SetEdns0(ednsBufferSize, false)

	var lastErr error
	for _, server := range r.servers {
		in, err := r.exchange(ctx, m, server)
		if err != nil {
			lastErr = err
			if ctx.Err() != nil {
				break
			}
			continue
		}
		switch in.Rcode {
		case dns.RcodeSuccess:
			var out []dns.RR
			for _, rr := range in.Answer {
				if rr.Header().Rrtype == qtype {
					out = append(out, rr)
				}
			}
			return out, nil
		case dns.RcodeNameError:
			return nil, &net.DNSError{Err: "no such host (NXDOMAIN)", Name: name, Server: server, IsNotFound: true}
		default:
			lastErr = &net.DNSError{
				Err:         "server answered " + dns.RcodeToString[in.Rcode],
				Name:        name,
				Server:      server,
				IsTemporary: in.Rcode == dns.RcodeServerFailure,
			}
		}
	}
	return nil, lastErr
}

// exchange does one query against one server: UDP first, TCP when the UDP
// answer has the TC bit set.
func (r *Resolver) exchange(ctx context.Context, m *dns.Msg, server string) (*dns.Msg, error) {
	var (
		in  *dns.Msg
		err error
	)
	for attempt := 0; attempt < udpAttempts; attempt++ {
		in, _, err = r.udp.ExchangeContext(ctx, m, server)
		var ne net.Error
		if err == nil || !errors.As(err, &ne) || !ne.Timeout() || ctx.Err() != nil {
			break
		}
		// A lost datagram: ask again, as stub resolvers do.
	}
	if in != nil && in.Truncated {
		// The answer did not fit in our EDNS(0) buffer (RFC 6891 section
		// 7): ask again over TCP, which carries up to 64 KiB.
		in, _, err = r.tcp.ExchangeContext(ctx, m, server)
	}
	if err != nil {
		de := &net.DNSError{Err: err.Error(), Name: strings.TrimSuffix(m.Question[0].Name, "."), Server: server, IsTemporary: true}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			de.IsTimeout = true
		}
		return nil, de
	}
	return in, nil
}

// LookupTXT returns name's TXT records. The character-strings of one record
// are joined without separators, as RFC 7208 section 3.3 and RFC 6376
// section 3.6.2.2 require.
func (r *Resolver) LookupTXT(ctx context.Context, name string) ([]string, error) {
	rrs, err := r.query(ctx, name, dns.TypeTXT)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(rrs))
	for _, rr := range rrs {
		out = append(out, strings.Join(rr.(*dns.TXT).Txt, ""))
	}
	return out, nil
}

// LookupMX returns name's MX records, sorted by preference.
func (r *Resolver) LookupMX(ctx context.Context, name string) ([]*net.MX, error) {
	rrs, err := r.query(ctx, name, dns.TypeMX)
	if err != nil {
		return nil, err
	}
	out := make([]*net.MX, 0, len(rrs))
	for _, rr := range rrs {
		mx := rr.(*dns.MX)
		out = append(out, &net.MX{Host: mx.Mx, Pref: mx.Preference})
	}
	sortMX(out)
	return out, nil
}

func sortMX(mxs []*net.MX) {
	for i := 1; i < len(mxs); i++ {
		for j := i; j > 0 && mxs[j].Pref < mxs[j-1].Pref; j-- {
			mxs[j], mxs[j-1] = mxs[j-1], mxs[j]
		}
	}
}

// LookupIPAddr returns host's A and AAAA addresses. The name is NXDOMAIN only
// when both queries say so.
func (r *Resolver) LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error) {
	if ip := net.ParseIP(host); ip != nil {
		return []net.IPAddr{{IP: ip}}, nil
	}
	var out []net.IPAddr
	a, errA := r.query(ctx, host, dns.TypeA)
	for _, rr := range a {
		out = append(out, net.IPAddr{IP: rr.(*dns.A).A})
	}
	aaaa, errAAAA := r.query(ctx, host, dns.TypeAAAA)
	for _, rr := range aaaa {
		out = append(out, net.IPAddr{IP: rr.(*dns.AAAA).AAAA})
	}
	if len(out) > 0 {
		return out, nil
	}
	// Prefer reporting a failure over a not-found: a temporary error
	// must not be mistaken for a void lookup.
	for _, err := range []error{errA, errAAAA} {
		if err != nil && !IsNotFound(err) {
			return nil, err
		}
	}
	if errA != nil {
		return nil, errA
	}
	return nil, errAAAA
}

// LookupAddr returns the PTR names of addr (an IPv4 or IPv6 address).
func (r *Resolver) LookupAddr(ctx context.Context, addr string) ([]string, error) {
	arpa, err := dns.ReverseAddr(addr)
	if err != nil {
		return nil, &net.DNSError{Err: "unrecognized address", Name: addr}
	}
	rrs, err := r.query(ctx, arpa, dns.TypePTR)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(rrs))
	for _, rr := range rrs {
		out = append(out, rr.(*dns.PTR).Ptr)
	}
	return out, nil
}

// IsNotFound reports whether err says that the name does not exist
// (NXDOMAIN).
func IsNotFound(err error) bool {
	var de *net.DNSError
	return errors.As(err, &de) && de.IsNotFound
}
