// Package dnscheck is the DNS "doctor" behind `formguard doctor`: it checks
// that the site's domain is set up so that the mail formguard sends is
// accepted.
//
// [Check] looks up the bounce domain's SPF record (RFC 7208), the DKIM key
// record (RFC 6376, RFC 8463, RFC 8301), the DMARC record and its alignment
// (RFC 7489) and the relay's forward-confirmed reverse DNS. Every problem
// is a [Finding] with a stable Code, a Severity and a fix in words. See
// docs/doctor.md.
package dnscheck
