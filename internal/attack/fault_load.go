package attack

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

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
					// Worker 0 is one abusive client, meant to be limited.
					a.Req.Class = class + "/hammer"
					a.XFF, a.Req.Client = []string{hammer}, hammer
				}
				noteAnswer(a)
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
