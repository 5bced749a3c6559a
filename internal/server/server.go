package server

import (
	"context"
	"errors"
	"fmt"
	"github.com/formguard/formguard/post"
	"log/slog"
	"net/http"
	"runtime"
	"strconv"
	"sync"
	"time"

	"github.com/formguard/formguard/guard"
)

// Defaults.
const (
	// DefaultDeliverTimeout bounds building, checking and durably queueing
	// one submission's mail. The hand-over is not cancelled when the client
	// goes away, so a queued message is never half-written.
	DefaultDeliverTimeout = 10 * time.Second
	// DefaultReadyTimeout bounds each readiness check.
	DefaultReadyTimeout = 2 * time.Second
	// OutboxRetryAfter is the Retry-After sent with outbox_unavailable.
	OutboxRetryAfter = 30 * time.Second
)

// ErrOutbox answers a post that passed every check but whose mail could not
// be queued durably: nothing was accepted, the visitor should try again.
var ErrOutbox = &guard.Error{
	Status:     http.StatusServiceUnavailable,
	Code:       "outbox_unavailable",
	Message:    "Your message could not be queued for delivery; nothing was sent. Please try again later.",
	RetryAfter: OutboxRetryAfter,
}

// DeliverFunc builds, signs and durably queues the mail for an accepted
// submission. It returns only once the mail is durable (or on error).
type DeliverFunc func(ctx context.Context, s *post.Submission) error

// Config is what New wires together.
type Config struct {
	// Guard checks posts (required). Build it with the ErrorHandler and
	// SuccessHandler of the same Metrics (Metrics.GuardHandlers) so every
	// decision is counted.
	Guard *guard.Guard
	// Forms are the form names served at /f/{form} (required, each known
	// to Guard).
	Forms []string
	// Deliver queues accepted submissions (required).
	Deliver DeliverFunc
	// DeliverTimeout bounds Deliver. Zero value: DefaultDeliverTimeout.
	DeliverTimeout time.Duration
	// Challenges serve GET /f/{form}/challenge, by form. Forms without
	// one answer 404 there.
	Challenges map[string]http.Handler
	// Tokens issue form tokens at GET /f/{form}/token, by form. Forms
	// without one answer 404 there.
	Tokens map[string]TokenIssuer
	// Assets serves GET /assets/... (the proof-of-work widget); the form
	// token script is served there too. Zero value: only the token script.
	Assets http.Handler
	// Origins are the scheme://host[:port] origins CORS answers for. Zero
	// value: no CORS headers at all (same-origin posts only).
	Origins []string
	// Ready are readiness checks by name (redis, outbox) for GET /readyz.
	Ready map[string]func(context.Context) error
	// Metrics receives counts. Zero value: a fresh NewMetrics.
	Metrics *Metrics
	// SeparateAdmin serves GET /readyz and GET /metrics only on
	// AdminHandler, not on the public handler (admin_listen). GET /healthz,
	// which tells nothing, is on both. Zero value: all on the public one.
	SeparateAdmin bool
	// Demo, when set, serves the demo page at GET /.
	Demo *Demo
	// Logger receives one line per delivery. Zero value: slog.Default().
	Logger *slog.Logger
}

// Server is the service's HTTP handler.
type Server struct {
	cfg     Config
	log     *slog.Logger
	metrics *Metrics
	forms   map[string]http.Handler
	cors    *cors
	mux     *http.ServeMux
	admin   *http.ServeMux
}

// New validates cfg and builds the handler.
func New(cfg Config) (*Server, error) {
	if cfg.Guard == nil {
		return nil, errors.New("server: Guard is required")
	}
	if cfg.Deliver == nil {
		return nil, errors.New("server: Deliver is required")
	}
	if len(cfg.Forms) == 0 {
		return nil, errors.New("server: Forms: at least one form is required")
	}
	if cfg.DeliverTimeout < 0 {
		return nil, errors.New("server: DeliverTimeout must not be negative")
	}
	if cfg.DeliverTimeout == 0 {
		cfg.DeliverTimeout = DefaultDeliverTimeout
	}
	s := &Server{cfg: cfg, log: cfg.Logger, metrics: cfg.Metrics, forms: map[string]http.Handler{}}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.metrics == nil {
		s.metrics = NewMetrics(MetricsConfig{})
	}
	c, err := newCORS(cfg.Origins)
	if err != nil {
		return nil, err
	}
	s.cors = c
	for _, name := range cfg.Forms {
		if _, ok := cfg.Guard.FormKind(name); !ok {
			return nil, fmt.Errorf("server: form %q is not configured in the guard", name)
		}
		s.forms[name] = cfg.Guard.Middleware(name)(s.deliverHandler(name))
	}
	for name := range cfg.Challenges {
		if _, ok := s.forms[name]; !ok {
			return nil, fmt.Errorf("server: challenge for unknown form %q", name)
		}
	}
	for name := range cfg.Tokens {
		if _, ok := s.forms[name]; !ok {
			return nil, fmt.Errorf("server: token issuer for unknown form %q", name)
		}
	}
	s.routes()
	return s, nil
}

func (s *Server) routes() {
	m := http.NewServeMux()
	m.Handle("/f/{form}", s.instrument("submit", http.HandlerFunc(s.submit)))
	// Anything else under /f/ names no form: the same problem answer.
	m.Handle("/f/", s.instrument("submit", http.HandlerFunc(s.unknownForm)))
	m.Handle("/f/{form}/challenge", s.instrument("challenge", http.HandlerFunc(s.challenge)))
	s.admin = http.NewServeMux()
	s.admin.Handle("GET /healthz", s.instrument("healthz", http.HandlerFunc(healthz)))
	s.admin.Handle("GET /readyz", s.instrument("readyz", http.HandlerFunc(s.readyz)))
	s.admin.Handle("GET /metrics", s.metrics.Handler())
	m.Handle("GET /healthz", s.instrument("healthz", http.HandlerFunc(healthz)))
	if !s.cfg.SeparateAdmin {
		m.Handle("GET /readyz", s.admin)
		m.Handle("GET /metrics", s.admin)
	}
	m.Handle("/f/{form}/token", s.instrument("token", http.HandlerFunc(s.token)))
	m.Handle("GET /assets/", s.instrument("assets", http.StripPrefix("/assets", assets(s.cfg.Assets))))
	if s.cfg.Demo != nil {
		m.Handle("GET /{$}", s.instrument("demo", s.cfg.Demo))
	}
	s.mux = m
}

// AdminHandler serves GET /healthz, /readyz and /metrics, for an admin
// listener.
func (s *Server) AdminHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header()["X-Content-Type-Options"] = nosniff
		s.admin.ServeHTTP(w, r)
	})
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header()["X-Content-Type-Options"] = nosniff
	s.mux.ServeHTTP(w, r)
	// A connection carrying pipelined requests never blocks on a read, so
	// its goroutine would run a whole time slice (10 ms) of a flood before
	// a visitor's goroutine, woken by its Redis reply, got a turn: with
	// hundreds of such connections that wait passes the store's timeout.
	// Yielding after each answer makes the turns one request long.
	runtime.Gosched()
}

// Constant header values shared by every answer, so setting one costs no
// allocation. Nothing in the service or net/http modifies a header value
// in place (Set and Del replace the slice; Add appends, and a capacity of
// one makes that copy), so sharing them is safe.
var (
	nosniff       = []string{"nosniff"}
	varyOrigin    = []string{"Origin"}
	exposeHeaders = []string{"Retry-After, RateLimit, RateLimit-Policy"}
)

// submit serves /f/{form}: CORS, preflight, then the guard.
func (s *Server) submit(w http.ResponseWriter, r *http.Request) {
	allowed := s.cors.apply(w, r)
	if r.Method == http.MethodOptions {
		s.cors.preflight(w, r, allowed, "POST")
		return
	}
	h, ok := s.forms[r.PathValue("form")]
	if !ok {
		s.unknownForm(w, r)
		return
	}
	h.ServeHTTP(w, r)
}

// unknownForm answers a post to a form that does not exist.
func (s *Server) unknownForm(w http.ResponseWriter, r *http.Request) {
	// The form name is attacker-chosen here; never use it as a label.
	s.metrics.Decision("", guard.ErrUnknownForm.Code)
	guard.WriteError(w, r, guard.ErrUnknownForm)
}

// challenge serves /f/{form}/challenge.
func (s *Server) challenge(w http.ResponseWriter, r *http.Request) {
	allowed := s.cors.apply(w, r)
	if r.Method == http.MethodOptions {
		s.cors.preflight(w, r, allowed, "GET")
		return
	}
	h, ok := s.cfg.Challenges[r.PathValue("form")]
	if !ok {
		http.NotFound(w, r)
		return
	}
	h.ServeHTTP(w, r)
}

// token serves /f/{form}/token.
func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	allowed := s.cors.apply(w, r)
	if r.Method == http.MethodOptions {
		s.cors.preflight(w, r, allowed, "GET")
		return
	}
	t, ok := s.cfg.Tokens[r.PathValue("form")]
	if !ok {
		http.NotFound(w, r)
		return
	}
	tokenHandler(r.PathValue("form"), t).ServeHTTP(w, r)
}

// deliverHandler runs after the guard accepted a post: it queues the mail
// durably and only then answers success.
func (s *Server) deliverHandler(form string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sub, ok := guard.SubmissionFrom(r.Context())
		if !ok {
			guard.WriteError(w, r, guard.ErrInternal)
			return
		}
		s.metrics.Decision(form, "accepted")
		// Not cancelled with the request: a client hanging up must not
		// leave a half-queued message behind.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), s.cfg.DeliverTimeout)
		start := time.Now()
		err := s.cfg.Deliver(ctx, sub)
		cancel()
		took := time.Since(start)
		s.metrics.Queued(form, err == nil, took)
		if err != nil {
			logAttrs(r.Context(), s.log, slog.LevelError, "delivery",
				slog.String("form", form), slog.String("id", sub.ID),
				slog.String("outcome", ErrOutbox.Code), slog.Float64("took_ms", ms(took)),
				slog.String("error", err.Error()))
			e := *ErrOutbox
			e.Cause = err
			guard.WriteError(w, r, &e)
			return
		}
		logAttrs(r.Context(), s.log, slog.LevelInfo, "delivery",
			slog.String("form", form), slog.String("id", sub.ID),
			slog.String("outcome", "queued"), slog.Int("recipients", len(sub.Recipients)),
			slog.Float64("took_ms", ms(took)))
		guard.WriteSuccess(w, r, sub)
	})
}

// instrument records the latency of route.
func (s *Server) instrument(route string, h http.Handler) http.Handler {
	obs := &observerCache{vec: s.metrics.requests, route: route}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := statusWriters.Get().(*statusWriter)
		*sw = statusWriter{ResponseWriter: w, status: http.StatusOK}
		h.ServeHTTP(sw, r)
		status := sw.status
		*sw = statusWriter{} // a handler must not use w after it returns
		statusWriters.Put(sw)
		obs.get(status).Observe(time.Since(start).Seconds())
	})
}

var statusWriters = sync.Pool{New: func() any { return new(statusWriter) }}

type statusWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.status, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the real writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func statusClass(code int) string {
	if i := code / 100; i >= 0 && i < len(statusClasses) {
		return statusClasses[i]
	}
	return strconv.Itoa(code/100) + "xx"
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
