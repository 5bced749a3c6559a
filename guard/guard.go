package guard

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"errors"
	"fmt"
	"github.com/formguard/formguard/post"
	"hash/maphash"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/formguard/formguard/guard/captcha"
	"github.com/formguard/formguard/guard/ratelimit"
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

// verdict is CheckForm with a typed error: the steps, then one log line.
func (g *Guard) verdict(w http.ResponseWriter, r *http.Request, form string) (*post.Submission, *Error) {
	f := getFieldSet()
	sub, clientKey, e := g.steps(w, r, form, f)
	f.release()
	g.logDecision(r.Context(), form, clientKey, sub, e)
	return sub, e
}

// steps runs the steps of "What a post goes through" in order, parsing
// the body into vals.
func (g *Guard) steps(w http.ResponseWriter, r *http.Request, form string, vals *fieldSet) (*post.Submission, string, *Error) {
	p, ok := g.forms[form]
	if !ok {
		return nil, "", ErrUnknownForm.withq("form ", truncate(form, 64), "")
	}
	if e := checkMethod(w, r); e != nil {
		return nil, "", e
	}
	ctype := r.Header.Get("Content-Type")
	kind, params, maxBody, e := checkShape(r, p, ctype)
	if e != nil {
		return nil, "", e
	}
	ip, err := g.ips.ClientIP(r)
	if err != nil {
		return nil, "", ErrBadClient.with(err)
	}
	clientKey := g.ClientKey(ip)
	if e := g.checkOrigin(r, p); e != nil {
		return nil, clientKey, e
	}
	body, e := readBody(r, maxBody)
	if e != nil {
		return nil, clientKey, e
	}
	admitted, e := g.limitKnown(r.Context(), w, p, ctype, body, ip, clientKey)
	if e != nil {
		return nil, clientKey, e
	}
	if e := parseInto(vals, kind, params, body, p); e != nil {
		return nil, clientKey, e
	}
	sub, e := g.local(r.Context(), p, vals, clientKey)
	if e != nil {
		return sub, clientKey, e
	}
	sub.ClientIP, sub.ClientKey = ip, clientKey
	// Then the client's own limits and bans, before anything that spends
	// what other visitors share (see limitClient).
	if !admitted {
		if e := g.limitClient(r.Context(), w, p, sub); e != nil {
			g.passed.add(p.name, ctype, body)
			return nil, clientKey, e
		}
	}
	now := g.now()
	if e := g.defend(r.Context(), p, vals, captcha.Request{Form: form, RemoteIP: ip, ClientKey: clientKey, Now: now}); e != nil {
		return nil, clientKey, e
	}
	if e := g.limitShared(r.Context(), w, p, sub); e != nil {
		return nil, clientKey, e
	}
	sub.ID = newID()
	sub.Received = now
	return sub, clientKey, nil
}

// checkMethod admits only POST, naming it in Allow on a 405.
func checkMethod(w http.ResponseWriter, r *http.Request) *Error {
	if r.Method == http.MethodPost {
		return nil
	}
	if w != nil {
		w.Header().Set("Allow", http.MethodPost)
	}
	return ErrMethod.withText("method ", truncate(r.Method, 16), "")
}

// checkShape checks the content type and the declared size, before any
// of the body is read.
func checkShape(r *http.Request, p *policy, ctype string) (kind int, params map[string]string, maxBody int64, e *Error) {
	kind, params, err := mediaType(ctype)
	if err != nil {
		return 0, nil, 0, ErrContentType.with(err)
	}
	maxBody = p.maxBody
	if kind == bodyMultipart && p.form.AllowFiles && p.form.MaxBody == 0 {
		maxBody = DefaultMaxFileBody
	}
	if r.ContentLength > maxBody {
		return 0, nil, 0, ErrTooLarge.withf("Content-Length %d > %d", r.ContentLength, maxBody)
	}
	return kind, params, maxBody, nil
}

// parseInto parses body into vals, within the form's field limits.
func parseInto(vals *fieldSet, kind int, params map[string]string, body []byte, p *policy) *Error {
	err := vals.parse(kind, params, body, DefaultMaxFields, p.form.AllowFiles)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, errFilePart):
		return ErrFilesNotAllowed.with(err)
	}
	return ErrMalformed.with(err)
}

// local runs steps 4 to 7 on a parsed post (see the package
// documentation), reporting what no browser sends as an offence. A
// honeypot hit returns its decoy with ErrHoneypot.
func (g *Guard) local(ctx context.Context, p *policy, vals *fieldSet, clientKey string) (*post.Submission, *Error) {
	if hp := vals.get(p.honeypot); len(hp) > 0 && !blank(hp) {
		g.penalize(ctx, clientKey)
		e := ErrHoneypot.withq("honeypot field ", p.honeypot, " filled")
		e.decoy = g.decoy(p.name, vals)
		return e.decoy, e
	}
	sub, e := g.fields(p, vals)
	if e != nil {
		if e.Code == ErrHeaderInjection.Code || e.Code == ErrForbiddenField.Code {
			g.penalize(ctx, clientKey)
		}
		return nil, e
	}
	if next := vals.first(DefaultRedirectFieldKey); next != "" {
		if _, err := g.sameSite(next); err != nil {
			return nil, ErrOffsiteRedirect.with(err)
		}
		sub.Next = next
	}
	// A missing token is refused here, before it costs the client any of
	// its budget.
	if e := missingDefence(p, vals); e != nil {
		if e.Code == ErrTokenInvalid.Code {
			g.penalize(ctx, clientKey)
		}
		return nil, e
	}
	return sub, nil
}

// ErrBadClient answers requests whose client address cannot be trusted.
var ErrBadClient = newErr(http.StatusBadRequest, "bad_client_address", "The request's forwarding headers are malformed.")

// blank reports whether every value is empty or white space, as
// strings.TrimSpace(strings.Join(v, "")) == "" would, without joining.
func blank(v []string) bool {
	for _, s := range v {
		if strings.TrimSpace(s) != "" {
			return false
		}
	}
	return true
}

func first(v []string) string {
	if len(v) == 0 {
		return ""
	}
	return v[0]
}

// fields applies the sender lock, field rules, recipients and content rules.
func (g *Guard) fields(p *policy, vals *fieldSet) (*post.Submission, *Error) {
	// A field choosing a sender or recipient is reported (and penalised)
	// whatever else the post got wrong and wherever it came in the body.
	for _, k := range vals.names {
		if !p.allowed[k] && senderKeys[foldKey(k)] {
			return nil, ErrForbiddenField.withq("field ", truncate(k, 64), " would choose a sender or recipient")
		}
	}
	for i, k := range vals.names {
		if !p.allowed[k] {
			return nil, ErrUnknownField.withq("field ", truncate(k, 64), "")
		}
		if v := vals.vals[i]; len(v) > 1 && k != p.names.To {
			return nil, ErrDuplicateField.withf("field %q sent %d times", truncate(k, 64), len(v))
		}
	}
	in := input{
		name:          vals.first(p.names.Name),
		email:         vals.first(p.names.Email),
		subject:       vals.first(p.names.Subject),
		message:       vals.first(p.names.Message),
		url:           vals.first(p.names.URL),
		maxName:       p.maxName,
		maxSubject:    p.maxSubj,
		maxMessage:    p.maxMsg,
		maxURL:        maxURLLength,
		emailRequired: p.emailReq,
	}
	if e := validate(&in, p.names); e != nil {
		return nil, e
	}
	if strings.TrimSpace(in.message) == "" && p.form.Kind == post.Contact {
		return nil, ErrInvalidField.withq("field ", p.names.Message, " is required")
	}
	sub := &post.Submission{
		Form:    p.name,
		Kind:    p.form.Kind,
		Name:    strings.TrimSpace(in.name),
		Subject: strings.TrimSpace(in.subject),
		Message: in.message,
	}
	if in.email != "" {
		a, _ := ParseAddress(in.email) // validated above
		sub.ReplyTo = a
	}
	for _, x := range p.extra {
		v := vals.first(x)
		if v == "" {
			continue
		}
		if !SingleLine(v) {
			return nil, ErrHeaderInjection.withf("field %q contains a control character, line break or encoded word", x)
		}
		if len(v) > 1000 {
			return nil, ErrInvalidField.withf("field %q is too long", x)
		}
		if sub.Fields == nil {
			sub.Fields = make(map[string]string, len(p.extra))
		}
		sub.Fields[x] = v
	}
	if e := g.recipientsOf(p, vals.get(p.names.To), vals.first(p.choice), sub); e != nil {
		return nil, e
	}
	if links := countLinks(sub.Message) + countLinks(sub.Subject) + countLinks(sub.Name); links > max(p.maxLinks, 0) {
		return nil, ErrTooManyLinks.withf("%d links, at most %d allowed", links, max(p.maxLinks, 0))
	}
	if p.form.Kind == post.Share {
		u, e := g.sharedURL(in.url, p.names.URL)
		if e != nil {
			return nil, e
		}
		sub.URL = u
	}
	return sub, nil
}
