package e2e

import (
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/formguard/formguard/internal/attack"
)

// A post accepted while the relay refuses (451) stays in the outbox across
// a restart and is delivered exactly once when the relay is back.
func TestOutboxSurvivesRelayOutageAndRestart(t *testing.T) {
	sink, err := attack.StartSink()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sink.Close() })
	sink.SetTempFail(true)
	dir := t.TempDir()
	cfg := strings.NewReplacer("DATA", dir, "SINK", sink.Addr).Replace(`
log: {format: json}
data_dir: DATA
site: {domain: example.org, origins: ["https://www.example.org"]}
mail:
  from: no-reply@example.org
  transport: smtp
  smtp: {addr: "SINK", tls: none}
  dkim: {key_file: DATA/dkim.pem, generate: true}
  retry: {base_delay: 50ms, max_delay: 200ms}
forms:
  api: {to: [api@example.org], captcha: {provider: none}}
`)
	cfgFile := filepath.Join(dir, "formguard.yaml")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	p := start(t, dir, nil, "serve", "-config", cfgFile)
	ans := post(t, p.URL, "api", url.Values{"name": {"Ada"}, "email": {"ada@example.net"}, "message": {"survives restarts"}}, site)
	if ans.Status != 200 {
		t.Fatalf("post: %d %s", ans.Status, ans.Body)
	}
	deadline := time.Now().Add(20 * time.Second)
	for sink.Refused() < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("the relay was asked %d times", sink.Refused())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if m := get(t, p.URL+"/metrics"); !strings.Contains(m.Body, "formguard_outbox_depth 1") || !strings.Contains(m.Body, `formguard_delivery_attempts_total{outcome="retry"}`) {
		t.Errorf("metrics during the outage lack depth 1 and retries")
	}
	if code := p.stop(t); code != 0 {
		t.Fatalf("exit status %d", code)
	}
	queued, _ := filepath.Glob(filepath.Join(dir, "outbox", "queue", "*"))
	if len(queued) != 1 || sink.Len() != 0 {
		t.Fatalf("after stopping: %d queued, %d delivered; want 1 and 0", len(queued), sink.Len())
	}

	sink.SetTempFail(false)
	p2 := start(t, dir, nil, "serve", "-config", cfgFile)
	if !sink.WaitQuiet(1, 500*time.Millisecond, 30*time.Second) {
		t.Fatalf("not delivered after the restart:\n%s", p2.logs)
	}
	got := sink.Messages()
	if len(got) != 1 || !strings.Contains(string(got[0].Data), "survives restarts") {
		t.Fatalf("delivered %d messages", len(got))
	}
	verifyDKIM(t, got[0].Data, filepath.Join(dir, "dkim.pem"), "s1", "example.org")
	waitFor := time.Now().Add(10 * time.Second)
	for {
		q, _ := filepath.Glob(filepath.Join(dir, "outbox", "queue", "*"))
		if len(q) == 0 {
			break
		}
		if time.Now().After(waitFor) {
			t.Fatalf("%d messages still queued after delivery", len(q))
		}
		time.Sleep(20 * time.Millisecond)
	}
}
