package e2e

import (
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The README quick start: the binary with no config serves the built-in
// demo, and a curl-like post lands as a signed .eml in ./var/outbox/sent.
func TestNoConfigServesTheDemoAndLandsEML(t *testing.T) {
	dir := t.TempDir()
	p := start(t, dir, nil)
	// The demo's origins follow FORMGUARD_LISTEN, so its page works there.
	a := post(t, p.URL, "hello", url.Values{"name": {"Ada"}, "email": {"ada@example.org"}, "message": {"Hello from curl"}}, p.URL)
	if a.Status != 200 || !strings.Contains(a.Body, `"ok":true`) {
		t.Fatalf("post: %d %s", a.Status, a.Body)
	}
	emls := waitFiles(t, filepath.Join(dir, "var", "outbox", "sent"), "*.eml", 1)
	raw, err := os.ReadFile(emls[0])
	if err != nil {
		t.Fatal(err)
	}
	verifyDKIM(t, raw, filepath.Join(dir, "var", "dkim.pem"), "s1", "example.test")
	for name, want := range map[string]string{
		"From":     `"Ada via Example" <no-reply@example.test>`,
		"To":       "<support@example.test>",
		"Reply-To": "<ada@example.org>",
	} {
		if got := header(raw, name); got != want {
			t.Errorf("%s: %q, want %q", name, got, want)
		}
	}
	if id := header(raw, "Message-ID"); !strings.Contains(id, strings.Split(strings.Split(a.Body, `"id":"`)[1], `"`)[0]) {
		t.Errorf("Message-ID %s does not carry the submission id of %s", id, a.Body)
	}
	if got := p.stop(t); got != 0 {
		t.Errorf("exit status after SIGTERM: %d", got)
	}
	for _, msg := range []string{"configuration loaded", "formguard listening", "generated DKIM key; publish its DNS record", "formguard decision", "delivery", "stopped cleanly"} {
		if len(logLines(p.logs.String(), msg)) == 0 {
			t.Errorf("no %q log line", msg)
		}
	}
	if l := logLines(p.logs.String(), "configuration loaded"); len(l) > 0 && !strings.Contains(l[0], "built-in demo") {
		t.Errorf("config source not logged as the demo: %s", l[0])
	}
}

// ./formguard.yaml is picked up without -config.
func TestDefaultConfigFileIsRead(t *testing.T) {
	dir := t.TempDir()
	key, err := os.ReadFile("../testdata/config/dkim-ed25519.pem")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "dkim.pem"), key, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := `
site: {domain: example.org, origins: ["https://www.example.org"]}
mail: {from: web@example.org, dkim: {selector: k1, key_file: dkim.pem}}
forms:
  ask: {to: [team@example.org], captcha: {provider: none}}
`
	if err := os.WriteFile(filepath.Join(dir, "formguard.yaml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	p := start(t, dir, nil)
	a := post(t, p.URL, "ask", url.Values{"name": {"Bo"}, "email": {"bo@example.net"}, "message": {"hi"}}, "https://www.example.org")
	if a.Status != 200 {
		t.Fatalf("post: %d %s", a.Status, a.Body)
	}
	emls := waitFiles(t, filepath.Join(dir, "var", "outbox", "sent"), "*.eml", 1)
	raw, err := os.ReadFile(emls[0])
	if err != nil {
		t.Fatal(err)
	}
	verifyDKIM(t, raw, filepath.Join(dir, "dkim.pem"), "k1", "example.org")
	if a := post(t, p.URL, "hello", url.Values{"name": {"Bo"}}, "https://www.example.org"); a.Status != 404 {
		t.Errorf("the demo's form exists with a config file present: %d", a.Status)
	}
}
