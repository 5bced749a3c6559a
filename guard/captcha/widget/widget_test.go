package widget_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/formguard/formguard/guard/captcha/widget"
)

func TestHandler(t *testing.T) {
	h := widget.Handler()
	tests := []struct {
		name   string
		method string
		path   string
		inm    bool // send the asset's ETag in If-None-Match
		status int
		want   string // substring of the body
	}{
		{"serves the script under any prefix", "GET", "/assets/formguard/formguard-pow.js", false, 200, "data-formguard-pow"},
		{"serves the worker", "GET", "/formguard-pow-worker.js", false, 200, "crypto.subtle.digest"},
		{"answers HEAD without a body", "HEAD", "/formguard-pow.js", false, 200, ""},
		{"revalidates with the ETag", "GET", "/x/formguard-pow.js", true, 304, ""},
		{"refuses unknown names", "GET", "/x/widget.go", false, 404, ""},
		{"refuses directory listings", "GET", "/x/", false, 404, ""},
		{"refuses POST", "POST", "/formguard-pow.js", false, 405, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(tc.method, tc.path, nil)
			if tc.inm {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, httptest.NewRequest("GET", tc.path, nil))
				req.Header.Set("If-None-Match", rec.Header().Get("ETag"))
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tc.status {
				t.Fatalf("status %d, want %d", rec.Code, tc.status)
			}
			if tc.status != 200 && tc.status != 304 {
				return
			}
			hdr := rec.Header()
			if hdr.Get("Content-Type") != widget.ContentType || hdr.Get("X-Content-Type-Options") != "nosniff" || hdr.Get("ETag") == "" {
				t.Errorf("headers %v", hdr)
			}
			if tc.want != "" && !strings.Contains(rec.Body.String(), tc.want) {
				t.Errorf("body lacks %q", tc.want)
			}
			if (tc.method == "HEAD" || tc.status == 304) && rec.Body.Len() != 0 {
				t.Error("unexpected body")
			}
		})
	}
}

func TestAssetsAreSmall(t *testing.T) {
	for _, name := range []string{widget.ScriptName, widget.WorkerName} {
		b := widget.Asset(name)
		if len(b) == 0 || len(b) > 16<<10 {
			t.Errorf("%s is %d bytes; the widget should stay small", name, len(b))
		}
	}
	if widget.Asset("nope") != nil {
		t.Error("Asset of an unknown name")
	}
}

func ExampleHandler() {
	mux := http.NewServeMux()
	mux.Handle("GET /formguard/", widget.Handler())
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest("GET", "/formguard/formguard-pow.js", nil))
	fmt.Println(rec.Code, rec.Header().Get("Content-Type"))
	// Output: 200 text/javascript; charset=utf-8
}
