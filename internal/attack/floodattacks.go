package attack

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/formguard/formguard/guard/captcha"
)

// attackStats tallies a flood's requests and answers.
type attackStats struct {
	target                            int64 // requests the attack means to send (0: until its deadline)
	sent, answered, accepted, clients atomic.Int64

	mu    sync.Mutex
	codes map[string]int64
}

func newAttackStats(target, clients int64) *attackStats {
	a := &attackStats{target: target, codes: map[string]int64{}}
	a.clients.Store(clients)
	return a
}

// tally counts one answer; accepted is whether it was a real accept (a
// honeypot's decoy 200 is not).
func (a *attackStats) tally(status int, code string, accepted bool) {
	a.sent.Add(1)
	if status != 0 {
		a.answered.Add(1)
	}
	if accepted {
		a.accepted.Add(1)
	}
	key := strings.TrimSpace(strconv.Itoa(status) + " " + code)
	a.mu.Lock()
	a.codes[key]++
	a.mu.Unlock()
}

func (a *attackStats) summary() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []string
	for k, v := range a.codes {
		out = append(out, fmt.Sprintf("%dx %q", v, k))
	}
	sort.Strings(out)
	return strings.Join(out, ", ")
}

// looseRequest is NewRequest for a flood's posts: the request has an ID
// and a marker but is recorded only by keep, so that a flood of refusals
// costs the harness no memory.
func (e *Env) looseRequest(class, form string) *Request {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.next++
	return &Request{ID: e.next, Class: class, Form: form, Marker: Marker(e.next)}
}

// keep records a loose request whose answer may have queued mail (an
// accept, or no clear refusal), so that the audit can attribute it.
func (e *Env) keep(r *Request) {
	if !r.Accepted() && r.Status != 0 && r.Status < 500 {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.reqs = append(e.reqs, r)
}

// newFloodClient is a Client whose connections (from 127.0.0.1, the
// trusted proxy) are kept alive, up to conns of them, so that a flood of
// hundreds of thousands of requests does not run out of ports.
func newFloodClient(addr string, conns int) *Client {
	c := NewClient(addr)
	tr := &http.Transport{MaxIdleConns: conns, MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns, IdleConnTimeout: 30 * time.Second}
	c.clients["127.0.0.1"] = &http.Client{Transport: tr, Timeout: 20 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return c
}

// quickPost posts body to path for the client address xff (forwarded by
// the trusted proxy) with the given Origin ("" the service's own), and
// returns the status, the problem code of a refusal and the submission ID
// of an accept.
func (c *Client) quickPost(ctx context.Context, path, ct string, body []byte, xff, origin string) (status int, code, id string) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.Base+path, bytes.NewReader(body))
	if err != nil {
		return 0, "bad request: " + err.Error(), ""
	}
	if origin == "" {
		origin = c.Origin
	}
	req.Header.Set("Origin", origin)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Content-Type", ct)
	req.Header.Set("X-Forwarded-For", xff)
	resp, err := c.HTTP("").Do(req)
	if err != nil {
		return 0, "no answer", ""
	}
	rb, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return resp.StatusCode, problemCode(rb), ""
	}
	var ok struct {
		ID string `json:"id"`
	}
	_ = json.Unmarshal(rb, &ok)
	return resp.StatusCode, "", ok.ID
}

// hammer runs conns workers calling do until it returns false, the
// deadline passes (zero: none) or ctx ends.
func hammer(ctx context.Context, conns int, deadline time.Time, do func(ctx context.Context) bool) {
	var wg sync.WaitGroup
	for w := 0; w < conns; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil && (deadline.IsZero() || time.Now().Before(deadline)) {
				if !do(ctx) {
					return
				}
			}
		}()
	}
	wg.Wait()
}

// floodIPv4 is the n-th client address of a many-client flood, in
// 10.0.0.0/8 (the legitimate visitors are in 198.18.0.0/15);
// consecutive addresses lie in different /24s.
func floodIPv4(n int64) string {
	net24, host := n%65536, 1+(n/65536)%254
	return fmt.Sprintf("10.%d.%d.%d", net24>>8, net24&255, host)
}

// withConfig adds f to opt's config adjustments.
func withConfig(opt Options, f func(*ServiceConfig)) Options {
	inner := opt.Config
	opt.Config = func(c *ServiceConfig) {
		if inner != nil {
			inner(c)
		}
		f(c)
	}
	return opt
}

// Legitimate visitors: every post from a fresh address and sender.
func legitContact(e *Env, i int) *Attempt  { return e.LegitContact("", Enc(i%3)) }
func legitFeedback(e *Env, i int) *Attempt { return e.LegitFeedback("", Enc(i%3)) }
func legitCallback(e *Env, i int) *Attempt {
	return e.tokenPost(CallbackForm, Enc(i%3), true, "real token after min_fill", fetched(CallbackForm, true, nil, nil))
}

func legitSignup(sv *Siteverify) legitGen {
	return func(e *Env, i int) *Attempt {
		r := e.NewRequest("", SignupForm)
		r.Legit = true
		r.Sender = visitor(r)
		return e.Post(r, Enc(i%3), KV{"name", "Grace"}, KV{"email", r.Sender},
			KV{"message", "Please sign me up. " + r.Marker}, KV{captcha.TurnstileField, sv.Issue()})
	}
}

// runReplayFill: one client fetches and posts valid
// form tokens and proof-of-work solutions as fast as it can, far more
// than the single-use store holds. Past its per_ip budget it must be
// refused before it spends the store.
func runReplayFill(ctx context.Context, opt Options) (*FaultResult, error) {
	const perIP = 20
	opt = withConfig(opt, func(c *ServiceConfig) {
		c.ReplayEntries = scale(opt, 1000, 20000)
		c.TokenFormPerIP = fmt.Sprintf("%d/h", perIP)
		// A solution is remembered until its challenge expires: with the
		// harness's 1m, the store would shed the filler's solutions within
		// two minutes (a site would use Expires of minutes to hours).
		c.PoWExpires = "1h"
	})
	e, err := Setup(ctx, opt)
	if err != nil {
		return nil, err
	}
	defer e.Close()
	f := newFlood(e, FaultReplayFill, false, legitCallback, legitFeedback, legitContact)
	st := newAttackStats(int64(scale(opt, 3000, 120_000)), 1)
	if err := f.begin(ctx, st); err != nil {
		return nil, err
	}
	e.replayFill(ctx, st)
	f.attackEnded()
	res, err := f.finish(ctx, st)
	if err != nil {
		return nil, err
	}
	res.check("the filling client held to per_ip", st.accepted.Load() <= 2*perIP,
		"%d of its posts accepted (per_ip %d on each of its two forms)", st.accepted.Load(), perIP)
	return res, nil
}

// replayFill posts st.target valid single-use proofs from one address:
// seven in eight are form tokens (fetched ahead, posted once min_fill has
// passed), the rest proof-of-work solutions.
func (e *Env) replayFill(ctx context.Context, st *attackStats) {
	ip := e.FreshIPv4()
	c := newFloodClient(e.Svc.Addr, 64)
	defer c.CloseIdle()
	pow := st.target / 8
	// Room for every token: fetching runs ahead of posting by min_fill.
	tokens := make(chan string, st.target-pow)
	var fetchN, powN atomic.Int64
	var fetchers, posters sync.WaitGroup
	for w := 0; w < 16; w++ {
		fetchers.Add(1)
		go func() {
			defer fetchers.Done()
			for fetchN.Add(1) <= st.target-pow && ctx.Err() == nil {
				tok, err := c.FormToken(ctx, CallbackForm, "", []string{ip})
				if err != nil {
					st.tally(0, "token fetch failed", false)
					continue
				}
				tokens <- tok
			}
		}()
	}
	go func() { fetchers.Wait(); close(tokens) }()
	post := func(form, field, value string) {
		r := e.looseRequest(FaultReplayFill+"/filler", form)
		r.Client, r.Sender = ip, "filler@attacker.test"
		body := JSONObject(KV{"name", "Filler"}, KV{"email", r.Sender}, KV{"message", "Call me back. " + r.Marker}, KV{field, value})
		r.Sent = time.Now()
		status, code, id := c.quickPost(ctx, "/f/"+form, CTJSON, body, ip, "")
		r.Done, r.Status, r.SubID = time.Now(), status, id
		e.keep(r)
		st.tally(status, code, r.Accepted())
	}
	for w := 0; w < 32; w++ {
		posters.Add(1)
		go func() {
			defer posters.Done()
			for tok := range tokens {
				if issued, err := tokenIssued(tok); err == nil && waitFill(ctx, issued) != nil {
					return
				}
				post(CallbackForm, captcha.FormTokenField, tok)
			}
		}()
	}
	for w := 0; w < 8; w++ {
		posters.Add(1)
		go func() {
			defer posters.Done()
			for powN.Add(1) <= pow && ctx.Err() == nil {
				sol, err := c.SolvePoW(ctx, FeedbackForm, "", []string{ip})
				if err != nil {
					st.tally(0, "challenge failed", false)
					continue
				}
				post(FeedbackForm, captcha.PoWField, sol)
			}
		}()
	}
	posters.Wait()
}

// runCaptchaBudget: one client posts junk Turnstile tokens on 64
// connections. It is banned after a few failures; from then on its tokens
// must not reach the provider, nor spend the service-wide verify budget
// that visitors from other addresses need.
func runCaptchaBudget(ctx context.Context, opt Options) (*FaultResult, error) {
	sv, err := StartSiteverify()
	if err != nil {
		return nil, err
	}
	defer sv.Close()
	opt = withConfig(opt, func(c *ServiceConfig) {
		c.TurnstileVerifyURL = sv.URL
		// Room for the visitors (10/s) and a share for a client or two.
		c.CaptchaVerify = "40/s"
	})
	e, err := Setup(ctx, opt)
	if err != nil {
		return nil, err
	}
	defer e.Close()
	sv.SetSecret(e.Svc.Secret)
	const conns = 64
	f := newFlood(e, FaultCaptchaBudget, false, legitSignup(sv))
	f.rate = 10
	st := newAttackStats(0, 1)
	if err := f.begin(ctx, st); err != nil {
		return nil, err
	}
	ip := e.FreshIPv4()
	c := newFloodClient(e.Svc.Addr, conns)
	hammer(ctx, conns, time.Now().Add(time.Duration(scale(opt, 8, 30))*time.Second), func(ctx context.Context) bool {
		var b [16]byte
		_, _ = rand.Read(b[:])
		body := URLEncoded(KV{"name", "Junk"}, KV{"email", "junk@attacker.test"}, KV{"message", "Buy now"},
			KV{captcha.TurnstileField, "0.junk." + hex.EncodeToString(b[:])})
		status, code, _ := c.quickPost(ctx, "/f/"+SignupForm, CTForm, body, ip, "")
		st.tally(status, code, status/100 == 2)
		return true
	})
	c.CloseIdle()
	f.attackEnded()
	secs := f.end.Sub(f.start).Seconds()
	res, err := f.finish(ctx, st)
	if err != nil {
		return nil, err
	}
	s := sv.Stats()
	bound := 2*conns + int(2*secs)
	res.check("junk tokens kept off the provider", s.Junk <= bound,
		"%d of %d junk tokens reached siteverify; bound %d (twice the connections, plus 2 a second)", s.Junk, st.sent.Load(), bound)
	res.check("siteverify calls follow Cloudflare's protocol", s.ProtocolErrors == 0, "%d strayed (first: %s)", s.ProtocolErrors, orNone(s.FirstError))
	res.fact("siteverify answered %d calls: %d good tokens, %d junk, %d duplicates", s.Calls, s.Good, s.Junk, s.Duplicate)
	return res, nil
}

// runHoneypotFlood: honeypot posts, each from an address of its own and
// answered with the decoy. limiter-full: 1.1M of them fill the
// in-memory store's capacity (whatever the rate: the short flood is paced
// so that visitors meet the full store during it). offence-flood (with
// Redis): offences for as long as a botnet keeps up, on as many
// connections, come faster than they can be recorded one at a time.
func runHoneypotFlood(ctx context.Context, opt Options, name string) (*FaultResult, error) {
	n, perSecond, conns := int64(scale(opt, 10_000, 1_100_000)), float64(scale(opt, 2000, 0)), 128
	var dur time.Duration
	if name == FaultOffenceFlood {
		opt.Redis = true
		n, perSecond, conns, dur = 0, 0, 512, time.Duration(scale(opt, 6, 15))*time.Second
	} else {
		opt = withConfig(opt, func(c *ServiceConfig) { c.MemoryKeys = scale(opt, 4096, 1<<17) })
	}
	e, err := Setup(ctx, opt)
	if err != nil {
		return nil, err
	}
	defer e.Close()
	f := newFlood(e, name, true, legitContact)
	if name == FaultOffenceFlood {
		f.rssBound = RSSGrowthFull // its 512 connections whatever the size
	}
	st := newAttackStats(n, n)
	if err := f.begin(ctx, st); err != nil {
		return nil, err
	}
	var until time.Time
	if dur > 0 {
		until = time.Now().Add(dur)
	}
	body := JSONObject(KV{"name", "Bot"}, KV{"email", "bot@spam.test"}, KV{"message", "Cheap pills"}, KV{"_gotcha", "http://spam.test"})
	e.pipelinePosts(ctx, st, conns, 16, n, perSecond, until, "/f/"+ContactForm, body, floodIPv4)
	st.clients.Store(st.sent.Load()) // one address a request
	f.attackEnded()
	return f.finish(ctx, st)
}

// runLogFlood: one client produces refusals as fast as it can:
// posts over its per_ip budget, malformed bodies and foreign origins.
func runLogFlood(ctx context.Context, opt Options) (*FaultResult, error) {
	e, err := Setup(ctx, opt)
	if err != nil {
		return nil, err
	}
	defer e.Close()
	const conns = 32
	f := newFlood(e, FaultLogFlood, false, legitContact)
	st := newAttackStats(0, 1)
	if err := f.begin(ctx, st); err != nil {
		return nil, err
	}
	ip, sender := e.FreshIPv4(), "noisy@attacker.test"
	c := newFloodClient(e.Svc.Addr, conns)
	var i atomic.Int64
	hammer(ctx, conns, time.Now().Add(time.Duration(scale(opt, 5, 25))*time.Second), func(ctx context.Context) bool {
		switch i.Add(1) % 3 {
		case 0: // well formed: accepted up to per_ip, then 429
			r := e.looseRequest(FaultLogFlood+"/noisy", ContactForm)
			r.Client, r.Sender = ip, sender
			body := JSONObject(KV{"name", "Noisy"}, KV{"email", sender}, KV{"message", "Again. " + r.Marker})
			r.Sent = time.Now()
			status, code, id := c.quickPost(ctx, "/f/"+ContactForm, CTJSON, body, ip, "")
			r.Done, r.Status, r.SubID = time.Now(), status, id
			e.keep(r)
			st.tally(status, code, r.Accepted())
		case 1: // malformed
			status, code, _ := c.quickPost(ctx, "/f/"+ContactForm, CTJSON, []byte(`{"name":"Noisy","message":`), ip, "")
			st.tally(status, code, status/100 == 2)
		default: // a foreign origin
			body := JSONObject(KV{"name", "Noisy"}, KV{"email", sender}, KV{"message", "From elsewhere"})
			status, code, _ := c.quickPost(ctx, "/f/"+ContactForm, CTJSON, body, ip, "https://elsewhere.test")
			st.tally(status, code, status/100 == 2)
		}
		return true
	})
	c.CloseIdle()
	f.attackEnded()
	return f.finish(ctx, st)
}
