package attack

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"
)

// Fault scenario names.
const (
	FaultRedisKilled      = "redis-killed"
	FaultSMTP451          = "smtp-451"
	FaultSIGKILL          = "sigkill"
	FaultOutboxUnwritable = "outbox-unwritable"
)

// FaultNames lists the fault scenarios, the availability scenarios
// (FloodNames) last.
func FaultNames() []string {
	return append([]string{FaultRedisKilled, FaultSMTP451, FaultSIGKILL, FaultOutboxUnwritable}, FloodNames()...)
}

// Check is one assertion of a fault scenario.
type Check struct {
	Name   string
	OK     bool
	Detail string
	// Skipped checks could not run (the service lacks what they need);
	// they are shown, and do not fail the run.
	Skipped bool
}

// FaultResult is a fault scenario's outcome: its own checks and the mail
// audit of everything sent during it.
type FaultResult struct {
	Name   string
	Checks []Check
	Audit  *Report
	Facts  []string
}

func (f *FaultResult) check(name string, ok bool, format string, a ...any) {
	f.Checks = append(f.Checks, Check{Name: name, OK: ok, Detail: fmt.Sprintf(format, a...)})
}

func (f *FaultResult) fact(format string, a ...any) {
	f.Facts = append(f.Facts, fmt.Sprintf(format, a...))
}

// OK reports every check passed and the audit found nothing.
func (f *FaultResult) OK() bool {
	for _, c := range f.Checks {
		if !c.OK && !c.Skipped {
			return false
		}
	}
	return f.Audit == nil || f.Audit.OK()
}

// Markdown renders the checks, the facts and the audit table.
func (f *FaultResult) Markdown() string {
	var b strings.Builder
	b.WriteString(checksTable(f.Checks))
	if len(f.Facts) > 0 {
		b.WriteString("\n")
		for _, x := range f.Facts {
			fmt.Fprintf(&b, "- %s\n", x)
		}
	}
	if f.Audit != nil {
		b.WriteString("\nMail audit:\n\n")
		b.WriteString(f.Audit.Markdown())
	}
	return b.String()
}

// checksTable renders checks as a markdown table.
func checksTable(checks []Check) string {
	var b strings.Builder
	b.WriteString("| check | result | detail |\n|---|---|---|\n")
	for _, c := range checks {
		res := "pass"
		switch {
		case c.Skipped:
			res = "skipped"
		case !c.OK:
			res = "**FAIL**"
		}
		fmt.Fprintf(&b, "| %s | %s | %s |\n", c.Name, res, strings.ReplaceAll(c.Detail, "|", "\\|"))
	}
	return b.String()
}

// RunFault runs the named scenario.
func RunFault(ctx context.Context, name string, opt Options) (*FaultResult, error) {
	switch name {
	case FaultSMTP451:
		return runSMTP451(ctx, opt)
	case FaultSIGKILL:
		return runSIGKILL(ctx, opt)
	case FaultOutboxUnwritable:
		return runOutboxUnwritable(ctx, opt)
	case FaultReplayFill:
		return runReplayFill(ctx, opt)
	case FaultCaptchaBudget:
		return runCaptchaBudget(ctx, opt)
	case FaultLimiterFull, FaultOffenceFlood:
		return runHoneypotFlood(ctx, opt, name)
	case FaultLogFlood:
		return runLogFlood(ctx, opt)
	case FaultRedisKilled:
		res := &FaultResult{Name: name}
		for _, pol := range RedisFailurePolicies {
			r, err := runRedisKilled(ctx, opt, pol)
			if err != nil {
				return nil, err
			}
			res.Checks = append(res.Checks, r.Checks...)
			res.Facts = append(res.Facts, r.Facts...)
			res.Audit = mergeReports(res.Audit, r.Audit)
		}
		return res, nil
	}
	return nil, fmt.Errorf("unknown fault %q (have %s)", name, strings.Join(FaultNames(), ", "))
}

// waitFor polls cond until true or timeout; it waits on the service's
// progress, not on a fixed sleep, and never asserts on elapsed time.
func waitFor(ctx context.Context, timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if cond() {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(20 * time.Millisecond):
		}
	}
	return cond()
}

func scale(opt Options, short, full int) int {
	if opt.Short {
		return short
	}
	return full
}

// noteAnswer makes a's answer, "STATUS CODE", its request's Note, for a
// scenario's tallies.
func noteAnswer(a *Attempt) {
	a.Check = func(status int, _ http.Header, body []byte) (string, string) {
		a.Req.Note = strings.TrimSpace(fmt.Sprintf("%d %s", status, problemCode(body)))
		return "", ""
	}
}

// problemCode reads the stable code of a problem+json answer.
func problemCode(body []byte) string {
	var p struct {
		Code string `json:"code"`
	}
	_ = json.Unmarshal(body, &p)
	return p.Code
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return s
}

func summarize(xs []string) string {
	m := map[string]int{}
	for _, x := range xs {
		m[x]++
	}
	var out []string
	for k, v := range m {
		out = append(out, fmt.Sprintf("%dx %q", v, k))
	}
	sort.Strings(out)
	return strings.Join(out, ", ")
}

func readyStatus(ctx context.Context, e *Env) int {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.Client.Base+"/readyz", nil)
	resp, err := e.Client.HTTP("").Do(req)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}
