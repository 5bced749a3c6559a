package dnscheck

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/net/publicsuffix"
)

// DMARC alignment modes (RFC 7489 section 3.1).
const (
	AlignRelaxed = "r"
	AlignStrict  = "s"
)

// DMARCRecord is a parsed DMARC policy record (RFC 7489 section 6.3).
type DMARCRecord struct {
	// Policy is p=: "none", "quarantine" or "reject".
	Policy string
	// SubdomainPolicy is sp=; empty means Policy applies to subdomains too.
	SubdomainPolicy string
	// ADKIM and ASPF are the alignment modes, AlignRelaxed (the default) or
	// AlignStrict.
	ADKIM, ASPF string
	// Percent is pct= (default 100).
	Percent int
	// RUA and RUF are the aggregate and failure report URIs.
	RUA, RUF []string
	// FailureOptions is fo= (default "0").
	FailureOptions string
	// ReportFormat is rf= (default "afrf").
	ReportFormat string
	// Interval is ri= in seconds (default 86400).
	Interval uint32
}

// IsDMARC reports whether a TXT record claims to be a DMARC record, that is
// starts with "v=DMARC1" (RFC 7489 section 6.6.3 discards the others). The
// comparison ignores case so that a wrongly cased version is reported as a
// syntax error rather than as a missing record.
func IsDMARC(txt string) bool {
	s := strings.TrimLeft(txt, " \t")
	first, _, _ := strings.Cut(s, ";")
	name, value, ok := strings.Cut(first, "=")
	return ok && trimWSP(name) == "v" && strings.EqualFold(trimWSP(value), "DMARC1")
}

// ParseDMARC parses a DMARC record. Unknown tags are ignored, as RFC 7489
// section 6.3 requires; a known tag with a bad value is an error.
func ParseDMARC(record string) (*DMARCRecord, error) {
	tags, err := parseTagList(record)
	if err != nil {
		return nil, fmt.Errorf("dnscheck: DMARC record: %v", err)
	}
	if len(tags) == 0 || tags[0].name != "v" {
		return nil, errors.New("dnscheck: DMARC record: v=DMARC1 must be the first tag")
	}
	// "The value of this tag MUST match precisely" (section 6.3).
	if tags[0].value != "DMARC1" {
		return nil, fmt.Errorf("dnscheck: DMARC record: version %q is not DMARC1", tags[0].value)
	}
	r := &DMARCRecord{ADKIM: AlignRelaxed, ASPF: AlignRelaxed, Percent: 100, FailureOptions: "0", ReportFormat: "afrf", Interval: 86400}
	for _, t := range tags[1:] {
		if err := r.setTag(t); err != nil {
			return nil, err
		}
	}
	if r.Policy == "" {
		// Section 6.6.3 step 6 tolerates a missing p= only with rua=;
		// a record meant to protect the domain needs it.
		return nil, errors.New("dnscheck: DMARC record has no p= tag")
	}
	return r, nil
}

// setTag applies one tag of the record; unknown tags are ignored.
func (r *DMARCRecord) setTag(t tag) error {
	bad := func(t tag, want string) error {
		return fmt.Errorf("dnscheck: DMARC record: %s=%s is invalid (want %s)", t.name, t.value, want)
	}
	switch t.name {
	case "p", "sp":
		v := strings.ToLower(t.value)
		if v != "none" && v != "quarantine" && v != "reject" {
			return bad(t, "none, quarantine or reject")
		}
		if t.name == "p" {
			r.Policy = v
		} else {
			r.SubdomainPolicy = v
		}
	case "adkim", "aspf":
		v := strings.ToLower(t.value)
		if v != AlignRelaxed && v != AlignStrict {
			return bad(t, "r or s")
		}
		if t.name == "adkim" {
			r.ADKIM = v
		} else {
			r.ASPF = v
		}
	case "pct":
		n, err := strconv.Atoi(t.value)
		if err != nil || n < 0 || n > 100 {
			return bad(t, "an integer from 0 to 100")
		}
		r.Percent = n
	case "rua", "ruf":
		uris, err := parseReportURIs(t.value)
		if err != nil {
			return bad(t, "a comma-separated list of URIs such as mailto:dmarc@example.com")
		}
		if t.name == "rua" {
			r.RUA = uris
		} else {
			r.RUF = uris
		}
	case "fo":
		for _, o := range strings.Split(t.value, ":") {
			if o = trimWSP(o); o != "0" && o != "1" && o != "d" && o != "s" {
				return bad(t, "a colon-separated list of 0, 1, d, s")
			}
		}
		r.FailureOptions = t.value
	case "rf":
		for _, f := range strings.Split(t.value, ":") {
			if !strings.EqualFold(trimWSP(f), "afrf") {
				return bad(t, "afrf")
			}
		}
		r.ReportFormat = t.value
	case "ri":
		n, err := strconv.ParseUint(t.value, 10, 32)
		if err != nil {
			return bad(t, "a number of seconds")
		}
		r.Interval = uint32(n)
	}
	return nil
}

// parseReportURIs reads "uri[!size][, uri...]" (RFC 7489 section 6.4).
func parseReportURIs(s string) ([]string, error) {
	var out []string
	for _, u := range strings.Split(s, ",") {
		u = trimWSP(u)
		uri, size, hasSize := strings.Cut(u, "!")
		scheme, rest, ok := strings.Cut(uri, ":")
		if !ok || scheme == "" || rest == "" || !isAlpha(scheme[0]) || strings.ContainsAny(uri, " \t") {
			return nil, fmt.Errorf("bad URI %q", u)
		}
		if hasSize {
			n := strings.TrimRight(size, "kmgtKMGT")
			if _, err := strconv.ParseUint(n, 10, 64); err != nil || len(size)-len(n) > 1 {
				return nil, fmt.Errorf("bad size in %q", u)
			}
		}
		out = append(out, uri)
	}
	return out, nil
}

// OrganizationalDomain returns the registrable domain of a name ("example.co.uk"
// for "mail.example.co.uk"), by the public suffix list (RFC 7489 section
// 3.2). A name that is itself a public suffix is its own organisational domain.
func OrganizationalDomain(domain string) string {
	domain = strings.ToLower(strings.TrimSuffix(domain, "."))
	org, err := publicsuffix.EffectiveTLDPlusOne(domain)
	if err != nil {
		return domain
	}
	return org
}

// Aligned reports whether two domains are aligned under mode (RFC 7489
// section 3.1): equal under AlignStrict; sharing an organisational domain
// under AlignRelaxed.
func Aligned(a, b, mode string) bool {
	a = strings.ToLower(strings.TrimSuffix(a, "."))
	b = strings.ToLower(strings.TrimSuffix(b, "."))
	if mode == AlignStrict {
		return a == b
	}
	return OrganizationalDomain(a) == OrganizationalDomain(b)
}

// checkDMARC finds the policy record for the From domain, falling back to
// the organisational domain (RFC 7489 section 6.6.3), and checks that the
// bounce and signing domains align with the From domain.
func (c *checker) checkDMARC(ctx context.Context) error {
	domain := c.cfg.Domain
	name := "_dmarc." + domain
	records, err := c.dmarcRecords(ctx, name)
	if err != nil {
		return err
	}
	sub := false
	if org := OrganizationalDomain(domain); len(records) == 0 && org != domain {
		name = "_dmarc." + org
		if records, err = c.dmarcRecords(ctx, name); err != nil {
			return err
		}
		if len(records) > 0 {
			sub = true
			c.rep.note("DMARC policy taken from the organisational domain's record at %s", name)
		}
	}
	// Without a usable record, alignment is still checked with the
	// default relaxed modes: it is what a record would ask for.
	rec := &DMARCRecord{ADKIM: AlignRelaxed, ASPF: AlignRelaxed}
	switch len(records) {
	case 0:
		c.rep.add(DMARCMissing, SeverityWarning, fmt.Sprintf("no DMARC record at _dmarc.%s: receivers have no policy for mail failing SPF and DKIM.", domain))
	case 1:
		r, err := ParseDMARC(records[0])
		if err != nil {
			c.rep.add(DMARCSyntax, SeverityError, fmt.Sprintf("%s: %s.", name, strings.TrimPrefix(err.Error(), "dnscheck: ")))
			break
		}
		rec = r
		policy, which := r.Policy, "p"
		if sub && r.SubdomainPolicy != "" {
			policy, which = r.SubdomainPolicy, "sp"
		}
		if policy == "none" {
			c.rep.add(DMARCPolicyNone, SeverityWarning, fmt.Sprintf("%s has %s=none: spoofed mail is only reported, not refused.", name, which))
		}
	default:
		c.rep.add(DMARCMultiple, SeverityError, fmt.Sprintf("%s has %d DMARC records; receivers ignore them all (RFC 7489 section 6.6.3).", name, len(records)))
	}
	if !Aligned(c.cfg.Bounce, domain, rec.ASPF) {
		c.rep.add(DMARCSPFNotAligned, SeverityError, fmt.Sprintf(
			"bounce domain %s does not align with From domain %s under aspf=%s, so SPF cannot satisfy DMARC.", c.cfg.Bounce, domain, rec.ASPF))
	}
	if c.cfg.Selector != "" && !Aligned(c.cfg.SigningDomain, domain, rec.ADKIM) {
		c.rep.add(DMARCDKIMNotAligned, SeverityError, fmt.Sprintf(
			"DKIM d=%s does not align with From domain %s under adkim=%s, so DKIM cannot satisfy DMARC.", c.cfg.SigningDomain, domain, rec.ADKIM))
	}
	return nil
}

func (c *checker) dmarcRecords(ctx context.Context, name string) ([]string, error) {
	txts, err := c.lookupTXT(ctx, name)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, t := range txts {
		if IsDMARC(t) {
			out = append(out, t)
		}
	}
	return out, nil
}
