package dnscheck_test

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"

	"github.com/formguard/formguard/mailer/dnscheck"
)

// ExampleCheck runs the doctor against a loopback DNS server serving
// testdata/dns/northwind-bakery.example.zone, a shop whose mail setup is half
// done, and prints the text report that `formguard doctor` shows.
func ExampleCheck() {
	z, err := newZoneServer(zoneDir)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer z.Close()
	key, err := dnscheck.LoadPublicKey(filepath.Join(zoneDir, "keys", "rsa1024.pub.pem"))
	if err != nil {
		fmt.Println(err)
		return
	}
	rep, err := dnscheck.Check(context.Background(), dnscheck.Config{
		Domain:    "northwind-bakery.example",
		Bounce:    "bounces@northwind-bakery.example",
		Selector:  "s1",
		PublicKey: key,
		RelayIPs:  []netip.Addr{netip.MustParseAddr("198.51.100.20")},
		Server:    z.Addr, // "" would ask the system's resolvers
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	rep.WriteText(os.Stdout)
	if rep.HasErrors() {
		fmt.Println("exit status 1")
	}
	// Output:
	// formguard doctor: northwind-bakery.example
	// ERROR   SPF_RELAY_NOT_PERMITTED: relay 198.51.100.20 is not authorised to send for northwind-bakery.example: SPF result softfail. Fix: authorise the relay in the bounce domain's SPF record (ip4:/ip6: with its address, or include: the relay provider).
	// WARNING DKIM_WEAK_KEY: s1._domainkey.northwind-bakery.example publishes a 1024-bit RSA key; use at least 2048 bits (RFC 8301). Fix: generate a 2048-bit RSA or an Ed25519 key, publish it under a new selector and switch the configuration to it.
	// WARNING DMARC_POLICY_NONE: _dmarc.northwind-bakery.example has p=none: spoofed mail is only reported, not refused. Fix: after checking aggregate reports, move to p=quarantine, then p=reject.
	// WARNING RDNS_MISMATCH: relay 198.51.100.20 has no PTR record. Fix: ask the relay's IP owner to set a PTR record to a name whose A/AAAA record points back at the IP.
	// INFO    SPF_SOFTFAIL: northwind-bakery.example's SPF record ends in "~all": unlisted senders softfail. Fix: nothing required; switch ~all to -all once all senders are listed.
	// FAIL: 1 error, 3 warnings, 1 info
	// exit status 1
}

// ExampleReport_WriteJSON shows the JSON that `formguard doctor -json`
// prints, for a domain whose SPF record says ipv4: where it means ip4:.
func ExampleReport_WriteJSON() {
	z, err := newZoneServer(zoneDir)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer z.Close()
	rep, err := dnscheck.Check(context.Background(), dnscheck.Config{
		Domain:   "spf-typo.test",
		RelayIPs: []netip.Addr{netip.MustParseAddr("192.0.2.10")},
		Server:   z.Addr,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	rep.WriteJSON(os.Stdout)
	// Output:
	// {
	//   "domain": "spf-typo.test",
	//   "notes": [
	//     "no DKIM selector configured; DKIM was not checked"
	//   ],
	//   "findings": [
	//     {
	//       "code": "SPF_SYNTAX",
	//       "severity": "error",
	//       "detail": "spf-typo.test: SPF term \"ipv4:192.0.2.10\": unknown mechanism \"ipv4\".",
	//       "fix": "correct or remove the named term; valid mechanisms are all, include, a, mx, ptr, ip4, ip6, exists."
	//     },
	//     {
	//       "code": "SPF_RELAY_NOT_PERMITTED",
	//       "severity": "error",
	//       "detail": "relay 192.0.2.10 is not authorised to send for spf-typo.test: SPF result permerror (unknown field).",
	//       "fix": "authorise the relay in the bounce domain's SPF record (ip4:/ip6: with its address, or include: the relay provider)."
	//     }
	//   ]
	// }
}
