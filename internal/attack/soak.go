package attack

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Soak tolerances: the last third of the run (median) against the first
// third after warm-up (median).
const (
	SoakRSSFactor     = 1.3      // RSS may grow by 30% ...
	SoakRSSSlack      = 10 << 20 // ... plus 10 MiB of allocator noise
	SoakGoroutineHeap = 15       // extra goroutines allowed
	SoakFDSlack       = 15       // extra open files allowed
	// SoakRate is the steady request rate (requests per second).
	SoakRate = 25
)

// Sample is one reading of the service's resources.
type Sample struct {
	At         time.Duration
	RSS        int64 // bytes, VmRSS
	Goroutines int
	FDs        int
}

// SoakResult is a soak's outcome.
type SoakResult struct {
	Duration time.Duration
	Requests int
	Samples  []Sample
	Checks   []Check
	Audit    *Report
}

// OK reports every check passed and a clean audit.
func (s *SoakResult) OK() bool {
	for _, c := range s.Checks {
		if !c.OK {
			return false
		}
	}
	return s.Audit != nil && s.Audit.OK()
}

// Markdown renders the series summary, checks and audit.
func (s *SoakResult) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d requests over %s, %d samples.\n\n", s.Requests, s.Duration, len(s.Samples))
	b.WriteString("| series | min | first third (median) | last third (median) | max |\n|---|---:|---:|---:|---:|\n")
	series := []struct {
		name string
		f    func(Sample) float64
		unit string
	}{
		{"RSS (MiB)", func(x Sample) float64 { return float64(x.RSS) / (1 << 20) }, "%.1f"},
		{"goroutines", func(x Sample) float64 { return float64(x.Goroutines) }, "%.0f"},
		{"open files", func(x Sample) float64 { return float64(x.FDs) }, "%.0f"},
	}
	first, last := thirds(s.Samples)
	for _, se := range series {
		all := values(s.Samples, se.f)
		if len(all) == 0 {
			continue
		}
		fmt.Fprintf(&b, "| %s | "+se.unit+" | "+se.unit+" | "+se.unit+" | "+se.unit+" |\n", se.name,
			minOf(all), median(values(first, se.f)), median(values(last, se.f)), maxOf(all))
	}
	b.WriteString("\n" + checksTable(s.Checks))
	if s.Audit != nil {
		b.WriteString("\nMail audit:\n\n" + s.Audit.Markdown())
	}
	return b.String()
}

func thirds(xs []Sample) (first, last []Sample) {
	// Skip the first fifth as warm-up (pools, caches, JIT-free but still).
	warm := len(xs) / 5
	rest := xs[warm:]
	n := len(rest) / 3
	if n == 0 {
		return rest, rest
	}
	return rest[:n], rest[len(rest)-n:]
}

func values(xs []Sample, f func(Sample) float64) []float64 {
	out := make([]float64, len(xs))
	for i, x := range xs {
		out[i] = f(x)
	}
	return out
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	c := append([]float64(nil), v...)
	sort.Float64s(c)
	return c[len(c)/2]
}

func minOf(v []float64) float64 {
	m := v[0]
	for _, x := range v {
		m = min(m, x)
	}
	return m
}

func maxOf(v []float64) float64 {
	m := v[0]
	for _, x := range v {
		m = max(m, x)
	}
	return m
}

// Soak runs steady mixed traffic (legitimate contact and share posts and a
// rotation of attacks) for d at SoakRate, sampling the service's RSS
// (/proc/PID/status), goroutines (go_goroutines on /metrics) and open
// files (/proc/PID/fd) every few seconds, and fails when they grow beyond
// the tolerances above. The mail of the whole soak is audited too.
func Soak(ctx context.Context, d time.Duration, opt Options) (*SoakResult, error) {
	inner := opt.Config
	opt.Config = func(c *ServiceConfig) {
		// Legitimate traffic comes from a bounded pool of clients and
		// addresses, so limits must let a steady stream through; the
		// attack share stays refused for what it is, not for its rate.
		c.ContactPerIP, c.ContactPerSender = "100000/h", "100000/h"
		c.SharePerIP, c.SharePerSender, c.SharePerRecipient = "100000/h", "100000/h", "100000/d"
		c.PerNetwork = "100000/h"
		if inner != nil {
			inner(c)
		}
	}
	e, err := Setup(ctx, opt)
	if err != nil {
		return nil, err
	}
	defer e.Close()
	res := &SoakResult{Duration: d}
	every := 5 * time.Second
	if d < 2*time.Minute {
		every = time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	samples := e.sampleUntilDone(ctx, every)
	res.Requests = e.soakTraffic(ctx)
	res.Samples, err = samples()
	e.Settle(1500*time.Millisecond, 60*time.Second)
	res.Audit = e.Audit(e.Policy())
	res.Checks = soakChecks(res.Samples, err)
	return res, nil
}

// sampleUntilDone samples the service every interval until ctx is done;
// the function it returns waits for that and returns the samples, or the
// first sampling error.
func (e *Env) sampleUntilDone(ctx context.Context, every time.Duration) func() ([]Sample, error) {
	var samples []Sample
	var sampleErr error
	done := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				s, err := e.sample(time.Since(start))
				if err != nil && sampleErr == nil {
					sampleErr = err
				}
				if err == nil {
					samples = append(samples, s)
				}
			}
		}
	}()
	return func() ([]Sample, error) {
		<-done
		return samples, sampleErr
	}
}

// soakTraffic sends the soakGenerators mix at SoakRate, at most 8 requests
// in flight, until ctx is done, and returns how many it sent.
func (e *Env) soakTraffic(ctx context.Context) int {
	const pool = 200
	gens := soakGenerators()
	tick := time.NewTicker(time.Second / SoakRate)
	defer tick.Stop()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	i := 0
	for {
		select {
		case <-ctx.Done():
			wg.Wait()
			return i
		case <-tick.C:
		}
		i++
		a := gens[i%len(gens)](e, i%pool)
		sem <- struct{}{}
		wg.Add(1)
		go func(a *Attempt) {
			defer func() { <-sem; wg.Done() }()
			sctx, c := context.WithTimeout(context.Background(), 20*time.Second)
			defer c()
			if rule, detail, err := e.Client.Send(sctx, a); err == nil && rule != "" {
				e.Violate(a.Req, rule, detail)
			}
		}(a)
	}
}

// soakChecks compares the last third of the samples with the first.
func soakChecks(samples []Sample, sampleErr error) []Check {
	if sampleErr != nil {
		return []Check{{Name: "sampling", Detail: sampleErr.Error()}}
	}
	if len(samples) < 6 {
		return []Check{{Name: "sampling", Detail: fmt.Sprintf("only %d samples; soak for at least 10s", len(samples))}}
	}
	first, last := thirds(samples)
	medians := func(f func(Sample) float64) (float64, float64) {
		return median(values(first, f)), median(values(last, f))
	}
	rss0, rss1 := medians(func(x Sample) float64 { return float64(x.RSS) })
	g0, g1 := medians(func(x Sample) float64 { return float64(x.Goroutines) })
	f0, f1 := medians(func(x Sample) float64 { return float64(x.FDs) })
	return []Check{
		{Name: "RSS stable", OK: rss1 <= rss0*SoakRSSFactor+SoakRSSSlack, Detail: fmt.Sprintf("%.1f -> %.1f MiB (limit x%.1f + %d MiB)", rss0/(1<<20), rss1/(1<<20), SoakRSSFactor, SoakRSSSlack>>20)},
		{Name: "goroutines stable", OK: g1 <= g0+SoakGoroutineHeap, Detail: fmt.Sprintf("%.0f -> %.0f (limit +%d)", g0, g1, SoakGoroutineHeap)},
		{Name: "open files stable", OK: f1 <= f0+SoakFDSlack, Detail: fmt.Sprintf("%.0f -> %.0f (limit +%d)", f0, f1, SoakFDSlack)},
	}
}

// soakGenerators is the traffic mix: half legitimate, half attacks.
func soakGenerators() []func(e *Env, slot int) *Attempt {
	pooled := func(a *Attempt, e *Env, slot int) *Attempt {
		// Each pooled client in a /24 of its own.
		ip := fmt.Sprintf("198.19.%d.%d", slot%256, 1+slot/256)
		a.XFF, a.Req.Client = []string{ip}, ip
		return a
	}
	return []func(e *Env, slot int) *Attempt{
		func(e *Env, slot int) *Attempt { return pooled(e.LegitContact("soak/legit", EncForm), e, slot) },
		func(e *Env, slot int) *Attempt {
			r := e.NewRequest("soak/injection", ContactForm)
			r.Sender = visitor(r)
			return pooled(e.Post(r, EncJSON, append(contactBase(r, "subject"), KV{"subject", injections[slot%len(injections)]})...), e, slot)
		},
		func(e *Env, slot int) *Attempt { return pooled(e.LegitContact("soak/legit", EncJSON), e, slot) },
		func(e *Env, slot int) *Attempt {
			r := e.NewRequest("soak/stuffing", ShareForm)
			r.Sender = visitor(r)
			return pooled(e.Post(r, EncForm, append(shareBase(r, e), KV{"to", strings.Join(victims(r, ShareMax+1), ",")})...), e, slot)
		},
		func(e *Env, slot int) *Attempt {
			return pooled(e.LegitShare("soak/legit", EncMultipart, 1+slot%ShareMax), e, slot)
		},
		func(e *Env, slot int) *Attempt {
			r := e.NewRequest("soak/markup", ContactForm)
			r.Sender = visitor(r)
			r.Markup = []string{markups[slot%len(markups)]}
			return pooled(e.Post(r, EncForm, append(contactBase(r, "message"), KV{"message", markups[slot%len(markups)] + " " + r.Marker})...), e, slot)
		},
		func(e *Env, slot int) *Attempt {
			r := e.NewRequest("soak/malformed", ContactForm)
			return pooled(&Attempt{Req: r, ContentType: CTJSON, Body: []byte(`{"name":"M","message":` + strings.Repeat("[", 500))}, e, slot)
		},
		func(e *Env, slot int) *Attempt {
			r := e.NewRequest("soak/spoof", ContactForm)
			r.Sender = visitor(r)
			return pooled(e.Post(r, EncMultipart, append(contactBase(r), KV{"from", "ceo@bank.example"})...), e, slot)
		},
	}
}

// sample reads the service's RSS, goroutines and open files.
func (e *Env) sample(at time.Duration) (Sample, error) {
	pid := e.Svc.PID()
	if pid == 0 {
		return Sample{}, fmt.Errorf("service not running")
	}
	s := Sample{At: at}
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return s, err
	}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			s.RSS = kb << 10
		}
	}
	f.Close()
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return s, err
	}
	s.FDs = len(ents)
	resp, err := e.Client.HTTP("").Get(e.Client.Base + "/metrics")
	if err != nil {
		return s, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if resp.StatusCode != http.StatusOK {
		return s, fmt.Errorf("/metrics answered %d", resp.StatusCode)
	}
	found := false
	for _, line := range strings.Split(string(body), "\n") {
		if rest, ok := strings.CutPrefix(line, "go_goroutines "); ok {
			v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			if err == nil {
				s.Goroutines, found = int(v), true
			}
		}
	}
	if !found {
		return s, fmt.Errorf("/metrics has no go_goroutines")
	}
	return s, nil
}
