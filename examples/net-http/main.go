// Command net-http shows formguard wrapping an existing net/http contact
// handler and a "share this page" handler. It listens on $ADDR (default
// 127.0.0.1:8080).
//
//	go run ./examples/net-http
//	curl -H 'Origin: http://127.0.0.1:8080' -d name=Ada -d email=ada@example.org \
//	     -d message=Hello http://127.0.0.1:8080/contact
package main

import (
	"log"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/formguard/formguard/guard"
)

func main() {
	addr := os.Getenv("ADDR")
	if addr == "" {
		addr = "127.0.0.1:8080"
	}
	srv, g, err := newServer(addr)
	if err != nil {
		log.Fatal(err)
	}
	defer g.Close()
	slog.Info("example listening", "addr", "http://"+addr)
	log.Fatal(srv.ListenAndServe())
}

// newServer builds the example's routes; main_test.go serves them too.
func newServer(addr string) (*http.Server, *guard.Guard, error) {
	g, err := guard.New(guard.Config{
		Domain:  "example.test",
		Origins: []string{"http://" + addr, "http://localhost:8080"},
		Forms: map[string]guard.Form{
			"contact": {To: []string{"support@example.test"}},
			// Real sites protect share forms with a CAPTCHA or proof-of-work;
			// see the captcha package.
			"share": {Kind: guard.KindShare, AllowNoBotDefence: true},
		},
	})
	if err != nil {
		return nil, nil, err
	}
	mux := http.NewServeMux()
	// The site's existing handlers only ever see accepted submissions.
	mux.Handle("POST /contact", g.Handler("contact", http.HandlerFunc(deliver)))
	mux.Handle("POST /share", g.Handler("share", http.HandlerFunc(deliver)))
	return &http.Server{
		Addr:              addr,
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
		MaxHeaderBytes:    16 << 10,
	}, g, nil
}

// deliver stands for the site's own mail code; with formguard's mailer it
// becomes m.Deliver(r.Context(), s).
func deliver(w http.ResponseWriter, r *http.Request) {
	s, _ := guard.SubmissionFrom(r.Context())
	slog.Info("accepted", "id", s.ID, "form", s.Form, "to", s.Recipients, "reply_to", s.ReplyTo)
	guard.WriteSuccess(w, r, s)
}
