package server

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/formguard/formguard/internal/config"
	"github.com/formguard/formguard/internal/testutil"
)

// syncBuffer is a log sink safe for the service's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func emlFiles(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*.eml"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// startService opens the service on cfgYAML in a temporary data folder and
// runs it on a loopback port until the test ends.
func startService(t *testing.T, cfgYAML string) (base string, svc *Service, logs *syncBuffer, stop func() error) {
	t.Helper()
	base, _, svc, logs, stop = startServiceAdmin(t, cfgYAML)
	return base, svc, logs, stop
}

// startServiceAdmin is startService that also serves the admin endpoints
// on a loopback port of their own when cfgYAML says admin_listen: ADMIN
// (adminBase is "" otherwise). DATA in cfgYAML is the data folder.
func startServiceAdmin(t *testing.T, cfgYAML string) (base, adminBase string, svc *Service, logs *syncBuffer, stop func() error) {
	t.Helper()
	dir := t.TempDir()
	cfgYAML = strings.ReplaceAll(cfgYAML, "DATA", dir)
	var admin net.Listener
	if strings.Contains(cfgYAML, "admin_listen: ADMIN") {
		var err error
		if admin, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = admin.Close() }) // Run closes it; Open may fail first
		cfgYAML = strings.ReplaceAll(cfgYAML, "admin_listen: ADMIN", `admin_listen: "`+admin.Addr().String()+`"`)
		adminBase = "http://" + admin.Addr().String()
	}
	cfg := parseConfig(t, cfgYAML)
	logs = &syncBuffer{}
	var err error
	svc, err = Open(context.Background(), cfg, Options{Logger: slog.New(slog.NewJSONHandler(logs, nil)), SkipDoctor: true})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx, ln, admin) }()
	var once sync.Once
	var runErr error
	stop = func() error {
		once.Do(func() {
			cancel()
			runErr = <-done
		})
		return runErr
	}
	t.Cleanup(func() { _ = stop() })
	return "http://" + ln.Addr().String(), adminBase, svc, logs, stop
}

const serviceConfig = `
data_dir: DATA
site: {domain: example.test, name: Example, origins: ["http://site.test"]}
mail:
  from: no-reply@example.test
  dkim: {generate: true}
forms:
  hello: {to: [support@example.test], captcha: {provider: none}}
`

func TestServiceFileTransportLandsSignedEML(t *testing.T) {
	base, svc, logs, stop := startService(t, serviceConfig)
	if _, err := os.Stat(svc.cfg.Mail.DKIM.KeyFile); err != nil {
		t.Fatalf("DKIM key not generated: %v", err)
	}
	req, _ := http.NewRequest("POST", base+"/f/hello", strings.NewReader(url.Values{
		"name": {"Ada"}, "email": {"ada@example.org"}, "message": {"Hello from the service test"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "http://site.test")
	req.Header.Set("Accept", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("post: %d %s", resp.StatusCode, b)
	}
	waitFor(t, "the .eml file", func() bool { return len(emlFiles(t, svc.SentDir())) == 1 })
	eml, err := os.ReadFile(emlFiles(t, svc.SentDir())[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"DKIM-Signature: v=1;", "d=example.test", "From: \"Ada via Example\" <no-reply@example.test>", "Reply-To: <ada@example.org>", "To: <support@example.test>", "Hello from the service test"} {
		if !bytes.Contains(eml, []byte(want)) {
			t.Errorf(".eml lacks %q", want)
		}
	}
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	for _, want := range []string{`"msg":"formguard listening"`, `"outbox":"` + svc.cfg.Mail.OutboxDir, `"msg":"generated DKIM key; publish its DNS record"`, `"msg":"stopped cleanly"`, `"msg":"doctor skipped`} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("logs lack %s:\n%s", want, logs)
		}
	}
	if strings.Contains(logs.String(), "Hello from the service test") || strings.Contains(logs.String(), "ada@example.org") {
		t.Errorf("logs carry the message body or the visitor's address:\n%s", logs)
	}
}

func TestServiceShutdownFinishesInFlight(t *testing.T) {
	base, svc, _, stop := startService(t, serviceConfig)
	// A slow client on a raw connection: with Expect: 100-continue the
	// server says "100 Continue" only once the handler reads the body, so
	// the request is provably in flight when shutdown begins.
	body := "name=Ada&email=ada%40example.org&message=late+but+accepted"
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	head := "POST /f/hello HTTP/1.1\r\nHost: site.test\r\nOrigin: http://site.test\r\nAccept: application/json\r\n" +
		"Content-Type: application/x-www-form-urlencoded\r\nExpect: 100-continue\r\n" +
		"Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n"
	if _, err := conn.Write([]byte(head)); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	line, err := br.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "HTTP/1.1 100") {
		t.Fatalf("want 100 Continue, got %q %v", line, err)
	}
	if _, err := br.ReadString('\n'); err != nil { // the blank line after 100
		t.Fatal(err)
	}
	stopped := make(chan error, 1)
	go func() { stopped <- stop() }()
	select {
	case err := <-stopped:
		t.Fatalf("Run returned (%v) while a request was in flight", err)
	case <-time.After(200 * time.Millisecond):
	}
	if _, err := conn.Write([]byte(body)); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("in-flight request: %d", resp.StatusCode)
	}
	if err := <-stopped; err != nil {
		t.Fatalf("Run: %v", err)
	}
	// Accepted means durable: the message is delivered or still queued.
	n := len(emlFiles(t, svc.SentDir()))
	q, _ := filepath.Glob(filepath.Join(svc.cfg.Mail.OutboxDir, "queue", "*"))
	if n+len(q) != 1 {
		t.Fatalf("after shutdown: %d .eml + %d queued, want exactly 1", n, len(q))
	}
}

func TestServiceWithRedis(t *testing.T) {
	r := testutil.StartRedis(t)
	for _, tc := range []struct {
		name      string
		fallback  bool
		dirOutbox bool // mail.outbox: dir
		// what a post gets while Redis is down
		wantDown int
		wantCode string
	}{
		{"with redis down the limiter fails closed", false, false, http.StatusServiceUnavailable, "limiter_unavailable"},
		// The fallback store admits the post, but the outbox is in Redis
		// too: nothing is accepted that is not durably queued.
		{"with redis down and redis_fallback the outbox still refuses", true, false, http.StatusServiceUnavailable, "outbox_unavailable"},
		// With the outbox on disk, the fallback keeps accepting mail.
		{"with redis down, redis_fallback and a dir outbox posts are accepted", true, true, http.StatusOK, ""},
		{"with redis down and a dir outbox the limiter still fails closed", false, true, http.StatusServiceUnavailable, "limiter_unavailable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r.Restart(t) // empty data set for each case
			cfg := serviceConfig + "redis_url: " + r.URL() + "\n"
			if tc.fallback {
				cfg += "limits: {redis_fallback: true}\n"
			}
			if tc.dirOutbox {
				cfg = strings.Replace(cfg, "\nmail:\n", "\nmail:\n  outbox: dir\n", 1)
				if !strings.Contains(cfg, "outbox: dir") {
					t.Fatal("the test config has no mail section to set outbox in")
				}
			}
			base, svc, logs, _ := startService(t, cfg)
			postHello := func(msg string) (int, string) {
				req, _ := http.NewRequest("POST", base+"/f/hello", strings.NewReader(url.Values{
					"name": {"Ada"}, "email": {"ada@example.org"}, "message": {msg}}.Encode()))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				req.Header.Set("Origin", "http://site.test")
				req.Header.Set("Accept", "application/json")
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				b, _ := io.ReadAll(resp.Body)
				return resp.StatusCode, string(b)
			}
			if code, b := postHello("via redis"); code != 200 {
				t.Fatalf("post: %d %s", code, b)
			}
			waitFor(t, "the .eml file", func() bool { return len(emlFiles(t, svc.SentDir())) == 1 })
			resp, err := http.Get(base + "/readyz")
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || !strings.Contains(string(b), `"redis":"ok"`) {
				t.Fatalf("/readyz: %d %s", resp.StatusCode, b)
			}
			if !strings.Contains(logs.String(), `"limits":"redis"`) {
				t.Errorf("start-up log does not say limits are in redis")
			}
			r.Stop()
			code, b2 := postHello("while redis is down")
			if code != tc.wantDown {
				t.Errorf("post while redis is down: %d %s, want %d", code, b2, tc.wantDown)
			}
			if tc.wantCode != "" && !strings.Contains(b2, `"code":"`+tc.wantCode+`"`) {
				t.Errorf("post while redis is down: %s, want code %s", b2, tc.wantCode)
			}
			if tc.dirOutbox {
				// Queued in the directory, not the stream: the post
				// made with Redis down is delivered as well.
				if code == http.StatusOK {
					waitFor(t, "the second .eml file", func() bool { return len(emlFiles(t, svc.SentDir())) == 2 })
				}
				if strings.Contains(logs.String(), "redis stream") {
					t.Errorf("start-up log names the redis stream as the outbox with mail.outbox: dir")
				}
			}
			resp, err = http.Get(base + "/readyz")
			if err != nil {
				t.Fatal(err)
			}
			b, _ = io.ReadAll(resp.Body)
			resp.Body.Close()
			if tc.fallback && tc.dirOutbox {
				// Still deciding and queueing durably: degraded, ready.
				if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), `"redis":"degraded"`) {
					t.Errorf("/readyz with redis down, fallback and a dir outbox: %d %s, want 200 and redis degraded", resp.StatusCode, b)
				}
			} else if resp.StatusCode != http.StatusServiceUnavailable {
				t.Errorf("/readyz with redis down: %d %s", resp.StatusCode, b)
			}
			r.Restart(t)
		})
	}
}

func TestWriteNewNeverOverwrites(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dkim.pem")
	for _, tc := range []struct {
		name        string
		data        string
		wantCreated bool
	}{
		{"the first write creates the file", "first", true},
		{"a second write leaves it alone", "second", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			created, err := writeNew(path, []byte(tc.data))
			if err != nil || created != tc.wantCreated {
				t.Fatalf("created %v err %v", created, err)
			}
			b, err := os.ReadFile(path)
			if err != nil || string(b) != "first" {
				t.Fatalf("content %q (%v)", b, err)
			}
			st, _ := os.Stat(path)
			if st.Mode().Perm() != 0o600 {
				t.Errorf("mode %v", st.Mode())
			}
			left, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".tmp-key-*"))
			if len(left) != 0 {
				t.Errorf("temporary files left: %v", left)
			}
		})
	}
}

func TestServiceUsesFormTemplates(t *testing.T) {
	cfg := strings.Replace(serviceConfig, "hello: {to: [support@example.test], captcha: {provider: none}}",
		`hello: {to: [support@example.test], captcha: {provider: none}, template: {subject: "Web note from {{.Name}}"}}`, 1)
	base, svc, _, _ := startService(t, cfg)
	req, _ := http.NewRequest("POST", base+"/f/hello", strings.NewReader(url.Values{
		"name": {"Ada"}, "email": {"ada@example.org"}, "message": {"templated"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "http://site.test")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("post: %d", resp.StatusCode)
	}
	waitFor(t, "the .eml file", func() bool { return len(emlFiles(t, svc.SentDir())) == 1 })
	eml, err := os.ReadFile(emlFiles(t, svc.SentDir())[0])
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(eml, []byte("Subject: Web note from Ada\r\n")) {
		t.Errorf("the configured subject was not used:\n%s", eml)
	}
}

// parseConfig parses y as the service's YAML with no environment.
func parseConfig(t *testing.T, y string) *config.Config {
	t.Helper()
	cfg, err := config.Parse("svc.yaml", []byte(y), config.Options{Getenv: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestOpenFailsCleanly: a part that cannot be opened is an error from
// Open, with everything opened before it closed again, never a panic.
func TestOpenFailsCleanly(t *testing.T) {
	dir := t.TempDir()
	notDir := filepath.Join(dir, "outbox")
	if err := os.WriteFile(notDir, []byte("a file, not a directory"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := parseConfig(t, strings.Replace(strings.ReplaceAll(serviceConfig, "DATA", dir),
		"dkim: {generate: true}", "dkim: {generate: true}\n  outbox_dir: "+notDir, 1))
	svc, err := Open(context.Background(), cfg, Options{Logger: slog.New(slog.NewJSONHandler(io.Discard, nil)), SkipDoctor: true})
	if err == nil {
		svc.Close()
		t.Fatal("Open accepted an outbox directory that is a file")
	}
	if !strings.Contains(err.Error(), "outbox") {
		t.Errorf("error %q does not name the outbox", err)
	}
}
