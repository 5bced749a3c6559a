package dnscheck

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
)

// checkRDNS checks forward-confirmed reverse DNS for each relay address: a PTR
// name whose A/AAAA records include the address. Large receivers refuse or
// junk mail from addresses without it; RFC 1912 section 2.1 asks every
// address to have a PTR that matches its name.
func (c *checker) checkRDNS(ctx context.Context) error {
	for _, ip := range c.relayIPs {
		names, err := c.res.LookupAddr(ctx, ip.String())
		if err != nil && !IsNotFound(err) {
			return fmt.Errorf("dnscheck: looking up PTR for %s: %w", ip, err)
		}
		if len(names) == 0 {
			c.rep.add(RDNSMismatch, SeverityWarning, fmt.Sprintf("relay %s has no PTR record.", ip))
			continue
		}
		ok, err := c.confirms(ctx, ip, names)
		if err != nil {
			return err
		}
		if !ok {
			c.rep.add(RDNSMismatch, SeverityWarning, fmt.Sprintf(
				"relay %s has PTR %s, which does not resolve back to %s.", ip, strings.Join(names, ", "), ip))
		}
	}
	return nil
}

// confirms reports whether any PTR name resolves back to ip.
func (c *checker) confirms(ctx context.Context, ip netip.Addr, names []string) (bool, error) {
	for _, name := range names {
		addrs, err := c.res.LookupIPAddr(ctx, name)
		if err != nil && !IsNotFound(err) {
			return false, fmt.Errorf("dnscheck: resolving PTR name %s: %w", name, err)
		}
		for _, a := range addrs {
			if got, ok := netip.AddrFromSlice(a.IP); ok && got.Unmap() == ip.Unmap() {
				return true, nil
			}
		}
	}
	return false, nil
}
