// Command net-http shows formguard wrapping an existing net/http contact
// handler and a "share this page" handler: the contact form carries a
// signed single-use form token, the share form the built-in proof-of-work.
// It listens on $ADDR (default 127.0.0.1:8080); open it in a browser.
//
//	go run ./examples/net-http
package main

import (
	"crypto/rand"
	"html/template"
	"log"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/formguard/formguard/guard"
	"github.com/formguard/formguard/guard/captcha"
	"github.com/formguard/formguard/guard/captcha/widget"
)

func main() {
	addr := os.Getenv("ADDR")
	if addr == "" {
		addr = "127.0.0.1:8080"
	}
	app, err := newApp(addr, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer app.g.Close()
	srv := &http.Server{
		Addr:              addr,
		Handler:           app.mux,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
		MaxHeaderBytes:    16 << 10,
	}
	slog.Info("example listening", "addr", "http://"+addr)
	log.Fatal(srv.ListenAndServe())
}

type app struct {
	g      *guard.Guard
	tokens *captcha.FormToken
	pow    *captcha.PoW
	mux    *http.ServeMux
}

// newApp builds the example's routes; now is the clock (nil: time.Now).
func newApp(addr string, now func() time.Time) (*app, error) {
	if now == nil {
		now = time.Now
	}
	key := make([]byte, 32) // in production: a fixed secret from config
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	a := &app{mux: http.NewServeMux()}
	var err error
	if a.tokens, err = captcha.NewFormToken(captcha.FormTokenConfig{Keys: [][]byte{key}, Now: now}); err != nil {
		return nil, err
	}
	a.pow, err = captcha.NewPoW(captcha.PoWConfig{
		Keys: [][]byte{key},
		Now:  now,
		// Clients the guard has rate-limited get harder puzzles.
		Escalate: func(clientKey string) int64 { return a.g.Escalate(clientKey) },
	})
	if err != nil {
		return nil, err
	}
	a.g, err = guard.New(guard.Config{
		Domain:  "example.test",
		Origins: []string{"http://" + addr, "http://localhost:8080"},
		Now:     now,
		Forms: map[string]guard.Form{
			"contact": {To: []string{"support@example.test"}, Token: a.tokens},
			"share":   {Kind: guard.KindShare, Captcha: a.pow},
		},
	})
	if err != nil {
		return nil, err
	}
	// The site's existing handlers only ever see accepted submissions.
	a.mux.Handle("POST /contact", a.g.Handler("contact", http.HandlerFunc(deliver)))
	a.mux.Handle("POST /share", a.g.Handler("share", http.HandlerFunc(deliver)))
	a.mux.Handle("GET /share/challenge", a.pow.ChallengeHandler("share", a.g.ChallengeKey))
	a.mux.Handle("GET /formguard/", widget.Handler())
	a.mux.HandleFunc("GET /{$}", a.page)
	return a, nil
}

// deliver stands for the site's own mail code; with formguard's mailer it
// becomes m.Deliver(r.Context(), s) (see package mailer).
func deliver(w http.ResponseWriter, r *http.Request) {
	s, _ := guard.SubmissionFrom(r.Context())
	slog.Info("accepted", "id", s.ID, "form", s.Form, "to", s.Recipients, "reply_to", s.ReplyTo)
	guard.WriteSuccess(w, r, s)
}

var pageTmpl = template.Must(template.New("p").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>formguard example</title></head>
<body style="font-family:system-ui,sans-serif;max-width:40rem;margin:2rem auto">
<h1>Contact us</h1>
<form method="post" action="/contact">
  <input type="hidden" name="_fg_token" value="{{.Token}}">
  <p><label>Name <input name="name"></label></p>
  <p><label>Email <input name="email" type="email" required></label></p>
  <p><label>Subject <input name="subject"></label></p>
  <p><label>Message <textarea name="message" required></textarea></label></p>
  <p style="display:none"><label>Leave empty <input name="_gotcha" tabindex="-1" autocomplete="off"></label></p>
  <button type="submit">Send</button>
</form>
<h1>Share this page</h1>
<form method="post" action="/share" data-formguard-pow="/share/challenge">
  <input type="hidden" name="url" value="{{.URL}}">
  <p><label>Friend's email <input name="to" type="email" required></label></p>
  <p><label>Your name <input name="name"></label></p>
  <noscript>This form's spam check needs JavaScript.</noscript>
  <button type="submit">Share</button>
</form>
<script src="/formguard/formguard-pow.js" defer></script>
</body></html>
`))

func (a *app) page(w http.ResponseWriter, r *http.Request) {
	tok, err := a.tokens.Issue("contact")
	if err != nil {
		http.Error(w, "unavailable", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store") // a token per page view
	_ = pageTmpl.Execute(w, struct{ Token, URL string }{tok, "http://" + r.Host + "/"})
}
