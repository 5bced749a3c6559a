package guard

import (
	"encoding/json"
	"github.com/formguard/formguard/post"
	"mime"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// wantsJSONReference is WantsJSON as it was first written, the reference
// for the allocation-free version.
func wantsJSONReference(r *http.Request) bool {
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err == nil && mt == "application/json" {
		return true
	}
	for _, a := range strings.Split(r.Header.Get("Accept"), ",") {
		mt, _, _ := strings.Cut(strings.TrimSpace(a), ";")
		switch {
		case mt == "text/html":
			return false
		case mt == "application/json", strings.HasSuffix(mt, "+json"):
			return true
		}
	}
	return false
}

func FuzzWantsJSON(f *testing.F) {
	for _, ct := range []string{"", "application/json", "Application/JSON ; charset=utf-8", "application/json;", "application/json; x",
		"application/x-www-form-urlencoded", "multipart/form-data; boundary=x", " application/json", "application/jsonx", "application/json;;"} {
		f.Add(ct, "text/html, application/json")
		f.Add(ct, "application/problem+json;q=0.9, */*")
	}
	f.Fuzz(func(t *testing.T, ct, accept string) {
		r := httptest.NewRequest(http.MethodPost, "/", nil)
		r.Header.Set("Content-Type", ct)
		r.Header.Set("Accept", accept)
		if got, want := WantsJSON(r), wantsJSONReference(r); got != want {
			t.Fatalf("WantsJSON(Content-Type %q, Accept %q) = %v, want %v", ct, accept, got, want)
		}
	})
}

// TestWriteErrorBody: the pre-encoded answers are what json.Encoder writes.
func TestWriteErrorBody(t *testing.T) {
	custom := &Error{Status: 503, Code: "outbox_unavailable", Message: "Try <later> & again.", RetryAfter: 30 * time.Second}
	changed := *ErrOrigin
	changed.Message = "Another message."
	errs := []*Error{custom, &changed}
	for code, pb := range problemBodies {
		e := Error{Status: pb.status, Code: code, Message: pb.message}
		errs = append(errs, &e)
		limited := e
		limited.RetryAfter = 1500 * time.Millisecond
		errs = append(errs, &limited)
	}
	for _, e := range errs {
		w := httptest.NewRecorder()
		r := httptest.NewRequest(http.MethodPost, "/", nil)
		r.Header.Set("Accept", "application/json")
		WriteError(w, r, e)
		var want strings.Builder
		_ = json.NewEncoder(&want).Encode(problem{Type: "about:blank", Title: e.Message, Status: e.Status, Code: e.Code, RetryAfter: retrySeconds(e.RetryAfter)})
		if w.Body.String() != want.String() || w.Code != e.Status {
			t.Errorf("%s: %d %q, want %d %q", e.Code, w.Code, w.Body.String(), e.Status, want.String())
		}
		if w.Header().Get("Content-Type") != "application/problem+json" || w.Header().Get("Cache-Control") != "no-store" ||
			w.Header().Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: headers %v", e.Code, w.Header())
		}
	}
}

func TestWriteSuccessBody(t *testing.T) {
	for _, id := range []string{"abcdefghijklmnopqrstuvwx", "", "a\"b<c>", "é"} {
		w := httptest.NewRecorder()
		r := httptest.NewRequest(http.MethodPost, "/", nil)
		r.Header.Set("Accept", "application/json")
		WriteSuccess(w, r, &post.Submission{ID: id})
		var want strings.Builder
		_ = json.NewEncoder(&want).Encode(struct {
			OK bool   `json:"ok"`
			ID string `json:"id"`
		}{true, id})
		if w.Body.String() != want.String() || w.Header().Get("Content-Type") != "application/json" || w.Header().Get("Cache-Control") != "no-store" {
			t.Errorf("%q: %q %v, want %q", id, w.Body.String(), w.Header(), want.String())
		}
	}
}

// FuzzNormalOrigin: an origin isNormalOrigin calls normal is never turned
// into a different, allowed one by normaliseOrigin.
func FuzzNormalOrigin(f *testing.F) {
	for _, o := range []string{"https://example.test", "http://a:80", "https://a:443", "http://a:b:c", "https://", "http://x.test:8080", "http://a:", "https://a.-"} {
		f.Add(o)
	}
	f.Fuzz(func(t *testing.T, o string) {
		if !isNormalOrigin(o) {
			return
		}
		if n, ok := normaliseOrigin(o); ok && n != o {
			t.Fatalf("isNormalOrigin(%q), but it normalises to %q", o, n)
		}
	})
}
