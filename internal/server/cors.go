package server

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/formguard/formguard/guard"
)

// CORSMaxAge is how long browsers may cache a preflight answer (seconds).
const CORSMaxAge = "600"

// cors answers cross-origin requests from the configured origins only. It
// never allows credentials: a form post needs no cookies.
type cors struct {
	origins map[string]bool
}

func newCORS(origins []string) (*cors, error) {
	c := &cors{origins: make(map[string]bool, len(origins))}
	for _, o := range origins {
		n, err := guard.NormaliseOrigin(o)
		if err != nil {
			return nil, fmt.Errorf("server: Origins: %v", err)
		}
		c.origins[n] = true
	}
	return c, nil
}

// apply sets the CORS response headers when r comes from an allowed origin
// and reports whether it does.
func (c *cors) apply(w http.ResponseWriter, r *http.Request) bool {
	h := w.Header()
	if v := h["Vary"]; v == nil {
		h["Vary"] = varyOrigin
	} else {
		h["Vary"] = append(v, "Origin")
	}
	o := r.Header.Get("Origin")
	if o == "" || !c.allowed(o) {
		return false
	}
	h["Access-Control-Allow-Origin"] = []string{o}
	h["Access-Control-Expose-Headers"] = exposeHeaders
	return true
}

// allowed looks o up as given, and lower-cased only when lower-casing
// could change it (ASCII capitals or any non-ASCII byte).
func (c *cors) allowed(o string) bool {
	if c.origins[o] {
		return true
	}
	for i := 0; i < len(o); i++ {
		if 'A' <= o[i] && o[i] <= 'Z' || o[i] >= 0x80 {
			return c.origins[strings.ToLower(o)]
		}
	}
	return false
}

// preflight answers an OPTIONS request for a route accepting method.
func (c *cors) preflight(w http.ResponseWriter, r *http.Request, allowed bool, method string) {
	h := w.Header()
	h.Set("Allow", method+", OPTIONS")
	if !allowed {
		// Not a preflight from an allowed origin: no CORS headers, so the
		// browser refuses the real request.
		w.WriteHeader(http.StatusNoContent)
		return
	}
	h.Add("Vary", "Access-Control-Request-Method")
	h.Add("Vary", "Access-Control-Request-Headers")
	h.Set("Access-Control-Allow-Methods", method)
	h.Set("Access-Control-Allow-Headers", "Content-Type, Accept")
	h.Set("Access-Control-Max-Age", CORSMaxAge)
	w.WriteHeader(http.StatusNoContent)
}
