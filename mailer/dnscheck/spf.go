package dnscheck

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"

	"blitiri.com.ar/go/spf"
)

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
