package server

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// TokenIssuer issues signed single-use form tokens (captcha.FormToken).
type TokenIssuer interface {
	Field() string
	Issue(form string) (string, error)
}

// tokenHandler answers GET/HEAD with a fresh token for form:
// {"field":"_fg_token","token":"..."}, never cached, since every token is
// single use.
func tokenHandler(form string, t TokenIssuer) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Cache-Control", "no-store")
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			h.Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		tok, err := t.Issue(form)
		if err != nil {
			h.Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`{"error":"unavailable"}` + "\n"))
			return
		}
		body, _ := json.Marshal(struct {
			Field string `json:"field"`
			Token string `json:"token"`
		}{t.Field(), tok})
		h.Set("Content-Type", "application/json")
		h.Set("Content-Length", strconv.Itoa(len(body)))
		if r.Method == http.MethodHead {
			return
		}
		_, _ = w.Write(body)
	})
}

// TokenScript is the asset name of the form-token script.
const TokenScript = "formguard-token.js"

// assets serves the form-token script and delegates everything else to
// next (the proof-of-work widget), or 404 when next is nil.
func assets(next http.Handler) http.Handler {
	script, err := webFS.ReadFile("web/" + TokenScript)
	if err != nil {
		panic("server: embedded " + TokenScript + " missing: " + err.Error())
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/"+TokenScript {
			h := w.Header()
			h.Set("Content-Type", "text/javascript; charset=utf-8")
			h.Set("Cache-Control", "public, max-age=3600")
			h.Set("Access-Control-Allow-Origin", "*") // public code
			h.Set("Content-Length", strconv.Itoa(len(script)))
			if r.Method != http.MethodHead {
				_, _ = w.Write(script)
			}
			return
		}
		if next == nil {
			http.NotFound(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}
