package dnscheck

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
)

// Severity says how bad a finding is.
type Severity string

// Severities, worst first.
const (
	// SeverityError: mail will be junked or rejected, or the domain can be
	// spoofed. `formguard doctor` exits 1.
	SeverityError Severity = "error"
	// SeverityWarning: works today but is fragile or weaker than it should be.
	SeverityWarning Severity = "warning"
	// SeverityInfo: worth knowing, nothing to fix.
	SeverityInfo Severity = "info"
)

func (s Severity) rank() int {
	switch s {
	case SeverityError:
		return 0
	case SeverityWarning:
		return 1
	default:
		return 2
	}
}

// Code is a stable finding identifier. Scripts may match on it; it never
// changes meaning.
type Code string

// Finding codes. docs/doctor.md explains each one and how to fix it.
const (
	SPFMissing           Code = "SPF_MISSING"
	SPFMultiple          Code = "SPF_MULTIPLE"
	SPFSyntax            Code = "SPF_SYNTAX"
	SPFTooManyLookups    Code = "SPF_TOO_MANY_LOOKUPS"
	SPFVoidLookups       Code = "SPF_VOID_LOOKUPS"
	SPFPtr               Code = "SPF_PTR"
	SPFAllPass           Code = "SPF_ALL_PASS"
	SPFAllNeutral        Code = "SPF_ALL_NEUTRAL"
	SPFSoftfail          Code = "SPF_SOFTFAIL"
	SPFRelayNotPermitted Code = "SPF_RELAY_NOT_PERMITTED"

	DKIMMissing     Code = "DKIM_MISSING"
	DKIMSyntax      Code = "DKIM_SYNTAX"
	DKIMRevoked     Code = "DKIM_REVOKED"
	DKIMKeyMismatch Code = "DKIM_KEY_MISMATCH"
	DKIMWeakKey     Code = "DKIM_WEAK_KEY"
	DKIMTesting     Code = "DKIM_TESTING"

	DMARCMissing        Code = "DMARC_MISSING"
	DMARCMultiple       Code = "DMARC_MULTIPLE"
	DMARCSyntax         Code = "DMARC_SYNTAX"
	DMARCPolicyNone     Code = "DMARC_POLICY_NONE"
	DMARCSPFNotAligned  Code = "DMARC_SPF_NOT_ALIGNED"
	DMARCDKIMNotAligned Code = "DMARC_DKIM_NOT_ALIGNED"
	RDNSMismatch        Code = "RDNS_MISMATCH"
)

// Finding is one problem (or remark) about the domain's DNS.
type Finding struct {
	Code     Code     `json:"code"`
	Severity Severity `json:"severity"`
	// Detail says what was found, naming the DNS name and the offending
	// record or term.
	Detail string `json:"detail"`
	// Fix says in words what to change.
	Fix string `json:"fix,omitempty"`
}

// Report is the outcome of Check. Its JSON form is
// {"domain": ..., "notes": [...], "findings": [{"code", "severity", "detail", "fix"}]}.
type Report struct {
	Domain string `json:"domain"`
	// Notes record how the check was run (for example where the relay IPs
	// came from) and what was skipped. They are not findings.
	Notes    []string  `json:"notes,omitempty"`
	Findings []Finding `json:"findings"`
}

// HasErrors reports whether any finding has SeverityError.
func (r *Report) HasErrors() bool {
	for _, f := range r.Findings {
		if f.Severity == SeverityError {
			return true
		}
	}
	return false
}

// Codes returns the finding codes in report order.
func (r *Report) Codes() []Code {
	out := make([]Code, 0, len(r.Findings))
	for _, f := range r.Findings {
		out = append(out, f.Code)
	}
	return out
}

// WriteText writes a human report: a header, the notes, one line per finding
// (severity, code, detail and the fix in words) and a summary line.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "formguard doctor: %s\n", r.Domain)
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "note: %s\n", n)
	}
	counts := map[Severity]int{}
	for _, f := range r.Findings {
		counts[f.Severity]++
		line := fmt.Sprintf("%-7s %s: %s", strings.ToUpper(string(f.Severity)), f.Code, f.Detail)
		if f.Fix != "" {
			line += " Fix: " + f.Fix
		}
		b.WriteString(line + "\n")
	}
	verdict := "OK"
	if r.HasErrors() {
		verdict = "FAIL"
	}
	fmt.Fprintf(&b, "%s: %s, %s, %s\n", verdict,
		plural(counts[SeverityError], "error"),
		plural(counts[SeverityWarning], "warning"),
		plural(counts[SeverityInfo], "info"))
	_, err := io.WriteString(w, b.String())
	return err
}

func plural(n int, word string) string {
	if n == 1 || word == "info" {
		return fmt.Sprintf("%d %s", n, word)
	}
	return fmt.Sprintf("%d %ss", n, word)
}

// add records a finding with the code's standard fix.
// A finding already in the report (the same include reached twice) is not
// repeated.
func (r *Report) add(code Code, sev Severity, detail string) {
	for _, f := range r.Findings {
		if f.Code == code && f.Detail == detail {
			return
		}
	}
	r.Findings = append(r.Findings, Finding{Code: code, Severity: sev, Detail: detail, Fix: fixes[code]})
}

func (r *Report) note(format string, args ...any) {
	r.Notes = append(r.Notes, fmt.Sprintf(format, args...))
}

// sortFindings orders findings by severity, keeping check order within one
// severity, so the worst problems are read first.
func (r *Report) sortFindings() {
	sort.SliceStable(r.Findings, func(i, j int) bool {
		return r.Findings[i].Severity.rank() < r.Findings[j].Severity.rank()
	})
}

// fixes holds the advice printed with each code.
var fixes = map[Code]string{
	SPFMissing:           "publish one TXT record \"v=spf1 ip4:<relay IP> -all\" (or include: your provider) at the bounce domain.",
	SPFMultiple:          "merge the v=spf1 records into one; RFC 7208 section 4.5 makes two records a permanent error.",
	SPFSyntax:            "correct or remove the named term; valid mechanisms are all, include, a, mx, ptr, ip4, ip6, exists.",
	SPFTooManyLookups:    "flatten includes into ip4:/ip6: ranges or drop unused ones until at most 10 terms need DNS (RFC 7208 section 4.6.4).",
	SPFVoidLookups:       "remove a:, mx:, include: or exists: terms whose names do not exist or have no records.",
	SPFPtr:               "replace ptr with ip4:/ip6: or a: terms; RFC 7208 section 5.5 says ptr should not be used.",
	SPFAllPass:           "end the record with -all (or ~all); +all lets anyone send as the domain.",
	SPFAllNeutral:        "end the record with -all (or ~all) so unlisted senders are refused.",
	SPFSoftfail:          "nothing required; switch ~all to -all once all senders are listed.",
	SPFRelayNotPermitted: "authorise the relay in the bounce domain's SPF record (ip4:/ip6: with its address, or include: the relay provider).",
	DKIMMissing:          "publish the public key as TXT \"v=DKIM1; k=rsa; p=...\" at <selector>._domainkey.<domain> (formguard dkim-keygen prints it).",
	DKIMSyntax:           "republish the key record as \"v=DKIM1; k=rsa|ed25519; p=<base64 key>\".",
	DKIMRevoked:          "the key record has an empty p= (revoked); publish the current public key or configure another selector.",
	DKIMKeyMismatch:      "publish the public half of the configured key (formguard dkim-keygen prints the record) or configure the matching key file.",
	DKIMWeakKey:          "generate a 2048-bit RSA or an Ed25519 key, publish it under a new selector and switch the configuration to it.",
	DKIMTesting:          "remove t=y from the key record once signing works; verifiers may ignore signatures in testing mode.",
	DMARCMissing:         "publish TXT \"v=DMARC1; p=quarantine; rua=mailto:<you>\" at _dmarc.<domain>.",
	DMARCMultiple:        "keep exactly one v=DMARC1 record at _dmarc.<domain>; with two, receivers apply no policy.",
	DMARCSyntax:          "correct the named tag; the record must start with v=DMARC1 and carry p=none|quarantine|reject.",
	DMARCPolicyNone:      "after checking aggregate reports, move to p=quarantine, then p=reject.",
	DMARCSPFNotAligned:   "send bounces from an address whose domain aligns with the From domain (same domain under aspf=s), or relax to aspf=r.",
	DMARCDKIMNotAligned:  "sign with d= equal to the From domain (or its organisational domain under adkim=r).",
	RDNSMismatch:         "ask the relay's IP owner to set a PTR record to a name whose A/AAAA record points back at the IP.",
}

// WriteJSON writes the report as indented JSON followed by a newline.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}
