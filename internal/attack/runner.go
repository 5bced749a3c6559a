package attack

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

// Options configure a harness run.
type Options struct {
	// Seed fixes every random choice (variant order, encodings, extra
	// mutations). The same seed sends the same requests.
	Seed uint64
	// Short sends one encoding per variant instead of all of them.
	Short bool
	// Redis runs the service against a real redis-server.
	Redis bool
	// RedisFsync is the server's appendfsync (default everysec).
	RedisFsync string
	// Dir is the work directory; "" makes a temporary one, removed by
	// Close unless Keep.
	Dir  string
	Keep bool
	// Bin is a prebuilt formguard binary; "" builds ./cmd/formguard.
	Bin string
	// Workers bounds requests in flight. Default 8.
	Workers int
	// Log receives progress lines. Default io.Discard.
	Log io.Writer
	// StrictOnce fails the sigkill scenario on any redelivery, even a
	// same-Message-ID copy of a message whose relay acceptance raced the
	// kill (which SMTP cannot rule out).
	StrictOnce bool
	// Trace, when set, receives one line per request after the run.
	Trace io.Writer
	// Config adjusts the generated service config before it is written.
	Config func(*ServiceConfig)
}

// Env is a running service with its sink (and Redis), and the requests
// sent to it so far.
type Env struct {
	Opt    Options
	Dir    string
	Sink   *Sink
	Redis  *Redis
	Svc    *Service
	Cfg    *ServiceConfig
	Client *Client
	DKIM   string // the TXT record of the service's key

	rng   *rand.Rand
	mu    sync.Mutex
	reqs  []*Request
	extra []Violation
	after []func()
	next  int
	ip4   uint32
	ip6   uint32
	peer  int
	tmp   bool
}

// Setup builds (unless Opt.Bin) and starts the service with a sink.
func Setup(ctx context.Context, opt Options) (*Env, error) {
	if opt.Workers <= 0 {
		opt.Workers = 8
	}
	if opt.Log == nil {
		opt.Log = io.Discard
	}
	e := &Env{Opt: opt, Dir: opt.Dir, rng: rand.New(rand.NewPCG(opt.Seed, 0x666f726d67756172))}
	if e.Dir == "" {
		d, err := os.MkdirTemp("", "formguard-attack-")
		if err != nil {
			return nil, err
		}
		e.Dir, e.tmp = d, true
	}
	ok := false
	defer func() {
		if !ok {
			e.Close()
		}
	}()
	if opt.Bin == "" {
		fmt.Fprintln(opt.Log, "building ./cmd/formguard ...")
		bin, err := BuildService(ctx, e.Dir)
		if err != nil {
			return nil, err
		}
		e.Opt.Bin = bin
	}
	sink, err := StartSink()
	if err != nil {
		return nil, err
	}
	e.Sink = sink
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	e.Cfg = &ServiceConfig{Port: port, Dir: filepath.Join(e.Dir, "svc"), SinkAddr: sink.Addr}
	if opt.Redis {
		rd := filepath.Join(e.Dir, "redis")
		if err := os.MkdirAll(rd, 0o700); err != nil {
			return nil, err
		}
		if e.Redis, err = StartRedis(rd, opt.RedisFsync); err != nil {
			return nil, err
		}
		e.Cfg.RedisURL = e.Redis.URL()
	}
	if opt.Config != nil {
		opt.Config(e.Cfg)
	}
	if err := os.MkdirAll(e.Cfg.Dir, 0o700); err != nil {
		return nil, err
	}
	if e.DKIM, err = e.Cfg.WriteDKIMKey(); err != nil {
		return nil, err
	}
	if e.Svc, err = NewService(e.Opt.Bin, e.Cfg); err != nil {
		return nil, err
	}
	fmt.Fprintf(opt.Log, "starting formguard on %s (sink %s, redis %v)\n", e.Svc.Addr, sink.Addr, opt.Redis)
	if err := e.Svc.Start(ctx); err != nil {
		return nil, err
	}
	e.Client = NewClient(e.Svc.Addr)
	ok = true
	return e, nil
}

// Close stops everything and removes a temporary work directory.
func (e *Env) Close() {
	if e.Svc != nil {
		e.Svc.Close()
	}
	if e.Sink != nil {
		_ = e.Sink.Close()
	}
	if e.Redis != nil {
		e.Redis.Kill()
	}
	if e.tmp && !e.Opt.Keep {
		_ = os.RemoveAll(e.Dir)
	}
}

// Policy is the audit policy for this service.
func (e *Env) Policy() Policy {
	return Policy{
		Domain: SiteDomain, DKIMSelector: DKIMSelector, DKIMRecord: e.DKIM,
		Contact: map[string][]string{ContactForm: {ContactTo}, FeedbackForm: {FeedbackTo},
			CallbackForm: {CallbackTo}, QuoteForm: {QuoteTo}, SignupForm: {SignupTo}},
		Share:   map[string]int{ShareForm: ShareMax},
		Origins: []string{e.Cfg.Origin(), SiteOrigin2},
		Caps:    e.Cfg.Caps(),
	}
}

// NewRequest records a new request of class to form.
func (e *Env) NewRequest(class, form string) *Request {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.next++
	r := &Request{ID: e.next, Class: class, Form: form, Marker: Marker(e.next)}
	e.reqs = append(e.reqs, r)
	return r
}

// Requests returns every request recorded so far.
func (e *Env) Requests() []*Request {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]*Request(nil), e.reqs...)
}

// Violate records a harness-level violation (an answer, not a message).
func (e *Env) Violate(r *Request, rule, detail string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.extra = append(e.extra, Violation{Class: r.Class, Rule: rule, Request: r.ID, Detail: detail})
}

// FreshIPv4 returns a client address no other request used (198.18.0.0/15,
// the benchmarking range of RFC 2544). Consecutive addresses lie in
// different /24s (512 of them, then the next host of each), so that
// fresh clients also have fresh per-network budgets.
func (e *Env) FreshIPv4() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.ip4++
	n := e.ip4 - 1
	net24, host := n%512, 1+(n/512)%254
	return netip.AddrFrom4([4]byte{198, 18 + byte(net24>>8), byte(net24), byte(host)}).String()
}

// FreshIPv6Net returns a /64 no other request used (2001:db8::/32,
// RFC 3849), as its prefix, and an address inside it for host.
func (e *Env) FreshIPv6Net() (prefix string, addr func(host uint16) string) {
	e.mu.Lock()
	e.ip6++
	n := e.ip6
	e.mu.Unlock()
	var b [16]byte
	b[0], b[1], b[2], b[3] = 0x20, 0x01, 0x0d, 0xb8
	b[4], b[5], b[6], b[7] = byte(n>>24), byte(n>>16), byte(n>>8), byte(n)
	p := netip.PrefixFrom(netip.AddrFrom16(b), 64)
	return p.String(), func(host uint16) string {
		c := b
		c[14], c[15] = byte(host>>8), byte(host)
		c[8] = byte(host) // vary the interface ID more than the last bytes
		return netip.AddrFrom16(c).String()
	}
}

// FreshPeer returns an untrusted loopback source address (127.0.0.2 ..
// 127.0.0.254, reused after 253).
func (e *Env) FreshPeer() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.peer++
	return fmt.Sprintf("127.0.0.%d", 2+(e.peer-1)%253)
}

// Intn is the seeded random source.
func (e *Env) Intn(n int) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.rng.IntN(n)
}

// Shuffle shuffles attempts with the seeded source.
func (e *Env) Shuffle(as []*Attempt) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.rng.Shuffle(len(as), func(i, j int) { as[i], as[j] = as[j], as[i] })
}

// Batch is attempts sent concurrently; a class's batches run in order.
type Batch []*Attempt

// Class is one attack class.
type Class struct {
	Name string
	Gen  func(e *Env) []Batch
}

// AfterSend registers a check over several answers (one answer's check
// is Attempt.Check): the next Send runs it once every batch is answered.
// A class's Gen registers it next to the batches it judges.
func (e *Env) AfterSend(f func()) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.after = append(e.after, f)
}

// Send runs batches in order, each with up to Workers requests in flight,
// then the checks registered with AfterSend.
func (e *Env) Send(ctx context.Context, batches []Batch) error {
	for _, b := range batches {
		if err := e.sendBatch(ctx, b); err != nil {
			return err
		}
	}
	e.mu.Lock()
	after := e.after
	e.after = nil
	e.mu.Unlock()
	for _, f := range after {
		f()
	}
	return nil
}

func (e *Env) sendBatch(ctx context.Context, b Batch) error {
	sem := make(chan struct{}, e.Opt.Workers)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	for _, a := range b {
		sem <- struct{}{}
		wg.Add(1)
		go func(a *Attempt) {
			defer func() { <-sem; wg.Done() }()
			rule, detail, err := e.Client.Send(ctx, a)
			if err != nil {
				mu.Lock()
				if first == nil {
					first = fmt.Errorf("%s request %d: %w", a.Req.Class, a.Req.ID, err)
				}
				mu.Unlock()
				return
			}
			if rule != "" {
				e.Violate(a.Req, rule, detail)
			}
		}(a)
	}
	wg.Wait()
	return first
}

// ExpectedMessages is how many messages the accepted requests so far
// should produce at least (contact: one; share: one per allowed address).
func (e *Env) ExpectedMessages() int {
	n := 0
	for _, r := range e.Requests() {
		if !r.Accepted() || r.Honeypot || r.SubID == "" {
			continue
		}
		if r.Form == ShareForm {
			n += len(dedupIDN(r.Allowed))
		} else {
			n++
		}
	}
	return n
}

// Settle waits until every accepted submission has reached each of its
// recipients (by the submission ID in the Message-ID) and the sink has
// then been quiet for quiet, or timeout. It reports whether all arrived.
func (e *Env) Settle(quiet, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for {
		missing := e.Missing()
		if len(missing) == 0 {
			e.Sink.WaitQuiet(0, quiet, quiet*4)
			return len(e.Missing()) == 0
		}
		if time.Now().After(deadline) {
			return false
		}
		e.Sink.WaitQuiet(0, 200*time.Millisecond, 200*time.Millisecond)
	}
}

// Missing lists accepted submissions (IDs) still short of messages.
func (e *Env) Missing() []string {
	got := map[string]int{}
	for _, m := range e.Sink.Messages() {
		if ref := subRef(m.Data); ref != "" {
			got[ref] += len(m.RcptTo)
		}
	}
	var out []string
	for _, r := range e.Requests() {
		if !r.Accepted() || r.Honeypot || r.SubID == "" {
			continue
		}
		want := 1
		if r.Form == ShareForm {
			want = max(1, len(dedupIDN(r.Allowed)))
		}
		if got[r.SubID] < want {
			out = append(out, r.SubID)
		}
	}
	return out
}

// Audit audits everything the sink received against every request sent,
// adding the harness-level violations.
func (e *Env) Audit(p Policy) *Report {
	r := Audit(p, e.Requests(), e.Sink.Messages())
	e.mu.Lock()
	extra := append([]Violation(nil), e.extra...)
	e.mu.Unlock()
	if len(extra) == 0 {
		return r
	}
	r.Violations = append(r.Violations, extra...)
	idx := map[string]int{}
	for i, c := range r.Classes {
		idx[c.Class] = i
	}
	for _, v := range extra {
		i, ok := idx[v.Class]
		if !ok {
			r.Classes = append(r.Classes, ClassResult{Class: v.Class})
			i = len(r.Classes) - 1
			idx[v.Class] = i
		}
		r.Classes[i].Violations++
		r.Total.Violations++
	}
	sort.Slice(r.Classes, func(i, j int) bool { return r.Classes[i].Class < r.Classes[j].Class })
	return r
}

// Attack sends classes in order and audits.
func (e *Env) Attack(ctx context.Context, classes []Class) (*Report, error) {
	for _, c := range classes {
		start := time.Now()
		batches := c.Gen(e)
		n := 0
		for _, b := range batches {
			n += len(b)
		}
		if err := e.Send(ctx, batches); err != nil {
			return nil, fmt.Errorf("class %s: %w", c.Name, err)
		}
		fmt.Fprintf(e.Opt.Log, "class %-20s %4d requests in %s\n", c.Name, n, time.Since(start).Round(time.Millisecond))
	}
	if !e.Settle(1500*time.Millisecond, 60*time.Second) {
		fmt.Fprintf(e.Opt.Log, "warning: %d messages expected, %d received before the timeout\n", e.ExpectedMessages(), e.Sink.Len())
	}
	e.WriteTrace()
	return e.Audit(e.Policy()), nil
}

// WriteTrace writes one line per request to Opt.Trace.
func (e *Env) WriteTrace() {
	if e.Opt.Trace == nil {
		return
	}
	for _, r := range e.Requests() {
		fmt.Fprintf(e.Opt.Trace, "%5d %-20s %-8s %3d accepted=%-5v legit=%-5v client=%s sub=%s %s\n",
			r.ID, r.Class, r.Form, r.Status, r.Accepted(), r.Legit, r.Client, r.SubID, r.Note)
	}
}

// ClassNames lists the classes of Classes in order.
func ClassNames() []string {
	var out []string
	for _, c := range Classes() {
		out = append(out, c.Name)
	}
	return out
}

// Select returns the classes named in a comma-separated list ("" all).
func Select(list string) ([]Class, error) {
	all := Classes()
	if list == "" {
		return all, nil
	}
	var out []Class
	for _, name := range strings.Split(list, ",") {
		found := false
		for _, c := range all {
			if c.Name == strings.TrimSpace(name) {
				out, found = append(out, c), true
			}
		}
		if !found {
			return nil, fmt.Errorf("unknown class %q (have %s)", name, strings.Join(ClassNames(), ", "))
		}
	}
	return out, nil
}
