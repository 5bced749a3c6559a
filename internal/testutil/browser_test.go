package testutil_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/formguard/formguard/internal/testutil"
)

func TestBrowser(t *testing.T) {
	b := testutil.StartBrowser(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, `<!doctype html><title>t</title>
<input id="in" value="typed">
<button id="go" onclick="document.getElementById('out').textContent='clicked'">go</button>
<p id="out"></p>
<script>
console.log("hello from the page");
setTimeout(function () { window.ready = true; }, 10);
</script>`)
	}))
	defer srv.Close()

	p := b.NewPage(t)
	p.Navigate(srv.URL)
	p.WaitFor("window.ready === true")
	if got := p.Value("#in"); got != "typed" {
		t.Errorf("Value = %q", got)
	}
	p.Click("#go")
	p.WaitFor(`document.getElementById("out").textContent !== ""`)
	if got := p.Text("#out"); got != "clicked" {
		t.Errorf("Text = %q", got)
	}
	if got := testutil.Eval[int](p, `Promise.resolve(40 + 2)`); got != 42 {
		t.Errorf("Eval = %d", got)
	}
	if line := p.WaitConsole("hello from the page"); !strings.Contains(line, "hello") {
		t.Errorf("WaitConsole = %q", line)
	}
	if !slices.ContainsFunc(p.Console(), func(s string) bool { return strings.Contains(s, "hello from the page") }) {
		t.Errorf("console = %q", p.Console())
	}

	// A second tab on the same browser.
	p2 := b.NewPage(t)
	p2.Navigate(srv.URL)
	p2.WaitVisible("#go")
}
