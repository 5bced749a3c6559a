package attack

import (
	"fmt"
	"sort"
	"strings"
)

// Violation is one broken rule.
type Violation struct {
	Class   string
	Rule    string
	Request int // request ID, -1 when unattributed
	Detail  string
}

func (v Violation) String() string {
	return fmt.Sprintf("%s: %s (request %d): %s", v.Class, v.Rule, v.Request, v.Detail)
}

// ClassResult is one row of the report.
type ClassResult struct {
	Class      string
	Requests   int
	Accepted   int
	Delivered  int
	Violations int
	Lost       int
}

// Report is the audit's outcome.
type Report struct {
	Classes    []ClassResult
	Total      ClassResult
	Violations []Violation
	// Clients is the number of distinct client identities that sent.
	Clients int
	// Redelivered counts same-Message-ID copies sent again across a kill.
	Redelivered int
	// Ambiguous counts requests answered 503 while a dependency was being
	// killed whose mail was nevertheless queued and delivered (the write
	// landed, its reply was lost).
	Ambiguous []int
}

// OK reports no violation (lost submissions are violations too).
func (r *Report) OK() bool { return len(r.Violations) == 0 }

// Count returns how many violations have rule.
func (r *Report) Count(rule string) int {
	n := 0
	for _, v := range r.Violations {
		if v.Rule == rule {
			n++
		}
	}
	return n
}

// Markdown renders the per-class table and lists the violations.
func (r *Report) Markdown() string {
	var b strings.Builder
	if r.Clients > 0 {
		fmt.Fprintf(&b, "%d requests from %d distinct clients.\n\n", r.Total.Requests, r.Clients)
	}
	b.WriteString("| class | requests | accepted (2xx/303) | messages delivered | violations | lost |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|\n")
	row := func(c ClassResult, bold bool) {
		name := c.Class
		if bold {
			name = "**" + name + "**"
		}
		fmt.Fprintf(&b, "| %s | %d | %d | %d | %d | %d |\n", name, c.Requests, c.Accepted, c.Delivered, c.Violations, c.Lost)
	}
	for _, c := range r.Classes {
		row(c, false)
	}
	row(r.Total, true)
	if len(r.Violations) > 0 {
		b.WriteString("\nViolations:\n\n")
		for i, v := range r.Violations {
			if i == 50 {
				fmt.Fprintf(&b, "- ... and %d more\n", len(r.Violations)-50)
				break
			}
			fmt.Fprintf(&b, "- %s\n", v)
		}
	}
	return b.String()
}

// mergeReports adds b's audit to a's (either may be nil): rows of the same
// class are summed, violations and ambiguous requests listed together.
// Clients is summed, as the scenarios merged run on separate services.
func mergeReports(a, b *Report) *Report {
	if a == nil {
		return b
	}
	if b == nil {
		return a
	}
	out := &Report{Clients: a.Clients + b.Clients, Redelivered: a.Redelivered + b.Redelivered,
		Violations: append(append([]Violation(nil), a.Violations...), b.Violations...),
		Ambiguous:  append(append([]int(nil), a.Ambiguous...), b.Ambiguous...)}
	idx := map[string]int{}
	for _, c := range append(append([]ClassResult(nil), a.Classes...), b.Classes...) {
		i, ok := idx[c.Class]
		if !ok {
			out.Classes = append(out.Classes, ClassResult{Class: c.Class})
			i = len(out.Classes) - 1
			idx[c.Class] = i
		}
		r := &out.Classes[i]
		r.Requests += c.Requests
		r.Accepted += c.Accepted
		r.Delivered += c.Delivered
		r.Violations += c.Violations
		r.Lost += c.Lost
		t := &out.Total
		t.Requests += c.Requests
		t.Accepted += c.Accepted
		t.Delivered += c.Delivered
		t.Violations += c.Violations
		t.Lost += c.Lost
	}
	out.Total.Class = "total"
	sort.Slice(out.Classes, func(i, j int) bool { return out.Classes[i].Class < out.Classes[j].Class })
	return out
}
