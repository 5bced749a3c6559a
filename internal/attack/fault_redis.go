package attack

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/formguard/formguard/mailer/outbox"
	"github.com/redis/go-redis/v9"
)

// RedisFailurePolicies: refuse (fail closed, the service's default),
// decide locally with stricter limits (limits.redis_fallback: true) with
// the outbox in Redis, or do that with the outbox on disk (mail.outbox:
// dir), which keeps accepting mail through the outage.
var RedisFailurePolicies = []string{"closed", "local", "local-dir"}

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
			// Failing closed is the service's default, so the first
			// policy runs on the default config.
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
	o, err := e.redisOutage(ctx, hammer, int64(scale(opt, 10, 30)), policy)
	if err != nil {
		return nil, err
	}
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
	caps := e.Cfg.Caps()[ContactForm]
	outageChecks(res, policy, e.tallyOutage(o, hammer), caps.PerIP)
	res.check(policy+": service recovers after Redis restarts", o.recovered, "%d accepted after restart", o.accepted)
	detail := fmt.Sprintf("all %d delivered within %s", e.ExpectedMessages(), settleFor)
	if !allDelivered {
		detail = fmt.Sprintf("%d not delivered within %s, %d of them held in the Redis stream (pending until claim-idle %s)%s",
			len(missing), settleFor, pending, outbox.DefaultClaimIdle, errText(perr))
	}
	res.check(policy+": every accepted post delivered or durably queued", allDelivered || (perr == nil && pending == len(missing)), "%s", detail)
	p := e.Policy()
	// Redis died between the signal and Kill's return: a request whose
	// exchange spans either instant may have met the death mid-write.
	p.Kills = []time.Time{o.signalled, o.killed}
	// Without full delivery, what is missing was judged above, against
	// the stream.
	p.RequireAccepted = allDelivered
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

// outage is when Redis was down during a redis-killed run.
type outage struct {
	signalled, killed, restarted time.Time
	recovered                    bool  // step more posts accepted after the restart
	accepted                     int64 // accepted posts in all
}

// redisOutage runs legitimate load (with hammer as one abusive client),
// kills Redis once step posts are accepted, restarts it once the outage
// has met enough requests, and stops the load once step more are
// accepted.
func (e *Env) redisOutage(ctx context.Context, hammer string, step int64, policy string) (*outage, error) {
	l := e.startLoad(ctx, "redis-killed/"+policy, 4, int(step)*100, hammer)
	defer l.Stop()
	if !waitFor(ctx, 60*time.Second, func() bool { return l.accepted.Load() >= step }) {
		return nil, fmt.Errorf("redis-killed: load stalled at %d accepted", l.accepted.Load())
	}
	o := &outage{signalled: time.Now()}
	e.Redis.Kill()
	o.killed = time.Now() // the server is gone (Kill waits)
	before := l.others.Load()
	hammerBefore := l.hammered.Load()
	// Let a fixed number of requests meet the outage (the hammering
	// client's quick refusals not counted), and the hammering client a
	// few of its own (one may have been sent before the kill, one let
	// through by the local store): with a directory outbox the others'
	// posts are answered in milliseconds, and the outage could otherwise
	// end while the hammering client sits in its pause between two
	// refusals.
	waitFor(ctx, 60*time.Second, func() bool {
		return l.others.Load() >= before+step*2 && l.hammered.Load() >= hammerBefore+4
	})
	o.restarted = time.Now()
	if err := e.Redis.Restart(); err != nil {
		return nil, err
	}
	target := l.accepted.Load() + step
	o.recovered = waitFor(ctx, 60*time.Second, func() bool { return l.accepted.Load() >= target })
	l.Stop()
	o.accepted = l.accepted.Load()
	return o, nil
}

// outageTally counts what the requests met during an outage.
type outageTally struct {
	during, duringAcc       int // requests sent and answered within the outage
	hammerAcc, hammerDuring int // the hammering client's accepted posts: in all, within
	hammer429               int // the hammering client's 429s within
	answers, limiterDown    []string
}

func (e *Env) tallyOutage(o *outage, hammer string) outageTally {
	var t outageTally
	for _, r := range e.Requests() {
		in := r.Sent.After(o.killed) && r.Done.Before(o.restarted)
		if in {
			t.during++
			if r.Accepted() {
				t.duringAcc++
			}
			t.answers = append(t.answers, r.Note)
			if strings.HasSuffix(r.Note, "limiter_unavailable") {
				t.limiterDown = append(t.limiterDown, r.Note)
			}
			if r.Client == hammer && r.Status == http.StatusTooManyRequests {
				t.hammer429++
			}
		}
		if r.Client == hammer && r.Accepted() {
			t.hammerAcc++
			if in {
				t.hammerDuring++
			}
		}
	}
	return t
}

// outageChecks judges the tally against what policy allows, perIP being
// the contact form's per_ip cap.
func outageChecks(res *FaultResult, policy string, t outageTally, perIP int) {
	res.fact("%s: %d requests during the outage, %d accepted; the hammering client got %d through in all (%d during)", policy, t.during, t.duringAcc, t.hammerAcc, t.hammerDuring)
	res.fact("%s: answers during the outage: %s", policy, summarize(t.answers))
	res.check(policy+": requests met the outage", t.during > 0, "%d requests between kill and restart", t.during)
	local := max(1, perIP/4)
	switch policy {
	case "closed":
		res.check(policy+": nothing admitted while Redis is down", t.duringAcc == 0, "%d accepted during the outage", t.duringAcc)
	default:
		// With redis_url the outbox is the Redis stream too, so no post
		// can be queued (accepted) while Redis is down whatever the
		// limiter decides; the fallback shows in how posts are refused.
		res.check(policy+": the limiter fell back instead of refusing", len(t.limiterDown) == 0, "%d answered limiter_unavailable during the outage", len(t.limiterDown))
		res.check(policy+": hammering client refused by the local store", t.hammer429 > 0, "%d answered 429 during the outage", t.hammer429)
		res.check(policy+": hammering client held to the local limit", t.hammerDuring <= local, "%d accepted during the outage, local limit %d", t.hammerDuring, local)
		if policy == "local-dir" {
			// The outbox is on disk: the fallback keeps accepting mail.
			res.check(policy+": posts accepted while Redis is down", t.duringAcc > 0, "%d accepted during the outage", t.duringAcc)
		} else {
			res.check(policy+": nothing queued while the Redis outbox is down", t.duringAcc == 0, "%d accepted during the outage", t.duringAcc)
		}
	}
	res.check(policy+": hammering client within per_ip over the run", t.hammerAcc <= perIP+local, "%d accepted, per_ip %d", t.hammerAcc, perIP)
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
