package attack

import (
	"context"
	"fmt"
	"time"

	"github.com/formguard/formguard/internal/config"
	"github.com/formguard/formguard/mailer/outbox"
)

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
