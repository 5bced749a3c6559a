package attack

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/formguard/formguard/internal/config"
	"github.com/formguard/formguard/mailer/outbox"
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

// RedisFailurePolicies: refuse (fail closed, the service's default),
// decide locally with stricter limits (limits.redis_fallback: true) with
// the outbox in Redis, or do that with the outbox on disk (mail.outbox:
// dir), which keeps accepting mail through the outage.
var RedisFailurePolicies = []string{"closed", "local", "local-dir"}

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
	b.WriteString("| check | result | detail |\n|---|---|---|\n")
	for _, c := range f.Checks {
		res := "pass"
		switch {
		case c.Skipped:
			res = "skipped"
		case !c.OK:
			res = "**FAIL**"
		}
		fmt.Fprintf(&b, "| %s | %s | %s |\n", c.Name, res, strings.ReplaceAll(c.Detail, "|", "\\|"))
	}
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

// load sends legitimate contact posts from fresh clients (and, when
// hammer is set, posts from one client over and over) until stopped or
// max requests, whichever first: it always ends by itself.
type load struct {
	e        *Env
	stop     chan struct{}
	wg       sync.WaitGroup
	sent     atomic.Int64
	accepted atomic.Int64
	done     atomic.Int64
	others   atomic.Int64 // done, but not by the hammering client
	hammered atomic.Int64 // done by the hammering client
	stopOnce sync.Once
}

func (e *Env) startLoad(ctx context.Context, class string, workers, max int, hammer string) *load {
	l := &load{e: e, stop: make(chan struct{})}
	var n atomic.Int64
	for w := 0; w < workers; w++ {
		l.wg.Add(1)
		go func(w int) {
			defer l.wg.Done()
			for {
				select {
				case <-l.stop:
					return
				case <-ctx.Done():
					return
				default:
				}
				i := n.Add(1)
				if i > int64(max) {
					return
				}
				a := e.LegitContact(class, Enc(i%3))
				// Refusals are expected under a fault; what counts is that
				// every accepted post is delivered (Policy.RequireAccepted).
				a.Req.Legit = false
				if hammer != "" && w == 0 {
					// Worker 0 is one abusive client; its posts are not
					// legitimate (they are meant to be limited).
					a.Req.Legit = false
					a.Req.Class = class + "/hammer"
					a.XFF, a.Req.Client = []string{hammer}, hammer
				}
				// The answer's problem code, for the scenario's tallies.
				a.Check = func(status int, _ http.Header, body []byte) (string, string) {
					a.Req.Note = strings.TrimSpace(fmt.Sprintf("%d %s", status, problemCode(body)))
					return "", ""
				}
				l.sent.Add(1)
				if _, _, err := e.Client.Send(ctx, a); err != nil {
					a.Req.Status = 0
				}
				if a.Req.Accepted() {
					l.accepted.Add(1)
				}
				l.done.Add(1)
				if a.Req.Client != hammer || hammer == "" {
					l.others.Add(1)
				} else {
					l.hammered.Add(1)
				}
				pause := time.Duration(0)
				switch {
				case a.Req.Status == 0 || a.Req.Status >= 500:
					// No service listening (it is being restarted), or a
					// dependency down: back off instead of burning the
					// request budget.
					pause = 50 * time.Millisecond
				case a.Req.Status == http.StatusTooManyRequests:
					// The hammering client keeps at it, but at a pace
					// that leaves the shared budget to the others (a 429
					// is answered in microseconds).
					pause = 20 * time.Millisecond
				}
				if pause > 0 {
					select {
					case <-l.stop:
					case <-time.After(pause):
					}
				}
			}
		}(w)
	}
	return l
}

func (l *load) Stop() {
	l.stopOnce.Do(func() { close(l.stop) })
	l.wg.Wait()
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

// runSMTP451: the relay answers 451 to everything until every queued
// message has been refused at least once, then recovers. Every accepted
// submission must then be delivered exactly once.
func runSMTP451(ctx context.Context, opt Options) (*FaultResult, error) {
	res := &FaultResult{Name: FaultSMTP451}
	e, err := Setup(ctx, opt)
	if err != nil {
		return nil, err
	}
	defer e.Close()
	e.Sink.SetTempFail(true)
	n := scale(opt, 12, 40)
	var b Batch
	for i := 0; i < n; i++ {
		b = append(b, e.LegitContact("smtp-451", Enc(i%3)))
		if i%4 == 0 {
			b = append(b, e.LegitShare("smtp-451", Enc(i%3), 2))
		}
	}
	if err := e.Send(ctx, []Batch{b}); err != nil {
		return nil, err
	}
	want := e.ExpectedMessages()
	accepted := 0
	for _, r := range e.Requests() {
		if r.Accepted() {
			accepted++
		}
	}
	res.check("posts accepted while the relay fails", accepted == len(b), "%d of %d answered 2xx (queued durably)", accepted, len(b))
	// Hold the failure until the relay has refused every message once.
	refusedAll := waitFor(ctx, 90*time.Second, func() bool { return e.Sink.Refused() >= int64(want) })
	res.check("relay refused with 451", refusedAll && e.Sink.Len() == 0, "%d transactions refused for %d messages, %d got through", e.Sink.Refused(), want, e.Sink.Len())
	e.Sink.SetTempFail(false)
	t0 := time.Now()
	// The outbox's retry backoff decides how long recovery takes.
	delivered := e.Sink.WaitQuiet(want, 2*time.Second, 5*time.Minute)
	res.fact("after recovery, %d messages arrived in %s (retry backoff)", e.Sink.Len(), time.Since(t0).Round(time.Second))
	res.check("every accepted submission delivered after recovery", delivered, "%d of %d messages", e.Sink.Len(), want)
	p := e.Policy()
	p.RequireAccepted = true
	res.Audit = e.Audit(p)
	res.check("none delivered twice", res.Audit.Count(RuleDuplicate) == 0, "%d duplicates", res.Audit.Count(RuleDuplicate))
	return res, nil
}

// runSIGKILL: the service is killed with SIGKILL under load and
// restarted on the same outbox, kills times.
func runSIGKILL(ctx context.Context, opt Options) (*FaultResult, error) {
	res := &FaultResult{Name: FaultSIGKILL}
	e, err := Setup(ctx, opt)
	if err != nil {
		return nil, err
	}
	defer e.Close()
	nkills := scale(opt, 2, 4)
	var kills []time.Time
	step := int64(scale(opt, 15, 40))
	l := e.startLoad(ctx, "sigkill", 6, int(step)*(nkills+2)*20, "")
	unanswered := 0
	for k := 0; k < nkills; k++ {
		target := l.accepted.Load() + step
		if !waitFor(ctx, 60*time.Second, func() bool { return l.accepted.Load() >= target }) {
			l.Stop()
			return nil, fmt.Errorf("sigkill: load stalled at %d accepted", l.accepted.Load())
		}
		before, acc := l.done.Load(), l.accepted.Load()
		e.Svc.Kill()
		// When the process is gone: a copy accepted by the relay before
		// this instant and again after it raced the kill.
		kills = append(kills, time.Now())
		e.Client.CloseIdle()
		res.fact("kill %d at %s: SIGKILL after %d requests, %d accepted", k+1, kills[k].Format("15:04:05.000"), before, acc)
		if err := e.Svc.Start(ctx); err != nil {
			l.Stop()
			return nil, fmt.Errorf("sigkill: restart: %w", err)
		}
	}
	target := l.accepted.Load() + step
	waitFor(ctx, 60*time.Second, func() bool { return l.accepted.Load() >= target })
	l.Stop()
	for _, r := range e.Requests() {
		if r.Status == 0 {
			unanswered++
		}
	}
	settled := e.Settle(2*time.Second, 3*time.Minute)
	res.fact("%d requests, %d accepted, %d cut off without an answer by the kills", l.sent.Load(), l.accepted.Load(), unanswered)
	res.check("every 2xx delivered", settled, "%d messages for %d accepted posts", e.Sink.Len(), e.ExpectedMessages())
	p := e.Policy()
	p.RequireAccepted = true
	p.Kills = kills
	res.Audit = e.Audit(p)
	res.check("none queued or delivered twice", res.Audit.Count(RuleDuplicate) == 0, "%d duplicates", res.Audit.Count(RuleDuplicate))
	// Each kill can cut at most the deliveries in progress (one per
	// worker) between the relay's 250 and the outbox recording it, plus
	// the delivery records the spool had not yet written (Ack leaves at
	// most DefaultMaxPendingAcks to a later group commit round).
	perKill := outboxConcurrency + outbox.DefaultMaxPendingAcks
	bound := len(kills) * perKill
	if opt.StrictOnce {
		bound = 0
	}
	res.check("redeliveries only from the kill window", res.Audit.Redelivered <= bound,
		"%d same-Message-ID copies re-sent after a kill (bound: %d kills x (%d workers + %d delivery records not yet on disk))",
		res.Audit.Redelivered, len(kills), outboxConcurrency, outbox.DefaultMaxPendingAcks)
	return res, nil
}

// outboxConcurrency is how many deliveries the service has in flight: its
// mail.workers default (the fault scenarios leave it unset; the service
// runs on this machine, with as many CPUs).
var outboxConcurrency = config.DefaultWorkers()

// problemCode reads the stable code of a problem+json answer.
func problemCode(body []byte) string {
	var p struct {
		Code string `json:"code"`
	}
	_ = json.Unmarshal(body, &p)
	return p.Code
}

// runOutboxUnwritable: the outbox directory is replaced by a regular file
// while the service runs (as root, permissions would not stop writes), and
// the service is also started on an outbox path below a regular file.
func runOutboxUnwritable(ctx context.Context, opt Options) (*FaultResult, error) {
	res := &FaultResult{Name: FaultOutboxUnwritable}
	e, err := Setup(ctx, opt)
	if err != nil {
		return nil, err
	}
	defer e.Close()
	if e.Cfg.RedisURL != "" {
		return nil, fmt.Errorf("%s needs the directory outbox; run it without -redis", FaultOutboxUnwritable)
	}
	outbox := filepath.Join(e.Cfg.Dir, "outbox")
	// 1. Working, then broken.
	var warm Batch
	for i := 0; i < 3; i++ {
		warm = append(warm, e.LegitContact("outbox-unwritable/before", Enc(i%3)))
	}
	if err := e.Send(ctx, []Batch{warm}); err != nil {
		return nil, err
	}
	if err := os.Rename(outbox, outbox+".moved"); err != nil {
		return nil, fmt.Errorf("outbox-unwritable: %w", err)
	}
	if err := os.WriteFile(outbox, []byte("not a directory\n"), 0o600); err != nil {
		return nil, err
	}
	n := scale(opt, 10, 30)
	var broken Batch
	codes := make([]string, n)
	for i := 0; i < n; i++ {
		i := i
		a := e.LegitContact("outbox-unwritable", Enc(i%3))
		a.Req.Legit = false // cannot be delivered; must be refused instead
		a.Check = func(status int, _ http.Header, body []byte) (string, string) {
			codes[i] = fmt.Sprintf("%d %s", status, problemCode(body))
			return "", ""
		}
		broken = append(broken, a)
	}
	if err := e.Send(ctx, []Batch{broken}); err != nil {
		return nil, err
	}
	got503 := 0
	accepted := 0
	for i, a := range broken {
		if a.Req.Accepted() {
			accepted++
		}
		if codes[i] == "503 outbox_unavailable" {
			got503++
		}
	}
	res.check("nothing accepted while the outbox is unwritable", accepted == 0, "%d of %d posts answered 2xx", accepted, n)
	res.check("answered 503 outbox_unavailable", got503 == n, "%d of %d (answers: %s)", got503, n, summarize(codes))
	ready := readyStatus(ctx, e)
	res.check("/readyz reports it", ready == http.StatusServiceUnavailable, "GET /readyz answered %d", ready)
	// 2. Repaired: accepted and delivered again.
	_ = os.Remove(outbox)
	if err := os.Rename(outbox+".moved", outbox); err != nil {
		return nil, err
	}
	var after Batch
	for i := 0; i < 3; i++ {
		after = append(after, e.LegitContact("outbox-unwritable/after", Enc(i%3)))
	}
	if err := e.Send(ctx, []Batch{after}); err != nil {
		return nil, err
	}
	okAfter := 0
	for _, a := range after {
		if a.Req.Accepted() {
			okAfter++
		}
	}
	res.check("accepts again once repaired", okAfter == len(after), "%d of %d", okAfter, len(after))
	e.Settle(1500*time.Millisecond, 60*time.Second)
	p := e.Policy()
	p.RequireAccepted = true
	res.Audit = e.Audit(p)

	// 3. Started on an outbox that cannot be created.
	e.Svc.Stop()
	blocker := filepath.Join(e.Dir, "blocker")
	if err := os.WriteFile(blocker, []byte("a file where a directory should be\n"), 0o600); err != nil {
		return nil, err
	}
	cfg2 := *e.Cfg
	cfg2.Dir = filepath.Join(e.Dir, "svc2")
	cfg2.OutboxDir = filepath.Join(blocker, "outbox")
	if err := os.MkdirAll(cfg2.Dir, 0o700); err != nil {
		return nil, err
	}
	if err := os.Link(e.Cfg.KeyFile(), cfg2.KeyFile()); err != nil {
		data, _ := os.ReadFile(e.Cfg.KeyFile())
		_ = os.WriteFile(cfg2.KeyFile(), data, 0o600)
	}
	svc2, err := NewService(e.Opt.Bin, &cfg2)
	if err != nil {
		return nil, err
	}
	defer svc2.Close()
	startErr := svc2.Start(ctx)
	if startErr != nil {
		clear := strings.Contains(strings.ToLower(svc2.TailLog(20)), "outbox")
		res.check("startup on an uncreatable outbox refused clearly", clear, "service exited; log names the outbox: %v", clear)
		res.fact("startup log: %s", lastLine(svc2.TailLog(5)))
		return res, nil
	}
	c2 := NewClient(svc2.Addr)
	codes2 := map[string]int{}
	acc2 := 0
	for i := 0; i < 3; i++ {
		r := e.NewRequest("outbox-unwritable/startup", ContactForm)
		r.Sender = visitor(r)
		a := e.Post(r, EncJSON, contactBase(r)...)
		var code string
		a.Check = func(status int, _ http.Header, body []byte) (string, string) {
			code = fmt.Sprintf("%d %s", status, problemCode(body))
			return "", ""
		}
		if _, _, err := c2.Send(ctx, a); err != nil {
			return nil, err
		}
		codes2[code]++
		if r.Accepted() {
			acc2++
		}
	}
	res.check("started on an uncreatable outbox: nothing accepted", acc2 == 0, "answers %v", codes2)
	res.check("started on an uncreatable outbox: 503 outbox_unavailable", codes2["503 outbox_unavailable"] == 3, "answers %v", codes2)
	return res, nil
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

// runRedisKilled: Redis is killed (SIGKILL) under load and restarted on
// its append-only file. While it is down nothing may be admitted beyond
// what the failure policy allows: nothing when failing closed; with the
// local fallback, no more than the stricter local limit for the hammering
// client. Every accepted post must still be delivered.
func runRedisKilled(ctx context.Context, opt Options, policy string) (*FaultResult, error) {
	res := &FaultResult{Name: FaultRedisKilled + "/" + policy}
	opt.Redis = true
	// Every acknowledged write on disk, so what Redis lost to the kill is
	// not mistaken for what formguard lost.
	opt.RedisFsync = "always"
	inner := opt.Config
	opt.Config = func(c *ServiceConfig) {
		if inner != nil {
			inner(c)
		}
		if policy != RedisFailurePolicies[0] {
			// The default must be to fail closed (DESIGN.md), so the
			// first policy runs on the default config.
			c.RedisFallback = true
		}
		c.DirOutbox = policy == "local-dir"
	}
	e, err := Setup(ctx, opt)
	if err != nil {
		return nil, fmt.Errorf("redis-killed (%s policy): %w", policy, err)
	}
	defer e.Close()
	hammer := e.FreshIPv4()
	step := int64(scale(opt, 10, 30))
	l := e.startLoad(ctx, "redis-killed/"+policy, 4, int(step)*100, hammer)
	if !waitFor(ctx, 60*time.Second, func() bool { return l.accepted.Load() >= step }) {
		l.Stop()
		return nil, fmt.Errorf("redis-killed: load stalled at %d accepted", l.accepted.Load())
	}
	signalled := time.Now()
	e.Redis.Kill()
	killed := time.Now() // the server is gone (Kill waits)
	before := l.others.Load()
	hammerBefore := l.hammered.Load()
	// Let a fixed number of requests meet the outage (the hammering
	// client's quick refusals not counted), and the hammering client a
	// few of its own (one may have been sent before the kill, one let through
	// by the local store): with a directory outbox the others' posts are
	// answered in milliseconds, and the outage could otherwise end while
	// the hammering client sits in its pause between two refusals.
	waitFor(ctx, 60*time.Second, func() bool {
		return l.others.Load() >= before+step*2 && l.hammered.Load() >= hammerBefore+4
	})
	restartAt := time.Now()
	if err := e.Redis.Restart(); err != nil {
		l.Stop()
		return nil, err
	}
	target := l.accepted.Load() + step
	recovered := waitFor(ctx, 60*time.Second, func() bool { return l.accepted.Load() >= target })
	l.Stop()
	// Messages a worker had claimed when Redis died wait in the stream's
	// pending list until claim-idle (outbox.DefaultClaimIdle) passes; the
	// full run waits that long, the short one checks they are durable.
	settleFor := 30 * time.Second
	if !opt.Short {
		settleFor = outbox.DefaultClaimIdle + 90*time.Second
	}
	allDelivered := e.Settle(2*time.Second, settleFor)
	missing := e.Missing()
	pending, perr := streamHolds(ctx, e.Redis.Addr, missing)

	var during, duringAcc, hammerAcc, hammerDuring, hammer429 int
	var answers, limiterDown []string
	for _, r := range e.Requests() {
		in := r.Sent.After(killed) && r.Done.Before(restartAt)
		if in {
			during++
			if r.Accepted() {
				duringAcc++
			}
			answers = append(answers, r.Note)
			if strings.HasSuffix(r.Note, "limiter_unavailable") {
				limiterDown = append(limiterDown, r.Note)
			}
			if r.Client == hammer && r.Status == http.StatusTooManyRequests {
				hammer429++
			}
		}
		if r.Client == hammer && r.Accepted() {
			hammerAcc++
			if in {
				hammerDuring++
			}
		}
	}
	caps := e.Cfg.Caps()[ContactForm]
	res.fact("%s: %d requests during the outage, %d accepted; the hammering client got %d through in all (%d during)", policy, during, duringAcc, hammerAcc, hammerDuring)
	res.fact("%s: answers during the outage: %s", policy, summarize(answers))
	res.check(policy+": requests met the outage", during > 0, "%d requests between kill and restart", during)
	switch policy {
	case "closed":
		res.check(policy+": nothing admitted while Redis is down", duringAcc == 0, "%d accepted during the outage", duringAcc)
	default:
		local := max(1, caps.PerIP/4)
		// With redis_url the outbox is the Redis stream too, so no post
		// can be queued (accepted) while Redis is down whatever the
		// limiter decides; the fallback shows in how posts are refused.
		res.check(policy+": the limiter fell back instead of refusing", len(limiterDown) == 0, "%d answered limiter_unavailable during the outage", len(limiterDown))
		res.check(policy+": hammering client refused by the local store", hammer429 > 0, "%d answered 429 during the outage", hammer429)
		res.check(policy+": hammering client held to the local limit", hammerDuring <= local, "%d accepted during the outage, local limit %d", hammerDuring, local)
		if policy == "local-dir" {
			// The outbox is on disk: the fallback keeps accepting mail.
			res.check(policy+": posts accepted while Redis is down", duringAcc > 0, "%d accepted during the outage", duringAcc)
		} else {
			res.check(policy+": nothing queued while the Redis outbox is down", duringAcc == 0, "%d accepted during the outage", duringAcc)
		}
	}
	res.check(policy+": hammering client within per_ip over the run", hammerAcc <= caps.PerIP+max(1, caps.PerIP/4), "%d accepted, per_ip %d", hammerAcc, caps.PerIP)
	res.check(policy+": service recovers after Redis restarts", recovered, "%d accepted after restart", l.accepted.Load())
	detail := fmt.Sprintf("all %d delivered within %s", e.ExpectedMessages(), settleFor)
	if !allDelivered {
		detail = fmt.Sprintf("%d not delivered within %s, %d of them held in the Redis stream (pending until claim-idle %s)%s",
			len(missing), settleFor, pending, outbox.DefaultClaimIdle, errText(perr))
	}
	res.check(policy+": every accepted post delivered or durably queued", allDelivered || (perr == nil && pending == len(missing)), "%s", detail)
	p := e.Policy()
	// Redis died between the signal and Kill's return: a request whose
	// exchange spans either instant may have met the death mid-write.
	p.Kills = []time.Time{signalled, killed}
	if !allDelivered {
		p.RequireAccepted = false // judged above, against the stream
	} else {
		p.RequireAccepted = true
	}
	if policy != "closed" {
		c := p.Caps[ContactForm]
		c.PerIP += max(1, caps.PerIP/4) // what the local fallback may add
		p.Caps[ContactForm] = c
	}
	res.Audit = e.Audit(p)
	if n := len(res.Audit.Ambiguous); n > 0 {
		res.fact("%s: %d posts answered 503 while Redis died were queued anyway and delivered (the write landed, its reply was lost): requests %v", policy, n, res.Audit.Ambiguous)
	}
	return res, nil
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return "; " + err.Error()
}

// streamHolds counts how many of the submission IDs appear in an entry of
// the service's outbox stream (read straight from Redis).
func streamHolds(ctx context.Context, addr string, subIDs []string) (int, error) {
	if len(subIDs) == 0 {
		return 0, nil
	}
	c := redis.NewClient(&redis.Options{Addr: addr})
	defer c.Close()
	entries, err := c.XRange(ctx, outbox.DefaultRedisStream, "-", "+").Result()
	if err != nil {
		return 0, fmt.Errorf("reading the outbox stream: %w", err)
	}
	n := 0
	for _, id := range subIDs {
		for _, en := range entries {
			if strings.Contains(fmt.Sprint(en.Values), id) {
				n++
				break
			}
		}
	}
	return n, nil
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
