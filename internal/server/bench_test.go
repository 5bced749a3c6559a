package server

import (
	"context"
	"github.com/formguard/formguard/post"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/formguard/formguard/guard"
	"github.com/formguard/formguard/guard/ratelimit"
)

// benchServer is the service's HTTP layer as bench/load measures it: one
// contact form, the per-client tiers at their defaults (per IP 5/h, per
// sender 3/h), the per-form and global tiers lifted (or every tier, with
// lift), a JSON decision log formatted and discarded, metrics, CORS.
func benchServer(b *testing.B, lift bool) *Server {
	b.Helper()
	big := ratelimit.Limit{Count: 1_000_000_000, Period: time.Second}
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	m := NewMetrics(MetricsConfig{})
	f := guard.Form{To: []string{"support@example.test"}}
	f.Limits.PerForm = big
	if lift {
		f.Limits = guard.Limits{PerIP: big, PerSender: big, PerForm: big, PerRecipient: big}
	}
	onErr, onOK := m.GuardHandlers()
	g, err := guard.New(guard.Config{
		Domain: "example.test", Origins: []string{"https://example.test"}, TrustedProxies: []string{"127.0.0.1"},
		Forms: map[string]guard.Form{"contact": f}, Global: big, Logger: log,
		KeySecret:    []byte("formguard-bench-key-secret-0123"),
		ErrorHandler: onErr, SuccessHandler: onOK,
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { g.Close() })
	s, err := New(Config{
		Guard: g, Forms: []string{"contact"}, Origins: []string{"https://example.test"}, Metrics: m, Logger: log,
		Deliver: func(context.Context, *post.Submission) error { return nil },
	})
	if err != nil {
		b.Fatal(err)
	}
	return s
}

// benchReq is a reusable post: the body is reset before every use.
type benchReq struct {
	r    *http.Request
	body string
	rd   strings.Reader
}

func newBenchReq(origin, body string) *benchReq {
	q := &benchReq{body: body}
	q.r, _ = http.NewRequest(http.MethodPost, "http://example.test/f/contact", nil)
	q.r.RemoteAddr = "127.0.0.1:4711"
	q.r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	q.r.Header.Set("Accept", "application/json")
	q.r.Header.Set("Origin", origin)
	q.r.Header.Set("X-Forwarded-For", "192.0.2.10")
	q.r.ContentLength = int64(len(body))
	return q
}

func (q *benchReq) reset() *http.Request {
	q.rd.Reset(q.body)
	q.r.Body = io.NopCloser(&q.rd)
	return q.r
}

// discardWriter is a ResponseWriter that keeps only the status, reusing
// its header map, so a benchmark counts the handler's own allocations.
type discardWriter struct {
	h      http.Header
	status int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) WriteHeader(code int)        { w.status = code }
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }

func benchBody(kv ...string) string {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Add(kv[i], kv[i+1])
	}
	return v.Encode()
}

func benchContact(extra ...string) string {
	return benchBody(append([]string{"name", "Ada Lovelace", "email", "ada@example.org", "subject", "Hello",
		"message", "Hi there,\r\nI read your article and have a question about it.\r\nRegards, Ada"}, extra...)...)
}

// BenchmarkServer is bench/load's mixes in process, without the network:
// what internal/server and the guard cost per request, and allocate.
func BenchmarkServer(b *testing.B) {
	const site, evil = "https://example.test", "https://evil.test"
	cases := []struct {
		name  string
		lift  bool
		reqs  []*benchReq
		codes []int
	}{
		{"reject: honeypot", false, []*benchReq{newBenchReq(site, benchContact("_gotcha", "x"))}, []int{200}},
		{"reject: bad origin", false, []*benchReq{newBenchReq(evil, benchContact())}, []int{403}},
		{"reject: invalid email", false, []*benchReq{newBenchReq(site, benchBody("name", "Ada Lovelace", "email", "not-an-address", "subject", "Hello", "message", "Hi there"))}, []int{422}},
		{"limited: one client", false, []*benchReq{newBenchReq(site, benchContact())}, []int{429}},
		{"accepted", true, []*benchReq{newBenchReq(site, benchContact())}, []int{200}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			s := benchServer(b, c.lift)
			w := &discardWriter{h: make(http.Header, 16)}
			if !c.lift { // spend the client's budget first: from here on, 429
				for range 8 {
					clear(w.h)
					s.ServeHTTP(w, c.reqs[0].reset())
				}
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				clear(w.h)
				w.status = 0
				s.ServeHTTP(w, c.reqs[i%len(c.reqs)].reset())
				if w.status != c.codes[i%len(c.codes)] {
					b.Fatalf("status %d, want %d", w.status, c.codes[i%len(c.codes)])
				}
				i++
			}
		})
	}
}
