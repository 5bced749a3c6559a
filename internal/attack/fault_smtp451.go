package attack

import (
	"context"
	"time"
)

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
