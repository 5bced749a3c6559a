package guard

import (
	"bytes"
	"context"
	"encoding/json"
	"github.com/formguard/formguard/post"
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
	if isJSONType(r.Header.Get("Content-Type")) {
		return true
	}
	for rest := r.Header.Get("Accept"); rest != ""; {
		var a string
		a, rest, _ = strings.Cut(rest, ",")
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

// isJSONType reports whether a Content-Type value parses as
// application/json (mime.ParseMediaType without error). Only a value
// whose type is application/json, in any case, needs parsing at all.
func isJSONType(ct string) bool {
	if ct == "application/json" {
		return true
	}
	mt, _, hasParams := strings.Cut(ct, ";")
	if !strings.EqualFold(strings.TrimSpace(mt), "application/json") {
		return false
	}
	if !hasParams {
		return true
	}
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && mt == "application/json"
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
// success, so bots cannot tell. An err that is not a guard *Error is
// answered as ErrInternal.
func WriteError(w http.ResponseWriter, r *http.Request, err error) {
	writeError(w, r, AsError(err))
}

func writeError(w http.ResponseWriter, r *http.Request, e *Error) {
	if e.Code == ErrHoneypot.Code {
		d := post.Submission{}
		if e.decoy != nil {
			d = *e.decoy
		}
		d.ID = newID()
		WriteSuccess(w, r, &d)
		return
	}
	h := w.Header()
	retry := retrySeconds(e.RetryAfter)
	if retry > 0 {
		var buf [20]byte
		s := strconv.AppendInt(buf[:0], int64(retry), 10)
		// The rate-limit headers usually carry this very value already.
		if v := h[headerRetryAfter]; len(v) != 1 || v[0] != string(s) {
			h[headerRetryAfter] = []string{string(s)}
		}
	}
	if WantsJSON(r) {
		v := new([3]string) // one allocation for the three values
		v[0], v[1], v[2] = "no-store", "application/problem+json", "nosniff"
		h[headerCacheControl], h[headerContentType], h[headerNoSniff] = v[0:1:1], v[1:2:2], v[2:3:3]
		w.WriteHeader(e.Status)
		writeProblem(w, e, retry)
		return
	}
	h.Set(headerCacheControl, "no-store")
	if rd, ok := r.Context().Value(ctxRedirects).(redirects); ok && rd.failure != "" && e.Status != http.StatusMethodNotAllowed {
		http.Redirect(w, r, addQuery(rd.failure, "error", e.Code), http.StatusSeeOther)
		return
	}
	writePage(w, e.Status, "Not sent", e.Message)
}

// Header names, in canonical form, so they go straight into the map.
const (
	headerCacheControl = "Cache-Control"
	headerContentType  = "Content-Type"
	headerNoSniff      = "X-Content-Type-Options"
	headerRetryAfter   = "Retry-After"
)

// problemBody is the problem+json answer of a sentinel error, encoded
// once: body is the whole answer, body[:len(body)-2] the object without
// its closing brace, for appending retry_after.
type problemBody struct {
	status  int
	message string
	body    []byte
}

var problemBodies = func() map[string]*problemBody {
	m := map[string]*problemBody{}
	for _, e := range []*Error{ErrUnknownForm, ErrMethod, ErrTooLarge, ErrContentType, ErrOrigin, ErrMalformed,
		ErrFilesNotAllowed, ErrDuplicateField, ErrForbiddenField, ErrUnknownField, ErrInvalidField, ErrHeaderInjection,
		ErrInvalidEmail, ErrNoRecipient, ErrInvalidRecipient, ErrTooManyRecipients, ErrTooManyLinks, ErrOffsiteURL,
		ErrOffsiteRedirect, ErrCaptchaMissing, ErrCaptchaInvalid, ErrCaptchaUnavailable, ErrTokenInvalid, ErrTooFast,
		ErrRateLimited, ErrBanned, ErrLimiterUnavailable, ErrInternal, ErrBadClient} {
		var b bytes.Buffer
		_ = json.NewEncoder(&b).Encode(problem{Type: "about:blank", Title: e.Message, Status: e.Status, Code: e.Code})
		m[e.Code] = &problemBody{status: e.Status, message: e.Message, body: b.Bytes()}
	}
	return m
}()

// writeProblem writes e as RFC 9457 problem details, byte for byte what
// json.Encoder writes for problem, from the pre-encoded answer when e is
// one of the package's sentinels.
func writeProblem(w http.ResponseWriter, e *Error, retry int) {
	pb := problemBodies[e.Code]
	if pb == nil || pb.status != e.Status || pb.message != e.Message {
		_ = json.NewEncoder(w).Encode(problem{Type: "about:blank", Title: e.Message, Status: e.Status, Code: e.Code, RetryAfter: retry})
		return
	}
	if retry <= 0 {
		_, _ = w.Write(pb.body)
		return
	}
	b := make([]byte, 0, len(pb.body)+24)
	b = append(b, pb.body[:len(pb.body)-2]...) // without "}\n"
	b = append(b, `,"retry_after":`...)
	b = strconv.AppendInt(b, int64(retry), 10)
	b = append(b, "}\n"...)
	_, _ = w.Write(b)
}

// WriteSuccess answers an accepted post: {"ok":true,"id":...} for JSON
// clients; otherwise a 303 redirect to the visitor's validated "_next"
// target or the form's SuccessURL, or a small thank-you page.
func WriteSuccess(w http.ResponseWriter, r *http.Request, s *post.Submission) {
	h := w.Header()
	if WantsJSON(r) {
		v := new([2]string)
		v[0], v[1] = "no-store", "application/json"
		h[headerCacheControl], h[headerContentType] = v[0:1:1], v[1:2:2]
		w.WriteHeader(http.StatusOK)
		if !isIDSafe(s.ID) {
			_ = json.NewEncoder(w).Encode(struct {
				OK bool   `json:"ok"`
				ID string `json:"id"`
			}{true, s.ID})
			return
		}
		b := make([]byte, 0, len(`{"ok":true,"id":""}`)+len(s.ID)+1)
		b = append(b, `{"ok":true,"id":"`...)
		b = append(b, s.ID...)
		b = append(b, "\"}\n"...)
		_, _ = w.Write(b)
		return
	}
	h.Set(headerCacheControl, "no-store")
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

// isIDSafe reports whether id needs no JSON escaping (newID's alphabet, and
// any other letters, digits, '-' and '_').
func isIDSafe(id string) bool {
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
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
