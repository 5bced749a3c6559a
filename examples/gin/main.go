// Command gin shows formguard as gin middleware, a few lines over
// guard.Check, in front of a handler that mails each accepted post: the
// mail is queued durably before the post is answered, then DKIM-signed and
// sent by background workers. It has its own go.mod so gin never enters
// formguard's.
//
//	cd examples/gin && go run .                       # mail lands in var/gin/sent/*.eml
//	cd examples/gin && go run . -smtp smtp.example.net:587 -domain example.net
//
// With -smtp, mail goes to that relay (STARTTLS required unless it is on
// loopback); AUTH credentials come from $FORMGUARD_SMTP_USERNAME and
// $FORMGUARD_SMTP_PASSWORD. On first run a DKIM key is written to the data
// folder and its DNS TXT record logged: publish it before sending real
// mail. The site listens on -addr (default $ADDR or 127.0.0.1:8080).
package main

import (
	"context"
	"crypto/rand"
	"github.com/formguard/formguard/post"
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
	"github.com/gin-gonic/gin"
)

// Guard is the whole gin adapter: run the guard's checks, stop the chain
// with the guard's own answer on rejection, or hand the Submission on.
func Guard(g *guard.Guard, form string) gin.HandlerFunc {
	return func(c *gin.Context) {
		s, err := g.CheckForm(c.Writer, c.Request, form)
		if err != nil {
			guard.WriteError(c.Writer, c.Request, err) // honeypot hits look like success
			c.Abort()
			return
		}
		c.Set("submission", s)
		c.Next()
	}
}

// Deliver queues the accepted post's mail and answers only once it is
// durable: 200 means it will be sent (retried while the relay is down),
// an error means nothing was accepted.
func Deliver(m *mailer.Mailer) gin.HandlerFunc {
	return func(c *gin.Context) {
		s := c.MustGet("submission").(*post.Submission)
		// Not cancelled with the request: a visitor hanging up must not
		// cut a share post's batch short.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(c.Request.Context()), 10*time.Second)
		defer cancel()
		if err := m.Deliver(ctx, s); err != nil {
			e := deliveryError(err)
			slog.Error("not queued", "id", s.ID, "form", s.Form, "code", e.Code, "err", err)
			guard.WriteError(c.Writer, c.Request, e)
			return
		}
		// The guard's own success answer, byte for byte what a honeypot
		// hit gets, so bots cannot tell the two apart.
		guard.WriteSuccess(c.Writer, c.Request, s)
	}
}

func newRouter(g *guard.Guard, pow *captcha.PoW, m *mailer.Mailer) *gin.Engine {
	r := gin.New()
	r.Use(gin.Recovery())
	r.POST("/contact", Guard(g, "contact"), Deliver(m))
	r.POST("/share", Guard(g, "share"), Deliver(m))
	r.GET("/share/challenge", gin.WrapH(pow.ChallengeHandler("share", g.ChallengeKey)))
	r.GET("/formguard/*asset", gin.WrapH(widget.Handler()))
	return r
}

// newGuard protects the share form with the built-in proof-of-work.
func newGuard(cfg config) (*guard.Guard, *captcha.PoW, error) {
	key := make([]byte, 32) // in production: a fixed secret from config
	if _, err := rand.Read(key); err != nil {
		return nil, nil, err
	}
	var g *guard.Guard
	pow, err := captcha.NewPoW(captcha.PoWConfig{
		Keys:     [][]byte{key},
		Escalate: func(clientKey string) int64 { return g.Escalate(clientKey) },
	})
	if err != nil {
		return nil, nil, err
	}
	g, err = guard.New(guard.Config{
		Domain:  cfg.Domain,
		Origins: []string{"http://" + cfg.Addr},
		Forms: map[string]guard.Form{
			"contact": {To: []string{cfg.To}},
			"share":   {Kind: post.Share, Captcha: pow},
		},
	})
	return g, pow, err
}

func main() {
	cfg := flags("var/gin")
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
	g, pow, err := newGuard(cfg)
	if err != nil {
		return err
	}
	defer g.Close()
	srv := &http.Server{Addr: cfg.Addr, Handler: newRouter(g, pow, m), ReadHeaderTimeout: 5 * time.Second}
	return serve(ctx, srv, cfg)
}
