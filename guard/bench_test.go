package guard_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/formguard/formguard/guard"
	"github.com/formguard/formguard/guard/ratelimit"
)

// benchGuard lifts the limits so every valid post is admitted.
func benchGuard(b *testing.B) *guard.Guard {
	big := ratelimit.Limit{Count: 1_000_000_000, Period: time.Second}
	g, _ := newGuard(b, func(c *guard.Config) {
		c.Global = big
		f := c.Forms["contact"]
		f.Limits = guard.Limits{PerIP: big, PerNetwork: big, PerSender: big, PerForm: big, PerRecipient: big}
		c.Forms["contact"] = f
	})
	return g
}

type reusable struct {
	r    *http.Request
	body string
}

func (q *reusable) reset() *http.Request {
	q.r.Body = nopCloser{strings.NewReader(q.body)}
	return q.r
}

type nopCloser struct{ *strings.Reader }

func (nopCloser) Close() error { return nil }

func BenchmarkCheck(b *testing.B) {
	cases := []struct {
		name string
		req  req
		code string
	}{
		{"valid contact post", req{body: contact()}, ""},
		{"rejected: method", req{method: http.MethodGet}, "method_not_allowed"},
		{"rejected: content type", req{ct: "text/plain", body: "x"}, "unsupported_content_type"},
		{"rejected: origin", req{hdr: map[string]string{"Origin": "https://evil.test"}, body: contact()}, "bad_origin"},
		{"rejected: honeypot", req{body: contact("_gotcha", "x")}, "honeypot"},
		{"rejected: forbidden field", req{body: contact("bcc", "x@evil.test")}, "forbidden_field"},
		{"rejected: header injection", req{body: form("name", "a\r\nBcc: x", "email", "a@b.test", "message", "m")}, "header_injection"},
		{"rejected: invalid email", req{body: form("name", "Ada Lovelace", "email", "not-an-address", "subject", "Hello", "message", "Hi there")}, "invalid_email"},
		{"rejected: body too large", req{body: contact("message", strings.Repeat("x", 70<<10))}, "body_too_large"},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			g := benchGuard(b)
			q := &reusable{r: c.req.build(), body: c.req.body}
			w := httptest.NewRecorder()
			b.ReportAllocs()
			for b.Loop() {
				_, err := g.CheckForm(w, q.reset(), "contact")
				if (c.code == "") != (err == nil) || (err != nil && guard.AsError(err).Code != c.code) {
					b.Fatalf("err = %v, want %q", err, c.code)
				}
			}
		})
	}
}

// BenchmarkCheckRateLimited is one client over its per-IP budget: every
// check reaches the store and is refused.
func BenchmarkCheckRateLimited(b *testing.B) {
	g, _ := newGuard(b)
	q := &reusable{r: req{body: contact()}.build(), body: contact()}
	w := httptest.NewRecorder()
	for range 10 {
		_, _ = g.CheckForm(w, q.reset(), "contact")
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := g.CheckForm(w, q.reset(), "contact"); guard.AsError(err).Code != "rate_limited" {
			b.Fatalf("err = %v, want rate_limited", err)
		}
	}
}

// headerWriter is a ResponseWriter that keeps only the status and reuses
// its header map, so a benchmark counts the answer's own allocations.
type headerWriter struct {
	h      http.Header
	status int
}

func (w *headerWriter) Header() http.Header         { return w.h }
func (w *headerWriter) WriteHeader(code int)        { w.status = code }
func (w *headerWriter) Write(p []byte) (int, error) { return len(p), nil }

// BenchmarkHandler is Check plus the answer (problem+json, or success for
// a honeypot hit), as a JSON client sees it.
func BenchmarkHandler(b *testing.B) {
	cases := []struct {
		name   string
		req    req
		status int
	}{
		{"valid contact post", req{body: contact()}, 200},
		{"rejected: origin", req{hdr: map[string]string{"Origin": "https://evil.test"}, body: contact()}, 403},
		{"rejected: honeypot", req{body: contact("_gotcha", "x")}, 200},
		{"rejected: invalid email", req{body: form("name", "Ada Lovelace", "email", "not-an-address", "subject", "Hello", "message", "Hi there")}, 422},
		{"rejected: rate limited", req{body: contact()}, 429},
	}
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, _ := guard.SubmissionFrom(r.Context())
		guard.WriteSuccess(w, r, s)
	})
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			var g *guard.Guard
			if c.status == 429 {
				g, _ = newGuard(b)
			} else {
				g = benchGuard(b)
			}
			h := g.Middleware("contact")(ok)
			c.req.hdr = mergeHdr(c.req.hdr, "Accept", "application/json")
			q := &reusable{r: c.req.build(), body: c.req.body}
			w := &headerWriter{h: http.Header{}}
			for range 10 {
				clear(w.h)
				h.ServeHTTP(w, q.reset())
			}
			b.ReportAllocs()
			for b.Loop() {
				clear(w.h)
				w.status = 0
				h.ServeHTTP(w, q.reset())
				if w.status != c.status {
					b.Fatalf("status %d, want %d", w.status, c.status)
				}
			}
		})
	}
}

func mergeHdr(h map[string]string, k, v string) map[string]string {
	out := map[string]string{k: v}
	for a, b := range h {
		out[a] = b
	}
	return out
}
