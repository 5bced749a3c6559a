package guard_test

import (
	"encoding/json"
	"maps"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/formguard/formguard/guard"
)

var idShape = regexp.MustCompile(`^[a-z2-7]{24}$`)

// TestHoneypotAnswerIsAnAccept: Handler answers a honeypot hit exactly as
// an accept answered by WriteSuccess: same status, same header fields and
// values, same body but for the submission ID, which has the same shape
// (issue 14, item 6).
func TestHoneypotAnswerIsAnAccept(t *testing.T) {
	g, _ := newGuard(t)
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, _ := guard.SubmissionFrom(r.Context())
		guard.WriteSuccess(w, r, s)
	})
	json := map[string]string{"Accept": "application/json"}
	cases := []struct {
		name, form, next string
		hdr              map[string]string
	}{
		{"JSON answer", "contact", "", json},
		{"JSON body", "contact", "", map[string]string{"Content-Type": "application/json"}},
		{"thank-you page", "contact", "", nil},
		{"redirect to the form's success page", "pages", "", nil},
		{"redirect to a same-site _next", "contact", "/thanks?x=1", nil},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := g.Middleware(tc.form)(ok)
			kv := []string{"name", "Ada", "email", sender(i), "message", "hi"}
			if tc.next != "" {
				kv = append(kv, "_next", tc.next)
			}
			body, trap := form(kv...), form(append(kv, "_gotcha", "x")...)
			if tc.hdr["Content-Type"] == "application/json" {
				body = `{"name":"Ada","email":"` + sender(i) + `","message":"hi"}`
				trap = `{"name":"Ada","email":"` + sender(i) + `","message":"hi","_gotcha":"x"}`
			}
			real := httptest.NewRecorder()
			h.ServeHTTP(real, req{remote: "198.51.100." + string(rune('1'+i)) + ":1", body: body, hdr: tc.hdr}.build())
			decoy := httptest.NewRecorder()
			h.ServeHTTP(decoy, req{remote: "203.0.113." + string(rune('1'+i)) + ":1", body: trap, hdr: tc.hdr}.build())
			if real.Code != decoy.Code || real.Code >= 400 {
				t.Fatalf("status: accept %d, honeypot %d", real.Code, decoy.Code)
			}
			if !maps.EqualFunc(real.Header(), decoy.Header(), func(a, b []string) bool { return strings.Join(a, "\n") == strings.Join(b, "\n") }) {
				t.Fatalf("headers differ:\naccept   %v\nhoneypot %v", real.Header(), decoy.Header())
			}
			rb, db := withoutID(t, real), withoutID(t, decoy)
			if rb != db {
				t.Fatalf("bodies differ:\naccept   %q\nhoneypot %q", rb, db)
			}
		})
	}
}

// withoutID returns w's body with a JSON answer's submission ID replaced
// by a placeholder, after checking the ID's shape.
func withoutID(t *testing.T, w *httptest.ResponseRecorder) string {
	t.Helper()
	b := w.Body.String()
	if !strings.HasPrefix(w.Header().Get("Content-Type"), "application/json") {
		return b
	}
	var v struct{ ID string }
	if err := json.Unmarshal(w.Body.Bytes(), &v); err != nil || !idShape.MatchString(v.ID) {
		t.Fatalf("answer %q: id %q, %v", b, v.ID, err)
	}
	return strings.Replace(b, v.ID, "ID", 1)
}
