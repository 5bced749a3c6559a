package widget

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"net/http"
	"path"
	"strconv"
)

// Asset names, as served by Handler.
const (
	ScriptName = "formguard-pow.js"
	WorkerName = "formguard-pow-worker.js"
	// ContentType is the JavaScript media type (RFC 9239).
	ContentType = "text/javascript; charset=utf-8"
	// CacheControl lets browsers and CDNs cache the assets for an hour;
	// the ETag makes revalidation cheap after that.
	CacheControl = "public, max-age=3600"
)

//go:embed formguard-pow.js formguard-pow-worker.js
var files embed.FS

type asset struct {
	body []byte
	etag string
}

var assets = func() map[string]asset {
	m := map[string]asset{}
	for _, name := range []string{ScriptName, WorkerName} {
		b, err := files.ReadFile(name)
		if err != nil {
			panic("widget: missing embedded " + name)
		}
		sum := sha256.Sum256(b)
		m[name] = asset{body: b, etag: `"` + hex.EncodeToString(sum[:12]) + `"`}
	}
	return m
}()

// Asset returns the embedded file name (ScriptName or WorkerName), or nil.
func Asset(name string) []byte {
	a, ok := assets[name]
	if !ok {
		return nil
	}
	return append([]byte(nil), a.body...)
}

// Handler serves the widget's two files by the last element of the request
// path, whatever prefix it is mounted under; any other name is 404. It
// answers GET and HEAD with a JavaScript content type, an ETag (304 on
// If-None-Match) and CORS open to any origin, because the files are public
// code and a page on another origin loads the worker through fetch.
func Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		a, ok := assets[path.Base(r.URL.Path)]
		if !ok {
			http.NotFound(w, r)
			return
		}
		h := w.Header()
		h.Set("Content-Type", ContentType)
		h.Set("Cache-Control", CacheControl)
		h.Set("ETag", a.etag)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Access-Control-Allow-Origin", "*")
		if r.Header.Get("If-None-Match") == a.etag {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		h.Set("Content-Length", strconv.Itoa(len(a.body)))
		if r.Method == http.MethodHead {
			return
		}
		_, _ = w.Write(a.body)
	})
}
