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
		f.Limits = guard.Limits{PerIP: big, PerSender: big, PerForm: big, PerRecipient: big}
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
