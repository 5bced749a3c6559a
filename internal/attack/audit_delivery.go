package attack

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// perRequest checks what each request got against what it may get.
func (a *auditor) perRequest(reqs []*Request) {
	for _, r := range reqs {
		got := a.delivered[r]
		if r.Honeypot && len(got) > 0 {
			a.violate(r, RuleHoneypot, "%d messages for a honeypot hit", len(got))
			continue
		}
		// No answer at all (the service was killed mid-request) may or may
		// not have been queued: delivery is allowed, twice is not.
		if len(got) > 0 && r.Status == 503 && a.killedDuring(r) {
			a.rep.Ambiguous = append(a.rep.Ambiguous, r.ID)
		} else if len(got) > 0 && !r.Accepted() && r.Status != 0 {
			a.violate(r, RuleRejected, "%d messages for a request answered %d", len(got), r.Status)
		}
		seen := map[string]int{}
		copies := map[string][]*parsed{}
		for _, m := range got {
			for _, x := range m.rec.RcptTo {
				seen[strings.ToLower(x)]++
				copies[strings.ToLower(x)] = append(copies[strings.ToLower(x)], m)
			}
		}
		for x, n := range seen {
			if n <= 1 {
				continue
			}
			if a.redelivery(copies[x]) {
				a.rep.Redelivered += n - 1
				continue
			}
			var desc []string
			for _, m := range copies[x] {
				desc = append(desc, fmt.Sprintf("%s at %s", m.hdr.Get("Message-Id"), m.rec.At.Format("15:04:05.000")))
			}
			a.violate(r, RuleDuplicate, "%q got this submission %d times: %s", x, n, strings.Join(desc, ", "))
		}
		if capN, ok := a.p.Share[r.Form]; ok && len(seen) > capN {
			a.violate(r, RuleOverCap, "share post reached %d recipients, max_recipients is %d", len(seen), capN)
		}
		want := a.expected(r)
		if len(want) == 0 {
			continue
		}
		lost := 0
		for _, x := range want {
			if seen[strings.ToLower(x)] == 0 {
				lost++
			}
		}
		if lost > 0 {
			a.class(r.Class).Lost++
			a.violate(r, RuleLost, "answered %d, %d of %d recipients never got it", r.Status, lost, len(want))
		}
	}
}

// killedDuring reports a kill while r was in flight.
func (a *auditor) killedDuring(r *Request) bool {
	for _, k := range a.p.Kills {
		if !k.Before(r.Sent) && !k.After(r.Done) {
			return true
		}
	}
	return false
}

// killSkew is how much later than a kill the relay may record a copy
// that the killed process had already written: the relay reads and stamps
// it on its own goroutine, which a loaded machine can delay.
const killSkew = 250 * time.Millisecond

// redelivery reports copies of one message (one Message-ID), each pair
// separated by a kill of the service.
func (a *auditor) redelivery(ms []*parsed) bool {
	if len(a.p.Kills) == 0 {
		return false
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].rec.At.Before(ms[j].rec.At) })
	id := ms[0].hdr.Get("Message-Id")
	for i := 1; i < len(ms); i++ {
		if id == "" || ms[i].hdr.Get("Message-Id") != id {
			return false
		}
		killed := false
		for _, k := range a.p.Kills {
			// The relay stamps a copy when it has read it, which can be
			// just after the kill of a process that wrote it just before.
			killed = killed || (k.After(ms[i-1].rec.At.Add(-killSkew)) && k.Before(ms[i].rec.At))
		}
		if !killed {
			return false
		}
	}
	return true
}

// expected are the recipients r must reach.
func (a *auditor) expected(r *Request) []string {
	if r.Honeypot || !(r.Legit || (a.p.RequireAccepted && r.Accepted() && r.SubID != "")) {
		return nil
	}
	if to, ok := a.p.Contact[r.Form]; ok {
		return to
	}
	if r.Legit {
		return dedupIDN(r.Allowed)
	}
	// An accepted non-legit share post: at least one of its recipients.
	if len(a.delivered[r]) == 0 {
		return []string{"(any recipient)"}
	}
	return nil
}

// dedupIDN keeps one form of each address (Allowed lists IDNs twice).
func dedupIDN(xs []string) []string {
	var out []string
	for _, x := range xs {
		if !strings.Contains(domainOf(x), "xn--") && !isASCII(x) {
			continue // the Unicode twin of a punycode entry
		}
		out = append(out, x)
	}
	return out
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// caps checks the rate-limit tiers over everything delivered.
func (a *auditor) caps(reqs []*Request) {
	type key struct{ form, k string }
	perIP := map[key][]*Request{}
	perSender := map[key][]*Request{}
	perRcpt := map[key]int{}
	for _, r := range reqs {
		got := a.delivered[r]
		if len(got) == 0 {
			continue
		}
		if r.Client != "" {
			perIP[key{r.Form, r.Client}] = append(perIP[key{r.Form, r.Client}], r)
		}
		if r.Sender != "" {
			k := key{r.Form, strings.ToLower(r.Sender)}
			perSender[k] = append(perSender[k], r)
		}
		if _, share := a.p.Share[r.Form]; share {
			for _, m := range got {
				for _, x := range m.rec.RcptTo {
					perRcpt[key{r.Form, strings.ToLower(x)}]++
				}
			}
		}
	}
	for k, rs := range perIP {
		if c := a.p.Caps[k.form].PerIP; c > 0 && len(rs) > c {
			a.violate(rs[c], RuleOverCap, "client %s got %d posts through form %s, per_ip is %d", k.k, len(rs), k.form, c)
		}
	}
	for k, rs := range perSender {
		if c := a.p.Caps[k.form].PerSender; c > 0 && len(rs) > c {
			a.violate(rs[c], RuleOverCap, "sender %s got %d posts through form %s, per_sender is %d", k.k, len(rs), k.form, c)
		}
	}
	for k, n := range perRcpt {
		if c := a.p.Caps[k.form].PerRecipient; c > 0 && n > c {
			a.violate(nil, RuleOverCap, "%s received %d messages from form %s, per_recipient is %d", k.k, n, k.form, c)
		}
	}
}
