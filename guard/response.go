package guard

import (
	"context"
	"encoding/json"
	"html/template"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Redirects carries a form's same-site answer pages to WriteError and
// WriteSuccess; Handler puts it in the request context.
type redirects struct{ success, failure string }

const ctxRedirects ctxKey = 100

func withRedirects(r *http.Request, p *policy) *http.Request {
	if p.successTo == "" && p.errorTo == "" {
		return r
	}
	return r.WithContext(context.WithValue(r.Context(), ctxRedirects, redirects{p.successTo, p.errorTo}))
}

// WantsJSON reports whether r should be answered with JSON: it was sent as
// JSON, or its Accept header names JSON before (or without) HTML.
func WantsJSON(r *http.Request) bool {
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

// problem is an RFC 9457 problem details object with formguard's stable code.
type problem struct {
	Type       string `json:"type"`
	Title      string `json:"title"`
	Status     int    `json:"status"`
	Code       string `json:"code"`
	RetryAfter int    `json:"retry_after,omitempty"`
}

func retrySeconds(d time.Duration) int {
	if d <= 0 {
		return 0
	}
	return int((d + time.Second - 1) / time.Second)
}

// WriteError answers a rejected post: application/problem+json (RFC 9457)
// with the stable code for JSON clients; otherwise a 303 redirect to the
// form's ErrorURL (with ?error=CODE) or a small HTML page. Only the error's
// fixed Message is shown, never its cause. A honeypot error is answered as
// success, so bots cannot tell.
func WriteError(w http.ResponseWriter, r *http.Request, e *Error) {
	if e.Code == ErrHoneypot.Code {
		WriteSuccess(w, r, &Submission{ID: newID()})
		return
	}
	h := w.Header()
	if s := retrySeconds(e.RetryAfter); s > 0 {
		h.Set("Retry-After", strconv.Itoa(s))
	}
	h.Set("Cache-Control", "no-store")
	if WantsJSON(r) {
		h.Set("Content-Type", "application/problem+json")
		h.Set("X-Content-Type-Options", "nosniff")
		w.WriteHeader(e.Status)
		_ = json.NewEncoder(w).Encode(problem{Type: "about:blank", Title: e.Message, Status: e.Status, Code: e.Code, RetryAfter: retrySeconds(e.RetryAfter)})
		return
	}
	if rd, ok := r.Context().Value(ctxRedirects).(redirects); ok && rd.failure != "" && e.Status != http.StatusMethodNotAllowed {
		http.Redirect(w, r, addQuery(rd.failure, "error", e.Code), http.StatusSeeOther)
		return
	}
	writePage(w, e.Status, "Not sent", e.Message)
}

// WriteSuccess answers an accepted post: {"ok":true,"id":...} for JSON
// clients; otherwise a 303 redirect to the visitor's validated "_next"
// target or the form's SuccessURL, or a small thank-you page.
func WriteSuccess(w http.ResponseWriter, r *http.Request, s *Submission) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	if WantsJSON(r) {
		h.Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_ = json.NewEncoder(w).Encode(struct {
			OK bool   `json:"ok"`
			ID string `json:"id"`
		}{true, s.ID})
		return
	}
	target := s.Next
	if target == "" {
		if rd, ok := r.Context().Value(ctxRedirects).(redirects); ok {
			target = rd.success
		}
	}
	if target != "" {
		http.Redirect(w, r, target, http.StatusSeeOther)
		return
	}
	writePage(w, http.StatusOK, "Thank you", "Your message has been sent.")
}

func addQuery(u, k, v string) string {
	sep := "?"
	if strings.Contains(u, "?") {
		sep = "&"
	}
	return u + sep + url.QueryEscape(k) + "=" + url.QueryEscape(v)
}

var page = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>{{.Title}}</title></head>
<body style="font-family:system-ui,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem">
<h1>{{.Title}}</h1><p>{{.Message}}</p><p><a href="javascript:history.back()">Back</a></p>
</body></html>
`))

func writePage(w http.ResponseWriter, status int, title, msg string) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	w.WriteHeader(status)
	_ = page.Execute(w, struct{ Title, Message string }{title, msg})
}
