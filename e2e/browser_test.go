package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/formguard/formguard/internal/testutil"
)

// A real headless Chromium opens the demo page, fills the contact form and
// submits it; the proof-of-work widget solves the challenge in the browser
// (Web Crypto in a Web Worker) and the signed mail lands in the outbox.
func TestBrowserDemoContactForm(t *testing.T) {
	dir := t.TempDir()
	p := start(t, dir, nil)
	b := testutil.StartBrowser(t)
	page := b.NewPage(t)
	page.Navigate(p.URL + "/")
	page.WaitFor(`document.querySelector("#form-contact") !== null`)
	// The widget fetches a challenge and solves it on load.
	page.WaitFor(`document.querySelector("#form-contact").getAttribute("data-formguard-pow-state") === "solved"`)
	testutil.Eval[bool](page, `(() => {
		const f = document.querySelector("#form-contact");
		f.querySelector("[name=department]").value = "sales";
		f.querySelector("[name=name]").value = "Grace Hopper";
		f.querySelector("[name=email]").value = "grace@example.org";
		f.querySelector("[name=subject]").value = "From the browser";
		f.querySelector("[name=message]").value = "Typed in headless Chromium.";
		return true;
	})()`)
	solution := testutil.Eval[string](page, `document.querySelector("#form-contact [name=altcha]").value`)
	if solution == "" {
		t.Fatal("the widget did not fill the altcha field")
	}
	page.Click(`#form-contact button[type=submit]`)
	page.WaitFor(`document.title === "Thank you"`)

	emls := waitFiles(t, filepath.Join(dir, "var", "outbox", "sent"), "*.eml", 1)
	raw, err := os.ReadFile(emls[0])
	if err != nil {
		t.Fatal(err)
	}
	verifyDKIM(t, raw, filepath.Join(dir, "var", "dkim.pem"), "s1", "example.test")
	for name, want := range map[string]string{
		"To":       "<sales@example.test>",
		"Reply-To": "<grace@example.org>",
	} {
		if got := header(raw, name); got != want {
			t.Errorf("%s: %q, want %q", name, got, want)
		}
	}
	if !strings.Contains(string(raw), "Typed in headless Chromium.") {
		t.Error("message body missing")
	}

	// The share form: two friends, the page's own URL prefilled.
	page.Navigate(p.URL + "/")
	page.WaitFor(`document.querySelector("#form-share").getAttribute("data-formguard-pow-state") === "solved"`)
	testutil.Eval[bool](page, `(() => {
		const f = document.querySelector("#form-share");
		f.querySelector("[name=to]").value = "ann@example.net, bob@example.com";
		f.querySelector("[name=name]").value = "Grace";
		f.querySelector("[name=message]").value = "Worth a read.";
		return true;
	})()`)
	page.Click(`#form-share button[type=submit]`)
	page.WaitFor(`document.title === "Thank you"`)
	emls = waitFiles(t, filepath.Join(dir, "var", "outbox", "sent"), "*.eml", 3)
	to := map[string]bool{}
	for _, f := range emls {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		to[header(raw, "To")] = true
		if strings.Contains(header(raw, "To"), "example.net") || strings.Contains(header(raw, "To"), "example.com") {
			if !strings.Contains(string(raw), p.URL+"/") {
				t.Errorf("share mail lacks the shared URL")
			}
			verifyDKIM(t, raw, filepath.Join(dir, "var", "dkim.pem"), "s1", "example.test")
		}
	}
	if !to["<ann@example.net>"] || !to["<bob@example.com>"] {
		t.Errorf("share recipients %v", to)
	}

	for _, l := range page.Console() {
		if strings.Contains(strings.ToLower(l), "error") {
			t.Errorf("console: %s", l)
		}
	}
}
