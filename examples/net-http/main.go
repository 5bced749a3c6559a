// Command net-http shows formguard in front of a site's own net/http
// handlers, with real mail delivery: the contact form carries a signed
// single-use form token, the share form the built-in proof-of-work, and
// every accepted post's mail is queued durably before the post is
// answered, then DKIM-signed and sent by background workers.
//
//	go run ./examples/net-http                          # mail lands in var/net-http/sent/*.eml
//	go run ./examples/net-http -smtp smtp.example.net:587 -domain example.net
//
// With -smtp, mail goes to that relay (STARTTLS required unless it is on
// loopback); AUTH credentials come from $FORMGUARD_SMTP_USERNAME and
// $FORMGUARD_SMTP_PASSWORD, never from flags. On first run a DKIM key is
// written to the data folder and its DNS TXT record logged: publish it
// before sending real mail. The site listens on -addr (default $ADDR or
// 127.0.0.1:8080); open it in a browser.
package main

import (
	"context"
	"crypto/rand"
	"github.com/formguard/formguard/post"
	"html/template"
	"log"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/formguard/formguard/guard"
	"github.com/formguard/formguard/guard/captcha"
	"github.com/formguard/formguard/guard/captcha/widget"
	"github.com/formguard/formguard/mailer"
)

func main() {
	cfg := flags("var/net-http")
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg); err != nil {
		log.Fatal(err)
	}
}

// run serves until ctx ends, then lets in-flight posts finish queueing
// before it stops the delivery workers.
func run(ctx context.Context, cfg config) error {
	m, err := newMailer(cfg, slog.Default())
	if err != nil {
		return err
	}
	defer m.Close() // waits for delivery attempts in progress
	m.Start(context.Background())
	a, err := newApp(cfg, m, nil)
	if err != nil {
		return err
	}
	defer a.g.Close()
	srv := &http.Server{
		Addr:              cfg.Addr,
		Handler:           a.mux,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      20 * time.Second, // covers deliverTimeout
		MaxHeaderBytes:    16 << 10,
	}
	return serve(ctx, srv, cfg)
}

// deliverTimeout bounds building and durably queueing one post's mail.
const deliverTimeout = 10 * time.Second

type app struct {
	g      *guard.Guard
	m      *mailer.Mailer
	tokens *captcha.FormToken
	pow    *captcha.PoW
	mux    *http.ServeMux
}

// newApp builds the example's routes; now is the guard's clock (nil:
// time.Now).
func newApp(cfg config, m *mailer.Mailer, now func() time.Time) (*app, error) {
	if now == nil {
		now = time.Now
	}
	key := make([]byte, 32) // in production: a fixed secret from config
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	a := &app{m: m, mux: http.NewServeMux()}
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
		Domain:  cfg.Domain,
		Origins: []string{"http://" + cfg.Addr, "http://localhost:8080"},
		Now:     now,
		Forms: map[string]guard.Form{
			"contact": {To: []string{cfg.To}, Token: a.tokens},
			// One message per friend; each friend's address is rate-limited.
			"share": {Kind: post.Share, Captcha: a.pow, MaxRecipients: 3},
		},
	})
	if err != nil {
		return nil, err
	}
	// The site's handlers only ever see accepted submissions.
	a.mux.Handle("POST /contact", a.g.Middleware("contact")(http.HandlerFunc(a.deliver)))
	a.mux.Handle("POST /share", a.g.Middleware("share")(http.HandlerFunc(a.deliver)))
	a.mux.Handle("GET /share/challenge", a.pow.ChallengeHandler("share", a.g.ChallengeKey))
	a.mux.Handle("GET /formguard/", widget.Handler())
	a.mux.HandleFunc("GET /{$}", a.page)
	return a, nil
}

// deliver queues the accepted post's mail and answers only once it is
// durable: success means the mail will be sent (retried while the relay
// is down), an error means nothing was accepted.
func (a *app) deliver(w http.ResponseWriter, r *http.Request) {
	s, _ := guard.SubmissionFrom(r.Context())
	// Not cancelled with the request: a visitor hanging up must not cut a
	// share post's batch short.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), deliverTimeout)
	defer cancel()
	if err := a.m.Deliver(ctx, s); err != nil {
		e := deliveryError(err)
		slog.Error("not queued", "id", s.ID, "form", s.Form, "code", e.Code, "err", err)
		guard.WriteError(w, r, e)
		return
	}
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
  <p><label>Friends' emails, up to three <input name="to" type="email" multiple required></label></p>
  <p><label>Your name <input name="name"></label></p>
  <p><label>Your email, for replies <input name="email" type="email"></label></p>
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
