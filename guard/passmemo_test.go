package guard

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/formguard/formguard/guard/ratelimit"
)

// memoGuard is a Guard whose contact form admits one post per client an
// hour, on a clock that stands still unless moved.
func memoGuard(t *testing.T) (*Guard, *time.Time) {
	t.Helper()
	now := t0
	g, err := New(Config{
		Domain: "example.test", Origins: []string{"https://example.test"},
		Now: func() time.Time { return now }, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		KeySecret: []byte("0123456789abcdef0123456789abcdef"),
		Forms: map[string]Form{"contact": {To: []string{"support@example.test"},
			Limits: Limits{PerIP: ratelimit.Limit{Count: 1, Period: time.Hour}}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	return g, &now
}

func memoPost(g *Guard, ct, body string) *httptest.ResponseRecorder {
	h := g.Middleware("contact")(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, _ := SubmissionFrom(r.Context())
		WriteSuccess(w, r, s)
	}))
	r := httptest.NewRequest(http.MethodPost, "/f/contact", strings.NewReader(body))
	r.Header.Set("Content-Type", ct)
	r.Header.Set("Origin", "https://example.test")
	r.Header.Set("Accept", "application/json")
	r.RemoteAddr = "192.0.2.10:4711"
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func memoBody(kv ...string) string {
	v := url.Values{"name": {"Ada"}, "email": {"ada@example.org"}, "message": {"Hi"}}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	return v.Encode()
}

// TestPassMemoAnswersAsTheFullCheck: a post refused by the client's limit
// is remembered, and the same post again is refused from the memo with the
// answer the full check gave, byte for byte; a post differing in its body
// or Content-Type is checked in full and keeps its own answer, the
// honeypot's decoy included.
func TestPassMemoAnswersAsTheFullCheck(t *testing.T) {
	const ct = "application/x-www-form-urlencoded"
	g, now := memoGuard(t)
	body := memoBody()
	if w := memoPost(g, ct, body); w.Code != http.StatusOK {
		t.Fatalf("first post: %d %s", w.Code, w.Body)
	}
	if g.passed.has("contact", ct, []byte(body)) {
		t.Fatal("an admitted post was remembered")
	}
	full := memoPost(g, ct, body)
	if full.Code != http.StatusTooManyRequests || !g.passed.has("contact", ct, []byte(body)) {
		t.Fatalf("second post: %d, remembered %v", full.Code, g.passed.has("contact", ct, []byte(body)))
	}
	memo := memoPost(g, ct, body)
	if memo.Code != full.Code || memo.Body.String() != full.Body.String() || !equalHeaders(memo.Header(), full.Header()) {
		t.Fatalf("from the memo: %d %v %s\nfull check: %d %v %s", memo.Code, memo.Header(), memo.Body, full.Code, full.Header(), full.Body)
	}
	for _, c := range []struct {
		name, ct, body string
		code           int
	}{
		{"invalid field", ct, memoBody("email", "not-an-address"), http.StatusUnprocessableEntity},
		{"honeypot", ct, memoBody("_gotcha", "x"), http.StatusOK},
		{"other Content-Type", "text/plain", body, http.StatusUnsupportedMediaType},
	} {
		if w := memoPost(g, c.ct, c.body); w.Code != c.code {
			t.Errorf("%s from a limited client: %d %s, want %d", c.name, w.Code, w.Body, c.code)
		}
	}
	// The memo holds no decision: once the budget is back, the post that
	// was refused from it is admitted.
	*now = now.Add(time.Hour)
	if w := memoPost(g, ct, body); w.Code != http.StatusOK {
		t.Fatalf("after the refill: %d %s", w.Code, w.Body)
	}
}

func equalHeaders(a, b http.Header) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if strings.Join(v, "\n") != strings.Join(b[k], "\n") {
			return false
		}
	}
	return true
}

// TestPassMemoIsBounded: at most passMemoSlots entries whatever is added,
// none for a body over passMemoMaxBody, and a post sharing a slot with
// another is not taken for it.
func TestPassMemoIsBounded(t *testing.T) {
	g, _ := memoGuard(t)
	m := &g.passed
	for i := range 4 * passMemoSlots {
		m.add("contact", "ct", []byte(strings.Repeat("x", i)))
	}
	held := 0
	for i := range m.slots {
		if e := m.slots[i].Load(); e != nil {
			held++
			if len(e.body) > passMemoMaxBody {
				t.Errorf("slot %d holds a body of %d bytes", i, len(e.body))
			}
		}
	}
	if held > passMemoSlots || m.has("contact", "ct", []byte(strings.Repeat("x", passMemoMaxBody+1))) {
		t.Fatalf("%d entries held, or a body over the bound remembered", held)
	}
	a := []byte("a")
	m.add("contact", "ct", a)
	for i := 0; ; i++ {
		b := []byte(strings.Repeat("b", i+1))
		if m.slot("contact", "ct", b) == m.slot("contact", "ct", a) {
			if m.has("contact", "ct", b) || !m.has("contact", "ct", a) {
				t.Fatal("a colliding post was taken for the remembered one")
			}
			break
		}
	}
}
