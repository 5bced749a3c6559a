package mailer

import (
	"cmp"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"github.com/formguard/formguard/post"
	"io"
	"log/slog"
	netmail "net/mail"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/formguard/formguard/mailer/outbox"
	mail "github.com/wneessen/go-mail"
)

// Mailer turns accepted submissions into signed, aligned messages, queues
// them durably and delivers them in the background. Deliver is safe for
// concurrent use.
type Mailer struct {
	domain, site, from, bounce string
	dkim                       DKIM
	sealer                     *sealer // nil when unsigned
	policy                     *Policy
	templates                  map[string]Template
	transport                  Transport
	queue                      outbox.Queue
	worker                     *outbox.Worker
	now                        func() time.Time
	rand                       io.Reader
	log                        *slog.Logger
	onDelivery                 func(DeliveryEvent)

	// pending holds one token per queued message not yet handed to a
	// worker (Config.MaxPending); nil: no bound.
	pending    chan struct{}
	pendingMu  sync.Mutex
	pendingIDs map[string]struct{}
	running    chan struct{} // closed by Start
	stopped    chan struct{} // closed by Close

	startOnce sync.Once
	closeOnce sync.Once
	closeErr  error
}

// New validates cfg and returns a Mailer. Delivery starts with Start.
func New(cfg Config) (*Mailer, error) {
	m := &Mailer{now: cfg.Now, rand: cfg.Rand, log: cfg.Logger, onDelivery: cfg.OnDelivery,
		transport: cfg.Transport, queue: cfg.Outbox, dkim: cfg.DKIM}
	if err := m.setAddresses(cfg); err != nil {
		return nil, err
	}
	if err := m.dkim.validate(); err != nil {
		return nil, err
	}
	if m.dkim.Signer == nil && !cfg.AllowUnsigned {
		return nil, errors.New("mailer: Config.DKIM is required (set AllowUnsigned to send unsigned mail)")
	}
	if m.dkim.Signer != nil {
		s, err := newSealer(m.dkim.Signer)
		if err != nil {
			return nil, err
		}
		m.sealer = s
	}
	m.policy = &Policy{Domain: m.domain, Selector: m.dkim.Selector}
	m.templates = make(map[string]Template, len(cfg.Templates))
	for name, t := range cfg.Templates {
		if t.Text == nil {
			return nil, fmt.Errorf("mailer: Config.Templates[%q].Text is required", name)
		}
		m.templates[name] = t
	}
	switch {
	case cfg.Transport == nil:
		return nil, errors.New("mailer: Config.Transport is required")
	case cfg.Outbox == nil:
		return nil, errors.New("mailer: Config.Outbox is required")
	case cfg.MaxPending < 0:
		return nil, errors.New("mailer: Config.MaxPending must not be negative")
	}
	m.running, m.stopped = make(chan struct{}), make(chan struct{})
	if cfg.MaxPending > 0 {
		m.pending = make(chan struct{}, cfg.MaxPending)
		m.pendingIDs = make(map[string]struct{})
	}
	if m.now == nil {
		m.now = time.Now
	}
	m.rand = rand.Reader
	if cfg.Rand != nil {
		// A caller's Rand need not be safe for concurrent use.
		m.rand = &lockedReader{r: cfg.Rand}
	}
	if m.log == nil {
		m.log = slog.Default()
	}
	workers := cfg.Workers
	if workers == 0 {
		workers = max(outbox.DefaultConcurrency, 4*runtime.GOMAXPROCS(0))
	}
	w, err := outbox.NewWorker(outbox.WorkerConfig{
		Queue: cfg.Outbox, Handler: m.send, Concurrency: workers,
		BaseDelay: cfg.Retry.BaseDelay, MaxDelay: cfg.Retry.MaxDelay, MaxAge: cfg.Retry.MaxAge,
		PollInterval: cfg.Retry.PollInterval, Now: m.now, OnResult: m.result, Logger: m.log,
	})
	if err != nil {
		return nil, fmt.Errorf("mailer: %w", err)
	}
	m.worker = w
	return m, nil
}

// setAddresses validates Domain, SiteName, From and Bounce and applies
// their defaults.
func (m *Mailer) setAddresses(cfg Config) error {
	domain := strings.ToLower(strings.TrimSuffix(cfg.Domain, "."))
	if !validLabels(domain) || !strings.Contains(domain, ".") {
		return fmt.Errorf("mailer: Config.Domain %q is not a valid domain", cfg.Domain)
	}
	m.domain, m.site = domain, cleanLine(cfg.SiteName, 100)
	if m.site == "" {
		m.site = domain
	}
	m.from = cmp.Or(cfg.From, DefaultFromLocal+"@"+domain)
	if !bareAddress(m.from) {
		return fmt.Errorf("mailer: Config.From %q is not a bare address", cfg.From)
	}
	if addrDomain(m.from) != domain {
		return fmt.Errorf("mailer: Config.From %q is not on Config.Domain %s", m.from, domain)
	}
	m.bounce = cmp.Or(cfg.Bounce, m.from)
	if !bareAddress(m.bounce) {
		return fmt.Errorf("mailer: Config.Bounce %q is not a bare address", cfg.Bounce)
	}
	if orgDomain(addrDomain(m.bounce)) != orgDomain(domain) {
		return fmt.Errorf("mailer: Config.Bounce %q is not on the organisational domain %s (SPF would not align)",
			m.bounce, orgDomain(domain))
	}
	return nil
}

// bareAddress reports whether a is a plain addr-spec, with no display
// name or comment, fit for MAIL FROM and RCPT TO.
func bareAddress(a string) bool {
	p, err := netmail.ParseAddress(a)
	return err == nil && p.Address == a && validPath(a)
}

type lockedReader struct {
	mu sync.Mutex
	r  io.Reader
}

func (l *lockedReader) Read(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.r.Read(p)
}

// Policy returns the alignment policy the Mailer enforces, for callers
// that use a Transport directly.
func (m *Mailer) Policy() *Policy { return m.policy }

// Deliver composes the submission's message(s), checks them against the
// Policy and returns once they are durably queued (not yet sent). A share
// submission with three recipients queues three messages, atomically.
//
// The messages are queued unsigned and sealed (see RuleSeal): the delivery
// worker DKIM-signs each one right before sending it, so the request path
// never pays for a signature and t= is the time the message left.
// Everything else that can refuse a message runs here, before queueing.
func (m *Mailer) Deliver(ctx context.Context, s *post.Submission) error {
	msgs, err := m.compose(s, false)
	if err != nil {
		return err
	}
	return m.enqueue(ctx, s.ID, s.Form, msgs)
}

// DeliverMsg queues a hand-built go-mail message; like Deliver, it is
// signed by the worker. It refuses Cc and Bcc (recipients would see, or not
// see, each other in ways the site did not choose), fills in Message-ID and
// Auto-Submitted when absent, replaces any DKIM signer with the Mailer's,
// and applies the full Policy: From on the domain, no Sender or
// Return-Path, one Reply-To.
func (m *Mailer) DeliverMsg(ctx context.Context, msg *mail.Msg) error {
	om, err := m.composeMsg(msg)
	if err != nil {
		return err
	}
	return m.enqueue(ctx, om.Ref, "", []*outbox.Message{om})
}

func (m *Mailer) enqueue(ctx context.Context, ref, form string, msgs []*outbox.Message) error {
	held, err := m.reserve(ctx, len(msgs))
	if err != nil {
		m.log.Warn("mailer: not queued, delivery backlog full", "submission", ref, "form", form)
		return err
	}
	// Recorded before Enqueue: a worker may take a message as soon as it
	// is queued.
	m.pendingMu.Lock()
	for _, om := range msgs[:held] {
		m.pendingIDs[om.ID] = struct{}{}
	}
	m.pendingMu.Unlock()
	if err := m.queue.Enqueue(ctx, msgs...); err != nil {
		for _, om := range msgs[:held] {
			m.taken(om.ID)
		}
		m.log.Error("mailer: queueing failed", "submission", ref, "form", form, "err", err)
		return fmt.Errorf("mailer: queueing: %w", err)
	}
	ids := make([]string, len(msgs))
	for i, om := range msgs {
		ids[i] = om.ID
	}
	m.log.Info("mailer: queued", "submission", ref, "form", form, "messages", len(msgs), "queue_ids", ids)
	m.worker.Wake()
	return nil
}

// reserve takes a MaxPending token for each of n messages (at most the
// bound: a share form with more recipients than MaxPending still fits),
// waiting for workers to take queued ones. It returns how many it took.
func (m *Mailer) reserve(ctx context.Context, n int) (int, error) {
	if m.pending == nil {
		return 0, nil
	}
	select {
	case <-m.running:
	default:
		return 0, nil // no worker yet: nothing would free a token
	}
	n = min(n, cap(m.pending))
	for i := range n {
		select {
		case m.pending <- struct{}{}:
		case <-m.stopped:
			m.release(i)
			return 0, nil
		case <-ctx.Done():
			m.release(i)
			return 0, fmt.Errorf("%w: %w", ErrBacklog, ctx.Err())
		}
	}
	return n, nil
}

func (m *Mailer) release(n int) {
	for range n {
		<-m.pending
	}
}

// taken frees the MaxPending token of a message a worker picked up.
func (m *Mailer) taken(id string) {
	if m.pending == nil {
		return
	}
	m.pendingMu.Lock()
	_, ok := m.pendingIDs[id]
	delete(m.pendingIDs, id)
	m.pendingMu.Unlock()
	if ok {
		m.release(1)
	}
}

// send is the outbox Handler: sign, the policy again (the queue may hold
// bytes written by another instance or an intruder), then the transport.
// A message is signed only if it carries this Mailer's seal (RuleSeal
// otherwise: dead-lettered, no connection made). om.Raw stays unsigned, so
// a retry is signed afresh, with a new t=.
func (m *Mailer) send(ctx context.Context, om *outbox.Message) error {
	m.taken(om.ID)
	env := Envelope{From: om.From, To: om.To}
	raw := om.Raw
	if m.dkim.Signer != nil {
		if !m.sealer.verify(om) {
			return violation(RuleSeal, "unsigned message without a valid seal")
		}
		signed, err := m.dkim.sign(m.domain, m.now, raw)
		if err != nil {
			return err
		}
		raw = signed
	}
	if err := m.policy.Check(env, raw); err != nil {
		return err
	}
	return m.transport.Send(ctx, env, raw)
}

func (m *Mailer) result(r outbox.Result) {
	ev := DeliveryEvent{QueueID: r.Message.ID, Submission: r.Message.Ref, Outcome: r.Outcome,
		Attempt: r.Attempt, Recipients: len(r.Message.To), Code: SMTPCode(r.Err), Err: r.Err,
		Duration: r.Duration, Age: r.Age}
	if r.Outcome == outbox.Delivered {
		m.log.Info("mailer: delivered", "queue_id", ev.QueueID, "submission", ev.Submission,
			"attempt", ev.Attempt, "recipients", ev.Recipients, "age_ms", ev.Age.Milliseconds())
	}
	if m.onDelivery != nil {
		m.onDelivery(ev)
	}
}

// Start launches the delivery workers. They stop when ctx ends or at Close.
func (m *Mailer) Start(ctx context.Context) {
	m.worker.Start(ctx)
	m.startOnce.Do(func() { close(m.running) })
}

// Flush delivers, in the caller's goroutine, every message due now and
// returns how many attempts it made (for tools and tests; Start is the
// normal way).
func (m *Mailer) Flush(ctx context.Context) int { return m.worker.Process(ctx) }

// Stats reports the outbox's depth and oldest age.
func (m *Mailer) Stats(ctx context.Context) (outbox.Stats, error) {
	return m.queue.Stats(ctx, m.now())
}

// Close stops the workers (waiting for attempts in progress to be
// recorded), then closes the Transport and the Outbox.
func (m *Mailer) Close() error {
	m.closeOnce.Do(func() {
		close(m.stopped)
		m.closeErr = errors.Join(m.worker.Close(), m.transport.Close(), m.queue.Close())
	})
	return m.closeErr
}
