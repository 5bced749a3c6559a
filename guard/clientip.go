package guard

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
)

// ErrForwardedFor is returned by IPResolver.ClientIP when a trusted proxy
// passed an X-Forwarded-For hop that is not an IP address. The request is
// refused (fail closed) rather than attributed to a guessed address.
var ErrForwardedFor = errors.New("guard: malformed X-Forwarded-For hop")

// IPResolver finds a request's client IP. The zero value trusts no proxy
// and always answers RemoteAddr.
//
// With trusted proxies, X-Forwarded-For is walked right to left (every
// X-Forwarded-For line, in order, as one list): each hop appended by a
// trusted proxy is skipped and the first hop that is not a trusted proxy is
// the client. The leftmost entries are never believed on their own, since
// the client writes them.
type IPResolver struct {
	trusted []netip.Prefix
}

// NewIPResolver parses trusted proxy CIDRs (a bare IP means a single host).
func NewIPResolver(trustedProxies []string) (*IPResolver, error) {
	var x IPResolver
	for _, s := range trustedProxies {
		s = strings.TrimSpace(s)
		p, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil {
				return nil, fmt.Errorf("guard: trusted proxy %q is not a CIDR or IP address", s)
			}
			p = netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())
		}
		if p.Addr().Is4In6() {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		x.trusted = append(x.trusted, p.Masked())
	}
	return &x, nil
}

func (x *IPResolver) isTrusted(a netip.Addr) bool {
	for _, p := range x.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// ClientIP returns the client address of r, IPv4-mapped IPv6 folded to IPv4.
func (x *IPResolver) ClientIP(r *http.Request) (netip.Addr, error) {
	remote, err := parseHop(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("guard: RemoteAddr %q: %w", r.RemoteAddr, err)
	}
	if len(x.trusted) == 0 || !x.isTrusted(remote) {
		return remote, nil
	}
	lines := r.Header.Values("X-Forwarded-For")
	client := remote
	for i := len(lines) - 1; i >= 0; i-- {
		line := lines[i]
		for line != "" {
			var hop string
			if j := strings.LastIndexByte(line, ','); j >= 0 {
				hop, line = line[j+1:], line[:j]
			} else {
				hop, line = line, ""
			}
			hop = strings.TrimSpace(hop)
			a, err := parseHop(hop)
			if err != nil {
				return netip.Addr{}, fmt.Errorf("%w: %q", ErrForwardedFor, truncate(hop, 64))
			}
			if !x.isTrusted(a) {
				return a, nil
			}
			client = a
		}
	}
	// Every hop was a trusted proxy: the leftmost one is the best we know.
	return client, nil
}

// parseHop reads "ip", "ip:port" or "[ipv6]:port".
func parseHop(s string) (netip.Addr, error) {
	if len(s) > 0 && (s[0] == '[' || strings.Count(s, ":") == 1) {
		if ap, err := netip.ParseAddrPort(s); err == nil {
			return ap.Addr().WithZone("").Unmap(), nil
		}
	}
	if a, err := netip.ParseAddr(s); err == nil {
		if a.Zone() != "" {
			a = a.WithZone("")
		}
		return a.Unmap(), nil
	}
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return netip.Addr{}, errors.New("not an IP address")
	}
	return ap.Addr().WithZone("").Unmap(), nil
}

// Bucket returns the rate-limit bucket of a client address: the address
// itself for IPv4, its /64 for IPv6 (one subscriber usually holds a whole
// /64, so per-address limits would be trivial to rotate around).
func Bucket(a netip.Addr) netip.Prefix {
	a = a.Unmap()
	if a.Is4() {
		return netip.PrefixFrom(a, 32)
	}
	p, _ := a.Prefix(64)
	return p
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
