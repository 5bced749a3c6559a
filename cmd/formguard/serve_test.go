package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/formguard/formguard/internal/testutil"
)

// lockedBuffer collects the service's log while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func freePort(t *testing.T) int {
	t.Helper()
	p, err := testutil.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// status GETs u, or returns 0 when nothing answers.
func status(u string) int {
	resp, err := http.Get(u)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestServeAdminListen runs `formguard serve` on real loopback ports: a
// bare admin_listen port (in the file, or FORMGUARD_ADMIN_LISTEN) serves
// /metrics and /readyz on 127.0.0.1, and the public listener no longer
// does; an admin address that cannot be bound is exit 1.
func TestServeAdminListen(t *testing.T) {
	for _, tc := range []struct {
		name     string
		inFile   bool // admin_listen in the file, else in the environment
		taken    bool // the admin port is in use
		wantCode int
	}{
		{"a bare port in the file", true, false, exitOK},
		{"FORMGUARD_ADMIN_LISTEN", false, false, exitOK},
		{"an admin port in use", true, true, exitFailure},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := inDir(t)
			public, admin := freePort(t), freePort(t)
			if tc.taken {
				ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(admin))
				if err != nil {
					t.Fatal(err)
				}
				defer ln.Close()
			}
			cfg := fmt.Sprintf("listen: 127.0.0.1:%d\ndata_dir: %s\nlog: {format: json}\n", public, dir) +
				"site: {domain: example.test, origins: [\"http://site.test\"]}\n" +
				"mail: {from: a@example.test, dkim: {key_file: " + absKey(t) + "}}\nforms: {c: {to: [b@example.test]}}\n"
			vars := map[string]string{}
			if tc.inFile {
				cfg += fmt.Sprintf("admin_listen: \"%d\"\n", admin)
			} else {
				vars["FORMGUARD_ADMIN_LISTEN"] = ":" + strconv.Itoa(admin)
			}
			path := filepath.Join(dir, "formguard.yaml")
			if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			logs := &lockedBuffer{}
			done := make(chan int, 1)
			go func() {
				done <- run(ctx, []string{"serve", "-config", path}, env{stdout: logs, stderr: logs, getenv: func(k string) (string, bool) {
					v, ok := vars[k]
					return v, ok
				}})
			}()
			adminURL := fmt.Sprintf("http://127.0.0.1:%d", admin)
			publicURL := fmt.Sprintf("http://127.0.0.1:%d", public)
			if tc.wantCode == exitFailure {
				select {
				case code := <-done:
					if code != exitFailure || !strings.Contains(logs.String(), "cannot listen") {
						t.Fatalf("exit %d, want %d with cannot listen:\n%s", code, exitFailure, logs)
					}
					if !strings.Contains(logs.String(), "or set FORMGUARD_ADMIN_LISTEN (or admin_listen in the config) to a free address") {
						t.Errorf("a port in use gives no hint:\n%s", logs)
					}
				case <-time.After(10 * time.Second):
					t.Fatalf("serve kept running with its admin port taken:\n%s", logs)
				}
				if status(publicURL+"/healthz") != 0 {
					t.Error("the public listener is still open")
				}
				return
			}
			deadline := time.Now().Add(10 * time.Second)
			for status(adminURL+"/metrics") != 200 {
				if time.Now().After(deadline) {
					t.Fatalf("no /metrics on %s:\n%s", adminURL, logs)
				}
				time.Sleep(20 * time.Millisecond)
			}
			for u, want := range map[string]int{
				adminURL + "/readyz": 200, adminURL + "/healthz": 200,
				publicURL + "/metrics": 404, publicURL + "/readyz": 404, publicURL + "/healthz": 200,
				publicURL + "/": 404, // no demo page unless the config asks for one
			} {
				if got := status(u); got != want {
					t.Errorf("GET %s: %d, want %d", u, got, want)
				}
			}
			cancel()
			if code := <-done; code != exitOK {
				t.Fatalf("exit %d:\n%s", code, logs)
			}
			if !strings.Contains(logs.String(), fmt.Sprintf(`"admin_addr":"127.0.0.1:%d"`, admin)) {
				t.Errorf("the start-up line does not give the admin address:\n%s", logs)
			}
		})
	}
}
