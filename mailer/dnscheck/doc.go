// Package dnscheck is formguard's DNS "doctor": a preflight check that the
// site's domain is set up so that the mail formguard sends is accepted.
//
// Check looks up, from any DNS server or the system's resolvers:
//
//   - the bounce (envelope MAIL FROM) domain's SPF record (RFC 7208): one
//     record, valid terms, at most 10 DNS-querying terms and 2 void lookups
//     counting includes, a sensible "all", and whether the SMTP relay's
//     addresses pass (evaluated with blitiri.com.ar/go/spf);
//   - the DKIM key record at <selector>._domainkey.<d=> (RFC 6376, RFC 8463
//     for Ed25519): present, parseable, not revoked, not in testing mode,
//     strong enough (RFC 8301), and the public half of the configured key;
//   - the DMARC record of the From domain or, failing that, of its
//     organisational domain (RFC 7489 section 6.6.3), its policy, and
//     whether the bounce and signing domains align with From;
//   - forward-confirmed reverse DNS of the relay's addresses.
//
// Every problem is a Finding with a stable Code, a Severity and a fix in
// words; Report renders as text (WriteText) or JSON (WriteJSON). `formguard
// doctor` is a thin wrapper over the service's configuration:
//
//	key, err := dnscheck.LoadPublicKey(cfg.Mail.DKIM.KeyFile)
//	...
//	rep, err := dnscheck.Check(ctx, dnscheck.Config{
//		Domain:    cfg.Site.Domain,
//		Bounce:    cfg.Mail.Bounce,    // an address is fine: its domain is used
//		Selector:  cfg.Mail.DKIM.Selector,
//		PublicKey: key,
//		RelayIPs:  relayIPs,           // -relay-ip
//		RelayHost: cfg.Mail.SMTP.Addr, // used when RelayIPs is empty (smtp transport)
//		Server:    dnsServer,          // -dns; "" asks the system's resolvers
//	})
//	if err != nil { ... }      // bad config, or DNS could not be asked: exit 2
//	rep.WriteText(os.Stdout)   // or rep.WriteJSON(os.Stdout) for -json
//	if rep.HasErrors() { ... } // exit 1
//
// The resolver speaks DNS itself (github.com/miekg/dns): UDP with EDNS(0),
// TCP when the answer is truncated, multi-string TXT records joined as
// RFC 7208 section 3.3 says, and NXDOMAIN kept apart from "no data".
package dnscheck
