package dnscheck

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"blitiri.com.ar/go/spf"
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
	t := SPFTerm{Raw: raw, Prefix4: -1, Prefix6: -1}
	bad := func(format string, args ...any) (SPFTerm, error) {
		return SPFTerm{}, &SPFTermError{raw, fmt.Sprintf(format, args...)}
	}
	// modifier = name "=" macro-string; name = ALPHA *( ALPHA / DIGIT /
	// "-" / "_" / "." ) (RFC 7208 section 12). A mechanism never has "="
	// before its first ":" or "/".
	if i := strings.IndexAny(raw, "=:/"); i > 0 && raw[i] == '=' {
		name := raw[:i]
		if !validModifierName(name) {
			return bad("invalid modifier name %q", name)
		}
		t.Modifier = true
		t.Name = strings.ToLower(name)
		t.Value = raw[i+1:]
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
			// RFC 7208 section 6 makes receivers ignore unknown
			// modifiers, so a misspelt redirect= silently does
			// nothing: the doctor treats it as an error.
			return bad("unknown modifier %q", t.Name)
		}
		return t, nil
	}

	body := raw
	t.Qualifier = '+'
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
	switch t.Name {
	case "all":
		if rest != "" {
			return bad("all takes no argument")
		}
	case "include", "exists":
		if !strings.HasPrefix(rest, ":") || len(rest) == 1 {
			return bad("%s needs a domain (%s:example.com)", t.Name, t.Name)
		}
		t.Value = rest[1:]
		if err := checkDomainSpec(t.Value); err != nil {
			return bad("%v", err)
		}
	case "a", "mx":
		spec := rest
		if slash := strings.Index(spec, "/"); slash >= 0 {
			p4, p6, err := parseDualCIDR(spec[slash:])
			if err != nil {
				return bad("%v", err)
			}
			t.Prefix4, t.Prefix6 = p4, p6
			spec = spec[:slash]
		}
		if spec != "" {
			if !strings.HasPrefix(spec, ":") || len(spec) == 1 {
				return bad("%s needs a domain after \":\"", t.Name)
			}
			t.Value = spec[1:]
			if err := checkDomainSpec(t.Value); err != nil {
				return bad("%v", err)
			}
		}
	case "ptr":
		if rest != "" {
			if !strings.HasPrefix(rest, ":") || len(rest) == 1 {
				return bad("ptr takes only an optional \":domain\"")
			}
			t.Value = rest[1:]
			if err := checkDomainSpec(t.Value); err != nil {
				return bad("%v", err)
			}
		}
	case "ip4", "ip6":
		if !strings.HasPrefix(rest, ":") {
			return bad("%s needs an address (%s:<address>[/<prefix>])", t.Name, t.Name)
		}
		t.Value = rest[1:]
		if err := checkIPNetwork(t.Name, t.Value); err != nil {
			return bad("%v", err)
		}
	default:
		return bad("unknown mechanism %q", name)
	}
	return t, nil
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

// checkSPF looks at the bounce domain's SPF record: presence, uniqueness,
// syntax (of it and of everything it includes), the lookup limits and its
// final "all".
func (c *checker) checkSPF(ctx context.Context) error {
	domain := c.cfg.Bounce
	txts, err := c.lookupTXT(ctx, domain)
	if err != nil {
		return err
	}
	var records []string
	for _, t := range txts {
		if IsSPF(t) {
			records = append(records, t)
		}
	}
	switch len(records) {
	case 0:
		c.rep.add(SPFMissing, SeverityError, fmt.Sprintf("%s has no SPF (v=spf1) TXT record.", domain))
		return nil
	case 1:
	default:
		c.rep.add(SPFMultiple, SeverityError, fmt.Sprintf("%s has %d SPF records: %s.", domain, len(records), quoteList(records)))
		return nil
	}
	c.spfOK = true
	w := &spfWalk{c: c}
	rec, err := w.walk(ctx, domain, records[0], 0)
	if err != nil {
		return err
	}
	for _, loop := range w.loops {
		c.rep.add(SPFTooManyLookups, SeverityError, fmt.Sprintf(
			"%s's SPF record has an include loop (%s); receivers stop at the lookup limit with permerror.", domain, loop))
	}
	if w.lookups > MaxSPFLookups && len(w.loops) == 0 {
		c.rep.add(SPFTooManyLookups, SeverityError, fmt.Sprintf(
			"%s's SPF record needs %d DNS lookups counting includes (limit %d, RFC 7208 section 4.6.4); receivers answer permerror.",
			domain, w.lookups, MaxSPFLookups))
	}
	if w.voids > MaxSPFVoidLookups {
		c.rep.add(SPFVoidLookups, SeverityWarning, fmt.Sprintf(
			"%s's SPF record makes %d void lookups (limit %d): %s.",
			domain, w.voids, MaxSPFVoidLookups, strings.Join(w.voidNames, ", ")))
	}
	for _, where := range w.ptrs {
		c.rep.add(SPFPtr, SeverityWarning, fmt.Sprintf("%s uses the ptr mechanism, which is slow and unreliable (RFC 7208 section 5.5).", where))
	}
	if rec != nil {
		c.checkAll(ctx, domain, rec)
	}
	return nil
}

// checkAll reports on the record's final "all", following redirect= when the
// record has none (RFC 7208 section 6.1).
func (c *checker) checkAll(ctx context.Context, domain string, rec *SPFRecord) {
	where := domain
	for hops := 0; hops < maxSPFDepth; hops++ {
		if all, ok := rec.All(); ok {
			switch all.Qualifier {
			case '+':
				c.rep.add(SPFAllPass, SeverityError, fmt.Sprintf("%s's SPF record ends in %q: every host on the Internet may send as the domain.", where, all.Raw))
			case '?':
				c.rep.add(SPFAllNeutral, SeverityWarning, fmt.Sprintf("%s's SPF record ends in %q: unlisted senders get neutral, as if there were no record.", where, all.Raw))
			case '~':
				c.rep.add(SPFSoftfail, SeverityInfo, fmt.Sprintf("%s's SPF record ends in \"~all\": unlisted senders softfail.", where))
			}
			return
		}
		target := rec.Redirect()
		if target == "" {
			c.rep.add(SPFAllNeutral, SeverityWarning, fmt.Sprintf("%s's SPF record has no \"all\": unlisted senders get neutral, as if there were no record.", where))
			return
		}
		if strings.Contains(target, "%") {
			return
		}
		// A missing or broken target was reported by the walk.
		next, err := c.lookupTXT(ctx, target)
		if err != nil {
			return
		}
		rec = nil
		for _, t := range next {
			if IsSPF(t) {
				rec, _ = ParseSPF(t)
				break
			}
		}
		if rec == nil {
			return
		}
		where = target
	}
}

// spfWalk visits an SPF record and everything it includes or redirects to,
// counting DNS-querying terms and void lookups (RFC 7208 section 4.6.4) and
// reporting syntax errors on the way.
type spfWalk struct {
	c         *checker
	lookups   int
	voids     int
	voidNames []string
	ptrs      []string
	// path is the chain of domains from the top record to the one being
	// walked; a target already on it is a loop.
	path  []string
	loops []string
}

func (w *spfWalk) void(name string) {
	w.voids++
	w.voidNames = append(w.voidNames, name)
}

// walk parses and visits the record txt published at domain and returns it
// parsed (nil when it has no valid term at all).
func (w *spfWalk) walk(ctx context.Context, domain, txt string, depth int) (*SPFRecord, error) {
	w.path = append(w.path, strings.ToLower(strings.TrimSuffix(domain, ".")))
	defer func() { w.path = w.path[:len(w.path)-1] }()
	rec, perr := ParseSPF(txt)
	if perr != nil {
		for _, e := range unjoin(perr) {
			var te *SPFTermError
			if errors.As(e, &te) {
				w.c.rep.add(SPFSyntax, SeverityError, fmt.Sprintf("%s: SPF term %q: %s.", domain, te.Term, te.Reason))
			} else {
				w.c.rep.add(SPFSyntax, SeverityError, fmt.Sprintf("%s: %v.", domain, e))
			}
		}
	}
	if rec == nil {
		return nil, nil
	}
	_, hasAll := rec.All()
	for _, t := range rec.Terms {
		if !t.needsLookup() {
			continue
		}
		if t.Name == "redirect" && hasAll {
			continue // ignored when "all" is present (RFC 7208 section 6.1)
		}
		w.lookups++
		if w.lookups > 4*MaxSPFLookups {
			return rec, nil // enough to know it is far over the limit
		}
		target := t.Value
		if target == "" {
			target = domain
		}
		if strings.Contains(target, "%") {
			continue // depends on the sender; cannot be resolved here
		}
		switch t.Name {
		case "include", "redirect":
			if err := w.follow(ctx, domain, t, target, depth); err != nil {
				return nil, err
			}
		case "a", "exists":
			ips, err := w.c.res.LookupIPAddr(ctx, target)
			if err != nil && !IsNotFound(err) {
				return nil, fmt.Errorf("dnscheck: resolving %s for SPF: %w", target, err)
			}
			if len(ips) == 0 {
				w.void(target)
			}
		case "mx":
			mxs, err := w.c.res.LookupMX(ctx, target)
			if err != nil && !IsNotFound(err) {
				return nil, fmt.Errorf("dnscheck: looking up MX %s for SPF: %w", target, err)
			}
			if len(mxs) == 0 {
				w.void(target)
			}
		case "ptr":
			w.ptrs = append(w.ptrs, domain)
		}
	}
	return rec, nil
}

// follow visits the record an include: or redirect= points at.
func (w *spfWalk) follow(ctx context.Context, from string, t SPFTerm, target string, depth int) error {
	target = strings.ToLower(strings.TrimSuffix(target, "."))
	if slices.Contains(w.path, target) {
		// Evaluation would go round until the lookup limit stops it.
		w.loops = append(w.loops, strings.Join(append(slices.Clone(w.path), target), " -> "))
		return nil
	}
	if depth >= maxSPFDepth {
		// Deeper than any record can go within the limit: every level
		// costs at least one lookup.
		w.lookups += MaxSPFLookups
		return nil
	}
	txts, err := w.c.lookupTXT(ctx, target)
	if err != nil {
		return err
	}
	var records []string
	for _, txt := range txts {
		if IsSPF(txt) {
			records = append(records, txt)
		}
	}
	if len(txts) == 0 {
		w.void(target)
	}
	switch len(records) {
	case 0:
		// RFC 7208 sections 5.2 and 6.1: a target without a record is
		// a permanent error.
		w.c.rep.add(SPFSyntax, SeverityError, fmt.Sprintf("%s: %q points at %s, which has no SPF record (permerror).", from, t.Raw, target))
		return nil
	case 1:
		_, err := w.walk(ctx, target, records[0], depth+1)
		return err
	default:
		w.c.rep.add(SPFMultiple, SeverityError, fmt.Sprintf("%s (reached by %q from %s) has %d SPF records.", target, t.Raw, from, len(records)))
		return nil
	}
}

// checkRelaySPF evaluates each relay address against the bounce domain with
// blitiri.com.ar/go/spf, asking our resolver (RFC 7208 section 4).
func (c *checker) checkRelaySPF(ctx context.Context) error {
	if !c.spfOK {
		return nil
	}
	for _, ip := range c.relayIPs {
		res, err := spf.CheckHostWithSender(net.IP(ip.AsSlice()), c.cfg.Bounce, "postmaster@"+c.cfg.Bounce,
			spf.WithResolver(c.res), spf.WithContext(ctx))
		if res == spf.Pass {
			continue
		}
		why := ""
		if err != nil && res != spf.Neutral && res != spf.Fail && res != spf.SoftFail {
			why = " (" + err.Error() + ")"
		}
		c.rep.add(SPFRelayNotPermitted, SeverityError, fmt.Sprintf(
			"relay %s is not authorised to send for %s: SPF result %s%s.", ip, c.cfg.Bounce, res, why))
	}
	return nil
}

// unjoin undoes errors.Join.
func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

func quoteList(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = strconv.Quote(s)
	}
	return strings.Join(q, " and ")
}
