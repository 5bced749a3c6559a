// Command gin shows formguard as gin middleware: a few lines over
// guard.Check. It has its own go.mod so gin never enters formguard's.
package main

import (
	"crypto/rand"
	"log"
	"net/http"
	"os"

	"github.com/formguard/formguard/guard"
	"github.com/formguard/formguard/guard/captcha"
	"github.com/formguard/formguard/guard/captcha/widget"
	"github.com/gin-gonic/gin"
)

// Guard is the whole gin adapter: run the guard's checks, stop the chain
// with the guard's own answer on rejection, or hand the Submission on.
func Guard(g *guard.Guard, form string) gin.HandlerFunc {
	return func(c *gin.Context) {
		s, err := g.CheckForm(c.Writer, c.Request, form)
		if err != nil {
			guard.WriteError(c.Writer, c.Request, guard.AsError(err)) // honeypot hits look like success
			c.Abort()
			return
		}
		c.Set("submission", s)
		c.Next()
	}
}

func newRouter(g *guard.Guard, pow *captcha.PoW) *gin.Engine {
	r := gin.New()
	r.Use(gin.Recovery())
	deliver := func(c *gin.Context) {
		s := c.MustGet("submission").(*guard.Submission)
		log.Printf("accepted %s to %v", s.ID, s.Recipients)
		c.JSON(http.StatusOK, gin.H{"ok": true, "id": s.ID})
	}
	r.POST("/contact", Guard(g, "contact"), deliver)
	r.POST("/share", Guard(g, "share"), deliver)
	r.GET("/share/challenge", gin.WrapH(pow.ChallengeHandler("share", g.ChallengeKey)))
	r.GET("/formguard/*asset", gin.WrapH(widget.Handler()))
	return r
}

// newGuard protects the share form with the built-in proof-of-work.
func newGuard(origin string) (*guard.Guard, *captcha.PoW, error) {
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
		Domain:  "example.test",
		Origins: []string{origin},
		Forms: map[string]guard.Form{
			"contact": {To: []string{"support@example.test"}},
			"share":   {Kind: guard.KindShare, Captcha: pow},
		},
	})
	return g, pow, err
}

func main() {
	addr := os.Getenv("ADDR")
	if addr == "" {
		addr = "127.0.0.1:8080"
	}
	g, pow, err := newGuard("http://" + addr)
	if err != nil {
		log.Fatal(err)
	}
	defer g.Close()
	log.Fatal(newRouter(g, pow).Run(addr))
}
