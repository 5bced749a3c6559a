package guard

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/formguard/formguard/guard/ratelimit"
	"github.com/formguard/formguard/post"
)

// Guard checks form posts against per-form policies. It is safe for
// concurrent use; build it once with New and share it.
type Guard struct {
	domain    string
	origins   map[string]bool
	ips       *IPResolver
	forms     map[string]*policy
	store     ratelimit.Store
	ownStore  bool
	banner    ratelimit.Banner
	async     ratelimit.AsyncBanner // banner, when it records offences in the background
	global    ratelimit.Limit
	keySecret []byte
	now       func() time.Time
	log       *slog.Logger
	onError   func(http.ResponseWriter, *http.Request, *Error)
	onSuccess func(http.ResponseWriter, *http.Request, *post.Submission)
	macs      sync.Pool // *keyedHash, keyed with keySecret
	rules     sync.Pool // *[8]ratelimit.Rule, see limit
	esc       escalation

	clientKeys clientKeyCache
	passed     passMemo
	netKeys    clientKeyCache // networkKey's cache
	logs       logSampler
	stats      counters
}

// counters are the Guard's running totals, read with Stats.
type counters struct {
	logSuppressed atomic.Uint64
	penaltyErrors atomic.Uint64
}

// Stats are running totals a service exports as metrics.
type Stats struct {
	// LogSuppressed counts decision log lines left out by sampling
	// (repeats of one client's same outcome); each gap is summarised by
	// one line carrying the count.
	LogSuppressed uint64
	// PenaltyErrors counts offences the ban store failed to record.
	PenaltyErrors uint64
}

// Stats returns the Guard's running totals.
func (g *Guard) Stats() Stats {
	return Stats{LogSuppressed: g.stats.logSuppressed.Load(), PenaltyErrors: g.stats.penaltyErrors.Load()}
}

// New validates cfg and builds a Guard. Every problem with cfg is reported
// here, never per request.
func New(cfg Config) (*Guard, error) {
	g := &Guard{
		now:       cfg.Now,
		log:       cfg.Logger,
		onError:   cfg.ErrorHandler,
		onSuccess: cfg.SuccessHandler,
		global:    orLimit(cfg.Global, DefaultGlobal),
	}
	g.rules.New = func() any { return new([8]ratelimit.Rule) }
	g.passed.seed = maphash.MakeSeed()
	if g.now == nil {
		g.now = time.Now
	}
	if g.log == nil {
		g.log = slog.Default()
	}
	if g.onError == nil {
		g.onError = writeError
	}
	if g.onSuccess == nil {
		g.onSuccess = WriteSuccess
	}
	d, err := normaliseDomain(cfg.Domain)
	if err != nil {
		return nil, fmt.Errorf("guard: Domain %q: %v", cfg.Domain, err)
	}
	g.domain = d
	if len(cfg.Origins) == 0 {
		return nil, errors.New("guard: Origins: at least one allowed origin (scheme://host[:port]) is required")
	}
	g.origins = make(map[string]bool, len(cfg.Origins))
	for _, o := range cfg.Origins {
		n, ok := normaliseOrigin(o)
		if !ok {
			return nil, fmt.Errorf("guard: origin %q: want scheme://host[:port] with scheme http or https and no path", o)
		}
		g.origins[n] = true
	}
	if g.ips, err = NewIPResolver(cfg.TrustedProxies); err != nil {
		return nil, err
	}
	if len(cfg.Forms) == 0 {
		return nil, errors.New("guard: Forms: at least one form is required")
	}
	g.keySecret = cfg.KeySecret
	if len(g.keySecret) == 0 {
		g.keySecret = make([]byte, 32)
		if _, err := rand.Read(g.keySecret); err != nil {
			return nil, fmt.Errorf("guard: key secret: %v", err)
		}
	} else if len(g.keySecret) < 16 {
		return nil, errors.New("guard: KeySecret must be at least 16 bytes")
	}
	key := g.keySecret
	g.macs.New = func() any { return &keyedHash{h: hmac.New(sha256.New, key), buf: make([]byte, 0, 320)} }
	g.forms = make(map[string]*policy, len(cfg.Forms))
	for _, name := range sortedKeys(cfg.Forms) {
		p, err := compileForm(g, name, cfg.Forms[name])
		if err != nil {
			return nil, err
		}
		g.forms[name] = p
	}
	g.store = cfg.Store
	if g.store == nil {
		m, err := ratelimit.NewMemory(ratelimit.MemoryConfig{Now: cfg.Now})
		if err != nil {
			return nil, fmt.Errorf("guard: memory store: %v", err)
		}
		g.store, g.ownStore = m, true
	}
	g.banner, _ = g.store.(ratelimit.Banner)
	g.async, _ = g.store.(ratelimit.AsyncBanner)
	return g, nil
}

// Close releases the rate-limit store if the Guard created it.
func (g *Guard) Close() error {
	if g.ownStore {
		return g.store.Close()
	}
	return nil
}

// Domain is the site domain the Guard was configured with, normalised.
func (g *Guard) Domain() string { return g.domain }

// FormKind reports a form's kind and whether the form exists.
func (g *Guard) FormKind(form string) (post.Kind, bool) {
	p, ok := g.forms[form]
	if !ok {
		return 0, false
	}
	return p.form.Kind, true
}

// ClientIP is the Guard's trusted client IP for r (see IPResolver).
func (g *Guard) ClientIP(r *http.Request) (netip.Addr, error) { return g.ips.ClientIP(r) }

type ctxKey int

const (
	ctxSubmission ctxKey = iota
	ctxReason
)

// SubmissionFrom returns the accepted submission Handler stored in ctx.
func SubmissionFrom(ctx context.Context) (*post.Submission, bool) {
	s, ok := ctx.Value(ctxSubmission).(*post.Submission)
	return s, ok
}

// Reason returns why Handler refused r, for use inside an ErrorHandler.
func Reason(r *http.Request) (*Error, bool) {
	e, ok := r.Context().Value(ctxReason).(*Error)
	return e, ok
}

// Middleware returns the middleware guarding form, in the shape chi's
// r.Use and gorilla/csrf's Protect take: posts that pass CheckForm reach
// next with the Submission in the request context (SubmissionFrom);
// rejections are answered by the Config's ErrorHandler; honeypot hits get
// the SuccessHandler's answer and never reach next. Middleware panics if
// form is not configured, as http.ServeMux does for bad patterns: it is a
// programming error found at start-up.
func (g *Guard) Middleware(form string) func(http.Handler) http.Handler {
	p, ok := g.forms[form]
	if !ok {
		panic(fmt.Sprintf("guard: Middleware: unknown form %q", form))
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			r = withRedirects(r, p)
			sub, e := g.verdict(w, r, form)
			if e == nil {
				next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxSubmission, sub)))
				return
			}
			r = r.WithContext(context.WithValue(r.Context(), ctxReason, e))
			if e.Code == ErrHoneypot.Code {
				sub.ID, sub.Received = newID(), g.now()
				g.onSuccess(w, r, sub)
				return
			}
			g.onError(w, r, e)
		})
	}
}

// decoy is the fake submission a honeypot hit is answered with: what an
// accept of the same post would carry into the answer (a same-site "_next"
// to redirect to; Middleware adds a fresh ID), so the two answers are the
// same.
func (g *Guard) decoy(form string, vals *fieldSet) *post.Submission {
	d := &post.Submission{Form: form}
	if next := vals.first(DefaultRedirectFieldKey); next != "" {
		if _, err := g.sameSite(next); err == nil {
			d.Next = next
		}
	}
	return d
}

// Check runs every check on a post whose form name is the last path
// segment of r.URL.Path (as in /f/{form}); see CheckForm.
func (g *Guard) Check(w http.ResponseWriter, r *http.Request) (*post.Submission, error) {
	form := r.PathValue("form")
	if form == "" {
		form = r.URL.Path[strings.LastIndexByte(r.URL.Path, '/')+1:]
	}
	return g.CheckForm(w, r, form)
}

var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// newID returns 120 random bits as 24 lower-case base32 characters, safe in
// a URL, a file name and a Message-ID's left part.
func newID() string {
	var b [15]byte
	_, _ = rand.Read(b[:])
	var out [24]byte
	idEncoding.Encode(out[:], b[:])
	return string(out[:])
}

// CheckForm runs every check of the named form on r, cheapest first, and
// returns the accepted Submission or an *Error. A nil error means the
// request was admitted and consumed rate-limit budget; the body has been
// read and r.Body replaced so a wrapped handler can read it again.
// ErrHoneypot means a bot filled the honeypot: answer as for success and
// deliver nothing. w is used only for headers of a refusal: Allow on a
// 405 and the rate-limit headers on a 429 (an accept carries none, so a
// honeypot hit answered as success looks like one).
func (g *Guard) CheckForm(w http.ResponseWriter, r *http.Request, form string) (*post.Submission, error) {
	sub, e := g.verdict(w, r, form)
	if e != nil {
		return nil, e // not a typed nil in the interface
	}
	return sub, nil
}
