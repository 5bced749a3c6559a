package testutil

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// BrowserTimeout bounds each Page step (navigate, wait, read, click) unless
// Page.Timeout says otherwise. Generous, because CI machines are slow; a
// passing step returns as soon as its condition holds.
const BrowserTimeout = 60 * time.Second

// Browser is a real headless Chromium (Debian's `chromium`) started for a
// test through the DevTools protocol (chromedp), with a throw-away profile.
// It is stopped, and its profile removed, when the test ends.
type Browser struct {
	ctx context.Context // a chromedp context that has run once
}

// StartBrowser starts Chromium for tb. A missing chromium binary skips the
// test locally and fails it in CI (see LookPath). Set FORMGUARD_CHROMIUM
// to use another binary.
func StartBrowser(tb testing.TB) *Browser {
	tb.Helper()
	name := "chromium"
	if env := os.Getenv("FORMGUARD_CHROMIUM"); env != "" {
		name = env
	}
	bin := LookPath(tb, name)
	dir, err := os.MkdirTemp("", "formguard-chromium-")
	if err != nil {
		tb.Fatal(err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(bin),
		chromedp.UserDataDir(dir),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true), // small /dev/shm in containers
		chromedp.WindowSize(1024, 768),
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelBrowser := chromedp.NewContext(allocCtx)
	tb.Cleanup(func() {
		cancelBrowser()
		cancelAlloc() // waits for the browser process to exit
		// Late writes by child processes can make one RemoveAll fail;
		// a leftover temp directory is harmless, so no sleeping retry.
		for range 3 {
			if os.RemoveAll(dir) == nil {
				break
			}
		}
	})
	// The first Run starts the browser; it must not carry a timeout, or the
	// timeout would stop the browser (chromedp.Run's rule).
	started := make(chan error, 1)
	go func() { started <- chromedp.Do(ctx) }()
	select {
	case err := <-started:
		if err != nil {
			tb.Fatalf("starting %s: %v", bin, err)
		}
	case <-time.After(BrowserTimeout):
		cancelBrowser()
		<-started
		tb.Fatalf("starting %s: no answer within %s", bin, BrowserTimeout)
	}
	return &Browser{ctx: ctx}
}

// Page is one browser tab. Each method fails the test on error (with the
// page's console output, to help debugging) and waits at most Timeout.
// A Page is not safe for concurrent use; open one Page per goroutine.
type Page struct {
	// Timeout bounds each step. Zero value: BrowserTimeout.
	Timeout time.Duration

	tb  testing.TB
	ctx context.Context

	mu      sync.Mutex
	console []string
	changed chan struct{} // closed and replaced on each console line
}

// NewPage opens a tab, closed when tb ends. Console messages and uncaught
// exceptions of the page are collected (see Console).
func (b *Browser) NewPage(tb testing.TB) *Page {
	tb.Helper()
	ctx, cancel := chromedp.NewContext(b.ctx)
	p := &Page{tb: tb, ctx: ctx, changed: make(chan struct{})}
	if err := chromedp.Do(ctx); err != nil { // opens the tab
		cancel()
		tb.Fatalf("opening a tab: %v", err)
	}
	messages := chromedp.Console(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m, err := range messages {
			if err != nil {
				return
			}
			p.mu.Lock()
			p.console = append(p.console, m.String())
			close(p.changed)
			p.changed = make(chan struct{})
			p.mu.Unlock()
		}
	}()
	tb.Cleanup(func() {
		cancel()
		<-done
	})
	return p
}

// Console returns the console lines the page has written so far.
func (p *Page) Console() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.console...)
}

// WaitConsole waits until the page has written a console line containing
// substr, and returns that line.
func (p *Page) WaitConsole(substr string) string {
	p.tb.Helper()
	timeout := p.Timeout
	if timeout == 0 {
		timeout = BrowserTimeout
	}
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		p.mu.Lock()
		for _, l := range p.console {
			if strings.Contains(l, substr) {
				p.mu.Unlock()
				return l
			}
		}
		changed := p.changed
		p.mu.Unlock()
		select {
		case <-changed:
		case <-deadline.C:
			p.fail("wait for console line containing "+substr, context.DeadlineExceeded)
		}
	}
}

func (p *Page) step(what string, a chromedp.Action[chromedp.Void]) {
	p.tb.Helper()
	if _, err := runStep(p, a); err != nil {
		p.fail(what, err)
	}
}

func runStep[T any](p *Page, a chromedp.Action[T]) (T, error) {
	timeout := p.Timeout
	if timeout == 0 {
		timeout = BrowserTimeout
	}
	ctx, cancel := context.WithTimeout(p.ctx, timeout)
	defer cancel()
	return chromedp.Run(ctx, a)
}

func (p *Page) fail(what string, err error) {
	p.tb.Helper()
	hint := ""
	if errors.Is(err, context.DeadlineExceeded) {
		hint = " (timed out)"
	}
	console := p.Console()
	if len(console) > 40 {
		console = console[len(console)-40:]
	}
	p.tb.Fatalf("browser: %s: %v%s\npage console:\n\t%s", what, err, hint, strings.Join(console, "\n\t"))
}

// Navigate loads url and waits for the load event.
func (p *Page) Navigate(url string) {
	p.tb.Helper()
	p.step("navigate to "+url, chromedp.Navigate(url))
}

// WaitFor waits until the JavaScript expression is truthy in the page. It
// keeps waiting across navigations (e.g. after a form submission), when the
// page's JavaScript context is replaced under the poll.
func (p *Page) WaitFor(expr string) {
	p.tb.Helper()
	p.step("wait for "+expr, func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		for {
			_, err := chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingInterval(20*time.Millisecond), chromedp.WithPollingTimeout(0))(ctx, t)
			if err == nil || ctx.Err() != nil || !navigated(err) {
				return chromedp.Void{}, err
			}
		}
	})
}

// navigated reports whether err says the page's JavaScript context went
// away because the tab navigated.
func navigated(err error) bool {
	msg := err.Error()
	for _, s := range []string{"navigated or closed", "Execution context was destroyed", "Cannot find context", "context with specified id"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// WaitVisible waits until the first element matching the CSS selector is
// visible.
func (p *Page) WaitVisible(css string) {
	p.tb.Helper()
	p.step("wait visible "+css, chromedp.WaitVisible(chromedp.CSS(css)))
}

// Click clicks the first element matching the CSS selector.
func (p *Page) Click(css string) {
	p.tb.Helper()
	p.step("click "+css, chromedp.Click(chromedp.CSS(css)))
}

// Text returns the visible text of the first element matching css.
func (p *Page) Text(css string) string {
	p.tb.Helper()
	s, err := runStep(p, chromedp.Text(chromedp.CSS(css)))
	if err != nil {
		p.fail("text of "+css, err)
	}
	return s
}

// Value returns the value of the first form control matching css.
func (p *Page) Value(css string) string {
	p.tb.Helper()
	s, err := runStep(p, chromedp.Value(chromedp.CSS(css)))
	if err != nil {
		p.fail("value of "+css, err)
	}
	return s
}

// Eval evaluates a JavaScript expression in the page (awaiting a promise)
// and decodes its JSON value into T.
func Eval[T any](p *Page, expr string) T {
	p.tb.Helper()
	v, err := runStep(p, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		p.fail(fmt.Sprintf("eval %q", expr), err)
	}
	return v
}
