package e2e

import (
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/formguard/formguard/internal/attack"
	"github.com/formguard/formguard/internal/testutil"
)

// Two instances sharing one Redis and one DKIM key behave as one service:
// a challenge fetched from one verifies on the other (and only once), the
// rate limits are shared, and each accepted post is delivered exactly once.
func TestTwoInstancesShareRedis(t *testing.T) {
	r := testutil.StartRedis(t)
	sink, err := attack.StartSink()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sink.Close() })
	shared := t.TempDir()
	key, err := os.ReadFile("../testdata/config/dkim-rsa2048.pem")
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(shared, "dkim.pem")
	if err := os.WriteFile(keyFile, key, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := `
log: {format: json}
site: {domain: example.org, origins: ["https://www.example.org"]}
redis_url: ` + r.URL() + `
mail:
  from: no-reply@example.org
  transport: smtp
  smtp: {addr: "` + sink.Addr + `", tls: none}
  dkim: {key_file: ` + keyFile + `}
forms:
  contact:
    to: [team@example.org]
    limits: {per_ip: 4/h, per_sender: 100/h}
`
	var inst [2]*proc
	for i := range inst {
		dir := t.TempDir()
		f := filepath.Join(dir, "formguard.yaml")
		if err := os.WriteFile(f, []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
		inst[i] = start(t, dir, nil, "serve", "-config", f)
	}
	a, b := inst[0], inst[1]
	msg := func(n int, sol string) url.Values {
		return url.Values{"name": {"Ada"}, "email": {"ada" + strconv.Itoa(n) + "@example.net"}, "message": {"cluster " + strconv.Itoa(n)}, "altcha": {sol}}
	}
	// A challenge from instance a, solved, posted to instance b.
	sol := solve(t, a.URL, "contact")
	if ans := post(t, b.URL, "contact", msg(1, sol), site); ans.Status != 200 {
		t.Fatalf("a's challenge on b: %d %s", ans.Status, ans.Body)
	}
	// The same solution on a is a replay: the replay cache is shared.
	if ans := post(t, a.URL, "contact", msg(2, sol), site); ans.Status != 403 || ans.code() != "captcha_invalid" {
		t.Fatalf("replay on the other instance: %d %s", ans.Status, ans.Body)
	}
	// per_ip 4/h across both instances, one of them spent by the replay
	// (a client's own tier is consumed before its token is checked): two
	// more accepted, then refused.
	if ans := post(t, a.URL, "contact", msg(3, solve(t, a.URL, "contact")), site); ans.Status != 200 {
		t.Fatalf("post 2: %d %s", ans.Status, ans.Body)
	}
	if ans := post(t, b.URL, "contact", msg(4, solve(t, b.URL, "contact")), site); ans.Status != 200 {
		t.Fatalf("post 3: %d %s", ans.Status, ans.Body)
	}
	ans := post(t, a.URL, "contact", msg(5, solve(t, a.URL, "contact")), site)
	if ans.Status != 429 || ans.Header.Get("Retry-After") == "" {
		t.Fatalf("4th post across instances: %d %s", ans.Status, ans.Body)
	}
	// Three accepted posts, three deliveries: none lost, none twice.
	if !sink.WaitQuiet(3, time.Second, 30*time.Second) {
		t.Fatalf("sink got %d messages, want 3", sink.Len())
	}
	seen := map[string]int{}
	for _, m := range sink.Messages() {
		for _, n := range []string{"cluster 1", "cluster 3", "cluster 4"} {
			if strings.Contains(string(m.Data), n) {
				seen[n]++
			}
		}
		verifyDKIM(t, m.Data, keyFile, "s1", "example.org")
	}
	if sink.Len() != 3 || seen["cluster 1"] != 1 || seen["cluster 3"] != 1 || seen["cluster 4"] != 1 {
		t.Errorf("deliveries %v (total %d), want each of 1, 3, 4 exactly once", seen, sink.Len())
	}
	for _, p := range inst {
		if code := p.stop(t); code != 0 {
			t.Errorf("exit status %d", code)
		}
	}
}
