// Package attack is formguard's proof under attack: it starts the real
// service binary against a loopback SMTP sink (and, optionally, a real
// redis-server), throws a fixed, seeded set of attack classes at it from
// many simulated clients, and audits every message the sink received.
//
// A message is a violation when its header From or envelope MAIL FROM is
// off the site domain, when a recipient was not allowed (not a contact
// form's configured address, or a share recipient no accepted legitimate
// post asked for, or beyond the cap), when it carries an unexpected or
// repeated header, when its DKIM signature does not verify with the public
// half of the service's key (checked by go-msgauth, independently of the
// mailer), when its HTML part carries visitor markup unescaped, or when a
// rate-limit tier let more through than its cap. A legitimate submission
// that is not delivered is reported as lost.
//
// Clients are simulated two ways, both over loopback only: the service
// trusts 127.0.0.1 as a reverse proxy, so requests from 127.0.0.1 carry the
// simulated client in X-Forwarded-For (IPv4 and IPv6 documentation
// prefixes); requests from other loopback addresses (127.0.0.x, bound with
// net.Dialer.LocalAddr) are untrusted peers whose X-Forwarded-For must be
// ignored.
package attack
