package dnscheck

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// MaxSPFLookups is the number of DNS-querying terms (include, a, mx, ptr,
// exists, redirect) one SPF evaluation may use, counting included records
// recursively (RFC 7208 section 4.6.4).
const MaxSPFLookups = 10

// MaxSPFVoidLookups is the number of lookups answering NXDOMAIN or no data
// an SPF evaluation should tolerate (RFC 7208 section 4.6.4 suggests 2).
const MaxSPFVoidLookups = 2

// maxSPFDepth bounds include/redirect recursion while walking a record tree,
// so a loop or a hostile tree cannot keep the doctor busy.
const maxSPFDepth = 10

// spfVersion is the version section every SPF record starts with
// (RFC 7208 section 4.5), compared case-insensitively.
const spfVersion = "v=spf1"

// SPFRecord is a parsed SPF record (RFC 7208 section 4.5).
type SPFRecord struct {
	Terms []SPFTerm
}

// SPFTerm is one directive or modifier of an SPF record (RFC 7208 section 4.6.1).
type SPFTerm struct {
	// Raw is the term as written.
	Raw string
	// Modifier is true for name=value terms (redirect=, exp=, unknown ones).
	Modifier bool
	// Qualifier is one of '+', '-', '~', '?' for mechanisms ('+' when not
	// written); zero for modifiers.
	Qualifier byte
	// Name is the lower-cased mechanism or modifier name.
	Name string
	// Value is what follows ":" (mechanisms) or "=" (modifiers), without
	// any CIDR suffix; for ip4/ip6 it is the whole network.
	Value string
	// Prefix4 and Prefix6 are the CIDR lengths of a and mx (-1 when absent).
	Prefix4, Prefix6 int
}

// SPFTermError describes one term that is not valid SPF.
type SPFTermError struct {
	Term   string
	Reason string
}

func (e *SPFTermError) Error() string {
	return fmt.Sprintf("dnscheck: SPF term %q: %s", e.Term, e.Reason)
}

// IsSPF reports whether a TXT record is an SPF version 1 record: "v=spf1"
// alone or followed by a space (RFC 7208 section 4.5).
func IsSPF(txt string) bool {
	if len(txt) < len(spfVersion) || !strings.EqualFold(txt[:len(spfVersion)], spfVersion) {
		return false
	}
	return len(txt) == len(spfVersion) || txt[len(spfVersion)] == ' '
}

// ParseSPF parses an SPF record. It parses every term it can: the returned
// record holds the valid terms, and the error (when not nil) joins one
// *SPFTermError per invalid term, so a caller can report them all.
func ParseSPF(record string) (*SPFRecord, error) {
	if !IsSPF(record) {
		return nil, errors.New("dnscheck: SPF record does not start with \"v=spf1\"")
	}
	rec := &SPFRecord{}
	var errs []error
	seen := map[string]bool{}
	// Terms are separated by one or more spaces (RFC 7208 section 12).
	for _, raw := range strings.Split(record[len(spfVersion):], " ") {
		if raw == "" {
			continue
		}
		t, err := parseSPFTerm(raw)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if t.Name == "redirect" || t.Name == "exp" {
			// RFC 7208 section 6: each may appear at most once.
			if seen[t.Name] {
				errs = append(errs, &SPFTermError{raw, t.Name + "= appears more than once"})
				continue
			}
			seen[t.Name] = true
		}
		rec.Terms = append(rec.Terms, t)
	}
	return rec, errors.Join(errs...)
}

func parseSPFTerm(raw string) (SPFTerm, error) {
	// modifier = name "=" macro-string; name = ALPHA *( ALPHA / DIGIT /
	// "-" / "_" / "." ) (RFC 7208 section 12). A mechanism never has "="
	// before its first ":" or "/".
	if i := strings.IndexAny(raw, "=:/"); i > 0 && raw[i] == '=' {
		return parseSPFModifier(raw, raw[:i], raw[i+1:])
	}
	t := SPFTerm{Raw: raw, Prefix4: -1, Prefix6: -1, Qualifier: '+'}
	body := raw
	switch raw[0] {
	case '+', '-', '~', '?':
		t.Qualifier = raw[0]
		body = raw[1:]
	}
	name, rest := body, ""
	if i := strings.IndexAny(body, ":/"); i >= 0 {
		name, rest = body[:i], body[i:]
	}
	t.Name = strings.ToLower(name)
	if err := t.parseArgument(name, rest); err != nil {
		return SPFTerm{}, &SPFTermError{raw, err.Error()}
	}
	return t, nil
}

func parseSPFModifier(raw, name, value string) (SPFTerm, error) {
	bad := func(format string, args ...any) (SPFTerm, error) {
		return SPFTerm{}, &SPFTermError{raw, fmt.Sprintf(format, args...)}
	}
	if !validModifierName(name) {
		return bad("invalid modifier name %q", name)
	}
	t := SPFTerm{Raw: raw, Prefix4: -1, Prefix6: -1, Modifier: true, Name: strings.ToLower(name), Value: value}
	if err := checkMacroString(t.Value); err != nil {
		return bad("%v", err)
	}
	switch t.Name {
	case "redirect":
		if t.Value == "" {
			return bad("redirect= needs a domain")
		}
	case "exp":
	default:
		// RFC 7208 section 6 makes receivers ignore unknown modifiers,
		// so a misspelt redirect= silently does nothing: the doctor
		// treats it as an error.
		return bad("unknown modifier %q", t.Name)
	}
	return t, nil
}

// parseArgument checks and stores what follows the mechanism name (as
// written): rest is "" or starts with ":" or "/".
func (t *SPFTerm) parseArgument(name, rest string) error {
	domainArg := func(s string) error {
		t.Value = s[1:]
		return checkDomainSpec(t.Value)
	}
	switch t.Name {
	case "all":
		if rest != "" {
			return errors.New("all takes no argument")
		}
	case "include", "exists":
		if !strings.HasPrefix(rest, ":") || len(rest) == 1 {
			return fmt.Errorf("%s needs a domain (%s:example.com)", t.Name, t.Name)
		}
		return domainArg(rest)
	case "a", "mx":
		spec := rest
		if slash := strings.Index(spec, "/"); slash >= 0 {
			p4, p6, err := parseDualCIDR(spec[slash:])
			if err != nil {
				return err
			}
			t.Prefix4, t.Prefix6 = p4, p6
			spec = spec[:slash]
		}
		if spec == "" {
			return nil
		}
		if !strings.HasPrefix(spec, ":") || len(spec) == 1 {
			return fmt.Errorf("%s needs a domain after \":\"", t.Name)
		}
		return domainArg(spec)
	case "ptr":
		if rest == "" {
			return nil
		}
		if !strings.HasPrefix(rest, ":") || len(rest) == 1 {
			return errors.New("ptr takes only an optional \":domain\"")
		}
		return domainArg(rest)
	case "ip4", "ip6":
		if !strings.HasPrefix(rest, ":") {
			return fmt.Errorf("%s needs an address (%s:<address>[/<prefix>])", t.Name, t.Name)
		}
		t.Value = rest[1:]
		return checkIPNetwork(t.Name, t.Value)
	default:
		return fmt.Errorf("unknown mechanism %q", name)
	}
	return nil
}

func validModifierName(s string) bool {
	if s == "" || !isAlpha(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !isAlpha(c) && !isDigit(c) && c != '-' && c != '_' && c != '.' {
			return false
		}
	}
	return true
}

// checkIPNetwork validates the argument of ip4: or ip6: (RFC 7208 section 5.6).
func checkIPNetwork(mech, s string) error {
	addr, prefix, hasPrefix := strings.Cut(s, "/")
	ip, err := netip.ParseAddr(addr)
	if err != nil || ip.Zone() != "" {
		return fmt.Errorf("%q is not an IP address", addr)
	}
	maxLen := 32
	if mech == "ip4" && !ip.Is4() {
		return fmt.Errorf("%q is not an IPv4 address", addr)
	}
	if mech == "ip6" {
		if !ip.Is6() || ip.Is4In6() {
			return fmt.Errorf("%q is not an IPv6 address", addr)
		}
		maxLen = 128
	}
	if hasPrefix {
		if _, err := parsePrefixLen(prefix, maxLen); err != nil {
			return err
		}
	}
	return nil
}

// parseDualCIDR parses "/n", "//m" or "/n//m" after a or mx (RFC 7208
// section 5.6, dual-cidr-length).
func parseDualCIDR(s string) (p4, p6 int, err error) {
	p4, p6 = -1, -1
	v4, v6, hasV6 := strings.Cut(s, "//")
	if v4 != "" {
		if p4, err = parsePrefixLen(strings.TrimPrefix(v4, "/"), 32); err != nil || !strings.HasPrefix(v4, "/") {
			return 0, 0, fmt.Errorf("invalid CIDR length %q", s)
		}
	}
	if hasV6 {
		if p6, err = parsePrefixLen(v6, 128); err != nil {
			return 0, 0, fmt.Errorf("invalid CIDR length %q", s)
		}
	}
	return p4, p6, nil
}

func parsePrefixLen(s string, maxLen int) (int, error) {
	// ip4-cidr-length = "/" ("0" / %x31-39 0*1DIGIT): no leading zeros.
	if s == "" || len(s) > 3 || (len(s) > 1 && s[0] == '0') {
		return 0, fmt.Errorf("invalid prefix length %q", s)
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > maxLen {
		return 0, fmt.Errorf("invalid prefix length %q", s)
	}
	return n, nil
}

// checkDomainSpec validates a domain-spec: a macro-string whose expansion
// is a domain name (RFC 7208 section 7.1). Without macros it must end in a
// top label that is not all digits (toplabel, section 12).
func checkDomainSpec(s string) error {
	if err := checkMacroString(s); err != nil {
		return err
	}
	if strings.Contains(s, "%") {
		return nil
	}
	name := strings.TrimSuffix(s, ".")
	if name == "" || len(name) > 253 {
		return fmt.Errorf("%q is not a domain name", s)
	}
	labels := strings.Split(name, ".")
	for _, l := range labels {
		if l == "" || len(l) > 63 {
			return fmt.Errorf("%q is not a domain name", s)
		}
	}
	top := labels[len(labels)-1]
	if len(labels) < 2 || strings.Trim(top, "0123456789") == "" {
		return fmt.Errorf("%q is not a fully qualified domain name", s)
	}
	return nil
}

// checkMacroString validates macro syntax (RFC 7208 section 7.1): "%{"
// macro-letter transformers [delimiters] "}", or "%%", "%_", "%-".
func checkMacroString(s string) error {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x21 || c > 0x7e {
			return fmt.Errorf("invalid character %q", c)
		}
		if c != '%' {
			continue
		}
		if i+1 >= len(s) {
			return errors.New("\"%\" at the end of a macro string")
		}
		i++
		switch s[i] {
		case '%', '_', '-':
			continue
		case '{':
		default:
			return fmt.Errorf("invalid macro escape \"%%%c\"", s[i])
		}
		end := strings.IndexByte(s[i:], '}')
		if end < 0 {
			return errors.New("unterminated macro \"%{\"")
		}
		body := s[i+1 : i+end]
		i += end
		if body == "" || !strings.ContainsRune("slodiphcrtvSLODIPHCRTV", rune(body[0])) {
			return fmt.Errorf("invalid macro letter in \"%%{%s}\"", body)
		}
		j := 1
		for j < len(body) && isDigit(body[j]) {
			j++
		}
		if j < len(body) && (body[j] == 'r' || body[j] == 'R') {
			j++
		}
		for ; j < len(body); j++ {
			if !strings.ContainsRune(".-+,/_=", rune(body[j])) {
				return fmt.Errorf("invalid macro transformer in \"%%{%s}\"", body)
			}
		}
	}
	return nil
}

// needsLookup reports whether a term costs a DNS lookup against the limit of
// RFC 7208 section 4.6.4.
func (t SPFTerm) needsLookup() bool {
	switch t.Name {
	case "include", "a", "mx", "ptr", "exists":
		return !t.Modifier
	case "redirect":
		return t.Modifier
	}
	return false
}

// All returns the record's "all" mechanism, if it has one.
func (r *SPFRecord) All() (SPFTerm, bool) {
	for _, t := range r.Terms {
		if !t.Modifier && t.Name == "all" {
			return t, true
		}
	}
	return SPFTerm{}, false
}

// Redirect returns the redirect= target, or "".
func (r *SPFRecord) Redirect() string {
	for _, t := range r.Terms {
		if t.Modifier && t.Name == "redirect" {
			return t.Value
		}
	}
	return ""
}
