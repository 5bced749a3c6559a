package captcha_test

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/formguard/formguard/guard/captcha"
	"github.com/formguard/formguard/guard/captcha/widget"
	"github.com/formguard/formguard/internal/testutil"
)

// altchaDist is the official widget's bundle, installed by
// scripts/fetch-altcha.sh (run by `make deps`).
var altchaDist = filepath.Join("testdata", "browser", "node_modules", "altcha", "dist", "altcha.js")

// powSite is a loopback site with one contact form protected by our PoW,
// rendered either with our widget or with the official altcha web
// component. Every POST is verified with PoW.Verify and recorded.
type powSite struct {
	pow *captcha.PoW
	srv *httptest.Server

	mu         sync.Mutex
	results    []submission
	challenges int // challenge requests served
}

type submission struct {
	token  string
	button string // the submit button's value: the widget resubmits with it
	err    error
}

const ourPage = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>contact</title></head><body>
<form method="post" action="/f/contact" data-formguard-pow="/f/contact/challenge">
  <input name="message" value="hello">
  <noscript>This form's spam check needs JavaScript.</noscript>
  <button type="submit" id="send" name="button" value="send">Send</button>
</form>
<script src="%s/formguard/formguard-pow.js" defer></script>
</body></html>`

// ajaxPage sends the form with fetch and stays on the page, so the
// widget must fetch and solve a new challenge for the second submission.
const ajaxPage = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>contact</title></head><body>
<form id="f" method="post" action="/f/contact" data-formguard-pow="/f/contact/challenge">
  <input name="message" value="hello">
  <div class="actions"><button type="submit" id="send" name="button" value="send">Send</button></div>
</form>
<p id="sent">0</p>
<script>
document.getElementById("f").addEventListener("submit", function (e) {
  e.preventDefault();
  fetch("/f/contact", { method: "POST", body: new URLSearchParams(new FormData(e.target, e.submitter)) })
    .then(function (r) {
      var p = document.getElementById("sent");
      p.textContent = String(Number(p.textContent) + (r.ok ? 1 : 100));
    });
});
</script>
<script src="/formguard/formguard-pow.js" defer></script>
</body></html>`

const altchaPage = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>contact</title>
<script type="module" src="/altcha/altcha.js"></script></head><body>
<form method="post" action="/f/contact">
  <input name="message" value="hello">
  <altcha-widget challengeurl="/f/contact/challenge" auto="onload"></altcha-widget>
  <button type="submit" id="send">Send</button>
</form>
</body></html>`

func newPowSite(t *testing.T) *powSite { return newPowSiteWith(t, false, "") }

// newPowSiteWith builds the site; with brokenChallenge its challenge
// endpoint answers 503, as when the service is overloaded. assetOrigin,
// when set, is where the page loads the widget script from (another
// origin, like a separate formguard service).
func newPowSiteWith(t *testing.T, brokenChallenge bool, assetOrigin string) *powSite {
	t.Helper()
	pow, err := captcha.NewPoW(captcha.PoWConfig{Keys: [][]byte{exampleKey}}) // default difficulty
	if err != nil {
		t.Fatal(err)
	}
	s := &powSite{pow: pow}
	mux := http.NewServeMux()
	page := func(body string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			fmt.Fprint(w, body)
		}
	}
	mux.Handle("GET /{$}", page(fmt.Sprintf(ourPage, assetOrigin)))
	mux.Handle("GET /altcha/{$}", page(altchaPage))
	mux.Handle("GET /ajax/{$}", page(ajaxPage))
	mux.Handle("GET /formguard/", widget.Handler())
	mux.HandleFunc("GET /altcha/altcha.js", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
		http.ServeFile(w, r, altchaDist)
	})
	challenge := pow.ChallengeHandler("contact", nil)
	if brokenChallenge {
		challenge = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			s.mu.Lock()
			s.challenges++
			s.mu.Unlock()
			http.Error(w, "busy", http.StatusServiceUnavailable)
		})
	}
	mux.Handle("GET /f/contact/challenge", challenge)
	mux.HandleFunc("POST /f/contact", func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			http.Error(w, "bad form", http.StatusBadRequest)
			return
		}
		tok := r.PostForm.Get(pow.Field())
		err := pow.Verify(r.Context(), captcha.Request{Form: "contact", Token: tok})
		s.mu.Lock()
		s.results = append(s.results, submission{token: tok, button: r.PostForm.Get("button"), err: err})
		s.mu.Unlock()
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		if err != nil {
			w.WriteHeader(http.StatusForbidden)
			fmt.Fprint(w, `<p id="result">rejected</p>`)
			return
		}
		fmt.Fprint(w, `<p id="result">accepted</p>`)
	})
	s.srv = httptest.NewServer(mux)
	t.Cleanup(s.srv.Close)
	return s
}

func (s *powSite) submissions() []submission {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]submission(nil), s.results...)
}

// solveInBrowser loads path, waits for the widget to fill the altcha
// field, submits, and returns the submitted token.
func solveInBrowser(t *testing.T, b *testutil.Browser, s *powSite, path string, clickEarly bool) string {
	t.Helper()
	p := b.NewPage(t)
	p.Navigate(s.srv.URL + path)
	if clickEarly {
		// Submit at once: the widget must hold the submission back until
		// the challenge is solved, then send it.
		p.Click("#send")
	} else {
		p.WaitFor(`new FormData(document.querySelector("form")).get("altcha")`)
		tok := testutil.Eval[string](p, `new FormData(document.querySelector("form")).get("altcha")`)
		logSolve(t, tok)
		p.Click("#send")
	}
	p.WaitFor(`document.getElementById("result") !== null`)
	if got := p.Text("#result"); got != "accepted" {
		t.Fatalf("result page says %q; server saw %v", got, s.submissions())
	}
	subs := s.submissions()
	if len(subs) != 1 || subs[0].err != nil || subs[0].token == "" {
		t.Fatalf("server saw %d submissions %v, want exactly one accepted", len(subs), subs)
	}
	if clickEarly {
		logSolve(t, subs[0].token)
		if subs[0].button != "send" {
			t.Errorf("held-back submission lost its submit button (button=%q)", subs[0].button)
		}
	}
	return subs[0].token
}

// logSolve logs the widget's own solve time (the payload's took) and
// checks the payload is the widget's work on our challenge for this form.
func logSolve(t *testing.T, tok string) {
	t.Helper()
	pl, err := captcha.ParsePoWPayload(tok)
	if err != nil {
		t.Fatalf("widget produced an unparsable payload %q: %v", tok, err)
	}
	q := strings.IndexByte(pl.Salt, '?')
	if q < 0 {
		t.Fatalf("salt %q has no parameters", pl.Salt)
	}
	params, err := url.ParseQuery(strings.TrimSuffix(pl.Salt[q+1:], "&"))
	if err != nil || params.Get("form") != "contact" {
		t.Fatalf("salt %q: form %q, %v", pl.Salt, params.Get("form"), err)
	}
	if pl.Took <= 0 {
		t.Errorf("payload reports took=%d; both widgets measure their solve time", pl.Took)
	}
	t.Logf("browser solve at maxnumber %s: number %d, took %s (widget's own measure)",
		params.Get("max"), pl.Number, time.Duration(pl.Took)*time.Millisecond)
}

func assertReplayRefused(t *testing.T, s *powSite, tok string) {
	t.Helper()
	resp, err := http.PostForm(s.srv.URL+"/f/contact", url.Values{"message": {"again"}, "altcha": {tok}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("replayed token answered %d, want 403", resp.StatusCode)
	}
	subs := s.submissions()
	if last := subs[len(subs)-1]; !errors.Is(last.err, captcha.ErrReplayed) {
		t.Fatalf("replayed token: %v, want ErrReplayed", last.err)
	}
}

func TestBrowserPoW(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Chromium")
	}
	b := testutil.StartBrowser(t)

	t.Run("our widget solves, submits and cannot replay", func(t *testing.T) {
		s := newPowSite(t)
		tok := solveInBrowser(t, b, s, "/", false)
		assertReplayRefused(t, s, tok)
	})
	t.Run("our widget holds an early submit until solved", func(t *testing.T) {
		s := newPowSite(t)
		tok := solveInBrowser(t, b, s, "/", true)
		assertReplayRefused(t, s, tok)
	})
	t.Run("our widget never submits without a solution", func(t *testing.T) {
		s := newPowSiteWith(t, true, "")
		p := b.NewPage(t)
		p.Navigate(s.srv.URL + "/")
		p.WaitFor(`document.querySelector("form").dataset.formguardPowState === "error"`)
		p.Click("#send") // retries the challenge, fails again, holds the form
		p.WaitFor(`document.querySelector("form").dataset.formguardPowState === "error"`)
		if msg := p.Text(".formguard-pow"); !strings.Contains(msg, "reload") {
			t.Errorf("status text %q does not tell the visitor what to do", msg)
		}
		// The page is still the form (no navigation to the result page) and
		// the server never saw a submission.
		if got := testutil.Eval[bool](p, `document.getElementById("send") !== null`); !got {
			t.Error("the form page was left")
		}
		if subs := s.submissions(); len(subs) != 0 {
			t.Fatalf("server saw %d submissions without a solution", len(subs))
		}
		s.mu.Lock()
		n := s.challenges
		s.mu.Unlock()
		if n != 2 {
			t.Errorf("widget fetched the challenge %d times, want 2 (page load, then the submit attempt)", n)
		}
	})
	t.Run("our widget solves anew for each script-sent submission", func(t *testing.T) {
		s := newPowSite(t)
		p := b.NewPage(t)
		p.Navigate(s.srv.URL + "/ajax/")
		p.WaitFor(`document.querySelector("form").dataset.formguardPowState === "solved"`)
		p.Click("#send")
		p.WaitFor(`document.getElementById("sent").textContent === "1"`)
		p.Click("#send") // the first solution is spent: held back, solved again, sent
		p.WaitFor(`document.getElementById("sent").textContent !== "1"`)
		if got := p.Text("#sent"); got != "2" {
			t.Fatalf("sent counter %q, want 2 (a rejected post adds 100); server saw %v", got, s.submissions())
		}
		subs := s.submissions()
		if len(subs) != 2 || subs[0].err != nil || subs[1].err != nil || subs[0].token == subs[1].token {
			t.Fatalf("server saw %v, want two accepted submissions with different tokens", subs)
		}
	})
	t.Run("our widget works when served from another origin", func(t *testing.T) {
		// Workers must be same-origin with the page, so the script loads
		// the worker code over CORS and starts it from a blob: URL.
		assets := httptest.NewServer(widget.Handler())
		defer assets.Close()
		s := newPowSiteWith(t, false, assets.URL)
		tok := solveInBrowser(t, b, s, "/", false)
		assertReplayRefused(t, s, tok)
	})
	t.Run("solve time at the default difficulty", func(t *testing.T) {
		s := newPowSite(t)
		p := b.NewPage(t)
		const runs = 5
		var total, worst time.Duration
		for i := range runs {
			p.Navigate(s.srv.URL + "/")
			p.WaitFor(`document.querySelector("form").dataset.formguardPowState === "solved"`)
			tok := testutil.Eval[string](p, `new FormData(document.querySelector("form")).get("altcha")`)
			pl, err := captcha.ParsePoWPayload(tok)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.pow.Verify(t.Context(), captcha.Request{Form: "contact", Token: tok}); err != nil {
				t.Fatalf("run %d: %v", i, err)
			}
			took := time.Duration(pl.Took) * time.Millisecond
			total += took
			worst = max(worst, took)
		}
		t.Logf("formguard-pow.js at maxnumber %d: mean %s, worst %s over %d solves (fetch included)",
			captcha.DefaultPoWMaxNumber, total/runs, worst, runs)
	})
	t.Run("the official altcha widget solves our challenge", func(t *testing.T) {
		if _, err := os.Stat(altchaDist); err != nil {
			msg := "official altcha widget not installed; run: scripts/fetch-altcha.sh"
			if testutil.InCI() {
				t.Fatal(msg)
			}
			t.Skip(msg)
		}
		s := newPowSite(t)
		tok := solveInBrowser(t, b, s, "/altcha/", false)
		assertReplayRefused(t, s, tok)
	})
}
