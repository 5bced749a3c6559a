package attack

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Availability scenarios: one client, or a flood from many,
// must not make the service refuse legitimate visitors from other
// addresses, grow its memory or Redis without bound, or flood its log.
const (
	FaultReplayFill    = "replay-fill"
	FaultCaptchaBudget = "captcha-budget"
	FaultLimiterFull   = "limiter-full"
	FaultOffenceFlood  = "offence-flood"
	FaultLogFlood      = "log-flood"
)

// FloodNames lists the availability scenarios.
func FloodNames() []string {
	return []string{FaultReplayFill, FaultCaptchaBudget, FaultLimiterFull, FaultOffenceFlood, FaultLogFlood}
}

// The bounds every availability scenario asserts.
const (
	// LegitAcceptShare is the least share of legitimate posts (fresh
	// addresses and senders, so their own budgets are untouched) that must
	// be answered 2xx during the attack, and again after it.
	LegitAcceptShare = 0.99
	// RSSGrowthShort and RSSGrowthFull bound the service's VmRSS growth
	// over its value when the attack began (short and full sizes; the
	// scenarios size the stores' capacities to fit).
	RSSGrowthShort = 48 << 20
	RSSGrowthFull  = 96 << 20
	// RedisKeysPerPost is what one legitimate post (or an accepted attack
	// post) may leave in Redis: its buckets (client, network, sender,
	// form), its single-use token and its queued mail, with room.
	RedisKeysPerPost = 8
	// RedisKeysPerClient is what one attacking client of a many-client
	// flood may leave: a small offence record (and its network's).
	RedisKeysPerClient = 2
	// RedisKeySlack covers the service's own keys.
	RedisKeySlack = 500
	// LogLinesPerSecond and LogBytesPerSecond bound the log lines and
	// bytes one attacking client may cause per second of attack, beyond
	// LogSlackLines and LogSlackBytes (repeats must be sampled).
	LogLinesPerSecond = 100
	LogBytesPerSecond = 32 << 10
	// LogLinesPerRequest and LogBytesPerRequest bound the log per request
	// of a flood from many clients: one decision line each, nothing more.
	LogLinesPerRequest = 1
	LogBytesPerRequest = 512
	LogSlackLines      = 200
	LogSlackBytes      = 64 << 10
	// logLinesPerAccept and logBytesPerAccept are the log an accepted post
	// (or any legitimate one) may cause: its decision, queued and
	// delivery lines, with room. They are subtracted before the bounds
	// above are applied.
	logLinesPerAccept = 6
	logBytesPerAccept = 2048
)

// floodFigures is what a scenario measured; judge turns it into checks.
type floodFigures struct {
	Short bool
	// Many: the attack came from many clients (log bound per request),
	// otherwise from one (log bound per second).
	Many  bool
	Redis bool
	// The attack.
	AttackSecs                     float64
	Target, Sent, Answered, Accept int64
	Clients                        int64 // distinct attacking addresses
	// Legitimate posts sent during the attack and after it, and how many
	// of each were answered 2xx; Answers summarise the others.
	During, DuringOK, After, AfterOK int
	DuringAnswers, AfterAnswers      string
	LegitAll                         int // legitimate posts in all
	// Resources. RSSBound is the VmRSS growth allowed (0: RSSGrowthShort
	// or RSSGrowthFull by Short).
	RSS0, RSSPeak, RSSBound int64
	Keys0, KeysPeak         int64
	// The service log during the attack.
	LogLines, LogBytes, LogWarns int64
}

// judge applies the bounds above.
func judge(f floodFigures) []Check {
	var out []Check
	add := func(name string, ok bool, format string, a ...any) {
		out = append(out, Check{Name: name, OK: ok, Detail: fmt.Sprintf(format, a...)})
	}
	answered := f.Target == 0 || float64(f.Answered) >= 0.9*float64(f.Target)
	add("the attack reached the service", answered && f.Sent > 0,
		"%d requests sent in %.1fs (%.0f/s), %d answered, target %d", f.Sent, f.AttackSecs, rate(f.Sent, f.AttackSecs), f.Answered, f.Target)
	share := func(ok, n int) float64 {
		if n == 0 {
			return 0
		}
		return float64(ok) / float64(n)
	}
	minLegit := 5
	add("legitimate visitors accepted during the attack", f.During >= minLegit && share(f.DuringOK, f.During) >= LegitAcceptShare,
		"%d of %d (%.1f%%) answered 2xx, need %.0f%% of at least %d; others: %s", f.DuringOK, f.During, 100*share(f.DuringOK, f.During), 100*LegitAcceptShare, minLegit, orNone(f.DuringAnswers))
	add("legitimate visitors accepted after the attack", f.After >= minLegit && share(f.AfterOK, f.After) >= LegitAcceptShare,
		"%d of %d (%.1f%%) answered 2xx; others: %s", f.AfterOK, f.After, 100*share(f.AfterOK, f.After), orNone(f.AfterAnswers))
	rssBound := f.RSSBound
	switch {
	case rssBound > 0:
	case f.Short:
		rssBound = RSSGrowthShort
	default:
		rssBound = RSSGrowthFull
	}
	add("service memory bounded", f.RSS0 > 0 && f.RSSPeak-f.RSS0 <= rssBound,
		"VmRSS %.1f MiB when the attack began, peak %.1f MiB (+%.1f, bound +%d MiB)", mib(f.RSS0), mib(f.RSSPeak), mib(f.RSSPeak-f.RSS0), rssBound>>20)
	if f.Redis {
		posts := int64(f.LegitAll) + f.Accept
		bound := f.Keys0 + RedisKeySlack + RedisKeysPerPost*posts
		how := fmt.Sprintf("%d + %d + %d per post x %d posts", f.Keys0, RedisKeySlack, RedisKeysPerPost, posts)
		if f.Many {
			bound += RedisKeysPerClient * f.Clients
			how += fmt.Sprintf(" + %d per attacking client x %d", RedisKeysPerClient, f.Clients)
		}
		add("Redis keys bounded", f.KeysPeak <= bound,
			"DBSIZE %d when the attack began, peak %d; bound %d (%s)", f.Keys0, f.KeysPeak, bound, how)
	}
	out = append(out, judgeLog(f))
	return out
}

// judgeLog bounds the log written during the attack, after what the
// accepted posts may write.
func judgeLog(f floodFigures) Check {
	accepts := int64(f.During) + f.Accept
	lines := f.LogLines - logLinesPerAccept*accepts
	bytes := f.LogBytes - logBytesPerAccept*accepts
	c := Check{Name: "log volume bounded"}
	var lineBound, byteBound float64
	if f.Many {
		lineBound = LogSlackLines + LogLinesPerRequest*float64(f.Sent)
		byteBound = LogSlackBytes + LogBytesPerRequest*float64(f.Sent)
		c.Detail = fmt.Sprintf("%d lines, %.1f MiB (%d WARN/ERROR) for %d attack requests: %.2f lines and %.0f bytes a request beyond the %d accepted posts' share; bound %d line and %d bytes a request (+%d lines, %d KiB)",
			f.LogLines, mib(f.LogBytes), f.LogWarns, f.Sent, perReq(lines, f.Sent), perReq(bytes, f.Sent), accepts, LogLinesPerRequest, LogBytesPerRequest, LogSlackLines, LogSlackBytes>>10)
	} else {
		lineBound = LogSlackLines + LogLinesPerSecond*f.AttackSecs
		byteBound = LogSlackBytes + LogBytesPerSecond*f.AttackSecs
		c.Detail = fmt.Sprintf("%d lines, %.1f MiB (%d WARN/ERROR) in %.1fs of attack: %.0f lines/s and %.1f KiB/s beyond the %d accepted posts' share; bound %d lines/s and %d KiB/s (+%d lines, %d KiB)",
			f.LogLines, mib(f.LogBytes), f.LogWarns, f.AttackSecs, rate(lines, f.AttackSecs), rate(bytes, f.AttackSecs)/1024, accepts, LogLinesPerSecond, LogBytesPerSecond>>10, LogSlackLines, LogSlackBytes>>10)
	}
	c.OK = float64(lines) <= lineBound && float64(bytes) <= byteBound
	return c
}

func rate(n int64, secs float64) float64 {
	if secs <= 0 {
		return 0
	}
	return float64(n) / secs
}

func perReq(n, reqs int64) float64 {
	if reqs == 0 {
		return 0
	}
	return float64(n) / float64(reqs)
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// legitGen builds the i-th legitimate post of a scenario (from a fresh
// address and sender).
type legitGen func(e *Env, i int) *Attempt

// floodRun drives one scenario: steady legitimate posts before, during
// and after the attack, resource sampling, and the judging.
type floodRun struct {
	e     *Env
	name  string
	many  bool
	legit []legitGen
	rate  int // legitimate posts per second
	// rssBound overrides the VmRSS growth bound (0: by size).
	rssBound int64

	start, end     time.Time
	logFrom, logTo int64
	rss0, keys0    int64
	peakRSS        atomic.Int64
	peakKeys       atomic.Int64
	rdb            *redis.Client
	stats          *attackStats
	ended          atomic.Bool

	stopSampling, stopLegit chan struct{}
	sampling, legitWG       sync.WaitGroup
}

func newFlood(e *Env, name string, many bool, legit ...legitGen) *floodRun {
	f := &floodRun{e: e, name: name, many: many, legit: legit, rate: scale(e.Opt, 10, 20),
		stopSampling: make(chan struct{}), stopLegit: make(chan struct{})}
	if e.Redis != nil {
		f.rdb = redis.NewClient(&redis.Options{Addr: e.Redis.Addr})
		if name != FaultOffenceFlood { // always on Redis
			f.name += "/redis"
		}
	}
	return f
}

// begin starts the legitimate traffic, lets it warm the service up, then
// takes the baselines and marks the attack's start; st is the attack's
// tally, for progress lines.
func (f *floodRun) begin(ctx context.Context, st *attackStats) (err error) {
	f.stats = st
	f.legitWG.Add(1)
	go f.sendLegit(ctx)
	defer func() {
		if err != nil {
			close(f.stopLegit)
			f.legitWG.Wait()
			if f.rdb != nil {
				_ = f.rdb.Close()
			}
		}
	}()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(time.Duration(scale(f.e.Opt, 1500, 3000)) * time.Millisecond):
	}
	if f.rss0, err = readRSS(f.e.Svc.PID()); err != nil {
		return err
	}
	f.peakRSS.Store(f.rss0)
	if f.rdb != nil {
		if f.keys0, err = f.rdb.DBSize(ctx).Result(); err != nil {
			return fmt.Errorf("%s: DBSIZE: %w", f.name, err)
		}
		f.peakKeys.Store(f.keys0)
	}
	if f.logFrom, err = fileSize(f.e.Svc.LogPath()); err != nil {
		return err
	}
	f.start = time.Now()
	f.sampling.Add(1)
	go f.sample(ctx)
	fmt.Fprintf(f.e.Opt.Log, "%s: attack begins (VmRSS %.1f MiB)\n", f.name, mib(f.rss0))
	return nil
}

// attackEnded marks the end of the attack (the log window closes).
func (f *floodRun) attackEnded() {
	f.end = time.Now()
	f.ended.Store(true)
	f.logTo, _ = fileSize(f.e.Svc.LogPath())
	fmt.Fprintf(f.e.Opt.Log, "%s: attack ended after %s\n", f.name, f.end.Sub(f.start).Round(time.Millisecond))
}

// sendLegit sends f.rate legitimate posts a second until stopped, each
// from a fresh address with a fresh sender.
func (f *floodRun) sendLegit(ctx context.Context) {
	defer f.legitWG.Done()
	tick := time.NewTicker(time.Second / time.Duration(f.rate))
	defer tick.Stop()
	sem := make(chan struct{}, 64)
	for i := 0; ; i++ {
		select {
		case <-f.stopLegit:
			return
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		a := f.legit[i%len(f.legit)](f.e, i)
		a.Req.Class = f.name + "/legit"
		// The audit insists on delivery of what was accepted; the
		// scenario's own checks count the refusals.
		a.Req.Legit = false
		a.Req.Note = "no answer" // unless Check sees one
		noteAnswer(a)
		sem <- struct{}{}
		f.legitWG.Add(1)
		go func() {
			defer func() { <-sem; f.legitWG.Done() }()
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			defer cancel()
			rule, detail, err := f.e.Client.Send(sctx, a)
			switch {
			case err != nil:
				a.Req.Status, a.Req.Note = 0, "error: "+err.Error()
			case rule != "":
				f.e.Violate(a.Req, rule, detail)
			}
		}()
	}
}

// sample records the peaks of the service's VmRSS and Redis's DBSIZE.
func (f *floodRun) sample(ctx context.Context) {
	defer f.sampling.Done()
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for n := 1; ; n++ {
		if n%50 == 0 && !f.ended.Load() {
			fmt.Fprintf(f.e.Opt.Log, "%s: %d attack requests, peak VmRSS %.1f MiB\n", f.name, f.stats.sent.Load(), mib(f.peakRSS.Load()))
		}
		select {
		case <-f.stopSampling:
			return
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if rss, err := readRSS(f.e.Svc.PID()); err == nil && rss > f.peakRSS.Load() {
			f.peakRSS.Store(rss)
		}
		if f.rdb != nil {
			if n, err := f.rdb.DBSize(ctx).Result(); err == nil && n > f.peakKeys.Load() {
				f.peakKeys.Store(n)
			}
		}
	}
}

// finish keeps the legitimate posts going for a while after the attack,
// stops everything, waits for the mail and judges.
func (f *floodRun) finish(ctx context.Context, a *attackStats) (*FaultResult, error) {
	after := time.Duration(scale(f.e.Opt, 3, 10)) * time.Second
	select {
	case <-ctx.Done():
	case <-time.After(after):
	}
	close(f.stopLegit)
	f.legitWG.Wait()
	close(f.stopSampling)
	f.sampling.Wait()
	if f.rdb != nil {
		defer f.rdb.Close()
	}
	res := &FaultResult{Name: f.name}
	fig := floodFigures{Short: f.e.Opt.Short, Many: f.many, Redis: f.rdb != nil,
		AttackSecs: f.end.Sub(f.start).Seconds(), Target: a.target, Sent: a.sent.Load(),
		Answered: a.answered.Load(), Accept: a.accepted.Load(), Clients: a.clients.Load(),
		RSS0: f.rss0, RSSPeak: f.peakRSS.Load(), RSSBound: f.rssBound, Keys0: f.keys0, KeysPeak: f.peakKeys.Load()}
	var during, after2 []string
	for _, r := range f.e.Requests() {
		if r.Class != f.name+"/legit" {
			continue
		}
		fig.LegitAll++
		ok := r.Accepted()
		switch {
		case r.Sent.Before(f.start):
		case r.Sent.Before(f.end):
			fig.During++
			if ok {
				fig.DuringOK++
			} else {
				during = append(during, r.Note)
			}
		default:
			fig.After++
			if ok {
				fig.AfterOK++
			} else {
				after2 = append(after2, r.Note)
			}
		}
	}
	fig.DuringAnswers, fig.AfterAnswers = summarize(during), summarize(after2)
	var err error
	if fig.LogLines, fig.LogBytes, fig.LogWarns, err = logWindow(f.e.Svc.LogPath(), f.logFrom, f.logTo); err != nil {
		return nil, err
	}
	res.Checks = judge(fig)
	res.fact("attack answers: %s", orNone(a.summary()))
	delivered := f.e.Settle(1500*time.Millisecond, 90*time.Second)
	res.check("every accepted post delivered", delivered, "%d messages for %d expected", f.e.Sink.Len(), f.e.ExpectedMessages())
	p := f.e.Policy()
	p.RequireAccepted = true
	res.Audit = f.e.Audit(p)
	return res, nil
}

// readRSS is a process's VmRSS in bytes.
func readRSS(pid int) (int64, error) {
	if pid == 0 {
		return 0, fmt.Errorf("attack: service not running")
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("attack: no VmRSS for pid %d", pid)
}

func fileSize(path string) (int64, error) {
	st, err := os.Stat(path)
	if err != nil {
		return 0, err
	}
	return st.Size(), nil
}

// logWindow counts the lines, bytes and WARN/ERROR lines of a log between
// two offsets.
func logWindow(path string, from, to int64) (lines, bytes, warns int64, err error) {
	fh, err := os.Open(path)
	if err != nil {
		return 0, 0, 0, err
	}
	defer fh.Close()
	sc := bufio.NewScanner(io.NewSectionReader(fh, from, to-from))
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		lines++
		if l := sc.Text(); strings.Contains(l, `"level":"WARN"`) || strings.Contains(l, `"level":"ERROR"`) {
			warns++
		}
	}
	return lines, to - from, warns, sc.Err()
}
