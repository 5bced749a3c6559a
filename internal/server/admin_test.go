package server

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

func get(t *testing.T, u string) (int, string) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func postHelloTo(t *testing.T, base, extra string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", base+"/f/hello", strings.NewReader(url.Values{
		"name": {"Ada"}, "email": {"ada@example.org"}, "message": {"Hello"}}.Encode()+extra))
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

// TestAdminListen runs the service on real loopback listeners: with
// admin_listen, /readyz and /metrics answer only on the admin address and
// the forms only on the public one; /healthz is on both. Without it,
// everything is on the public listener, as before.
func TestAdminListen(t *testing.T) {
	for _, tc := range []struct {
		name  string
		admin bool
	}{
		{"with admin_listen", true},
		{"without admin_listen", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := serviceConfig
			if tc.admin {
				cfg += "admin_listen: ADMIN\n"
			}
			base, admin, _, logs, stop := startServiceAdmin(t, cfg)
			if code, b := postHelloTo(t, base, ""); code != 200 {
				t.Fatalf("post: %d %s", code, b)
			}
			if code, b := postHelloTo(t, base, "&_gotcha=x"); code != 200 {
				t.Fatalf("honeypot post: %d %s", code, b)
			}
			public := map[string]int{"/healthz": 200, "/readyz": 200, "/metrics": 200}
			if tc.admin {
				public["/readyz"], public["/metrics"] = 404, 404
				for path, want := range map[string]int{"/healthz": 200, "/readyz": 200, "/metrics": 200, "/": 404, "/f/hello": 404} {
					if code, b := get(t, admin+path); code != want {
						t.Errorf("admin GET %s: %d, want %d: %s", path, code, want, b)
					}
				}
				if code, _ := postHelloTo(t, admin, ""); code != 404 {
					t.Errorf("a post to the admin listener: %d, want 404", code)
				}
			}
			for path, want := range public {
				if code, b := get(t, base+path); code != want {
					t.Errorf("public GET %s: %d, want %d: %s", path, code, want, b)
				}
			}
			metricsAt := base
			if tc.admin {
				metricsAt = admin
			}
			_, m := get(t, metricsAt+"/metrics")
			for _, want := range []string{
				`formguard_decisions_total{code="accepted",form="hello"} 1`,
				`formguard_decisions_total{code="honeypot",form="hello"} 1`,
				"formguard_penalty_errors_total 0",
				"formguard_log_lines_suppressed_total ",
			} {
				if !strings.Contains(m, want) {
					t.Errorf("/metrics lacks %s", want)
				}
			}
			if _, b := get(t, metricsAt+"/readyz"); !strings.Contains(b, `"outbox":"ok"`) {
				t.Errorf("/readyz: %s", b)
			}
			if err := stop(); err != nil {
				t.Fatalf("Run: %v", err)
			}
			if got := strings.Contains(logs.String(), `"admin_addr":"`+strings.TrimPrefix(admin, "http://")+`"`); got != tc.admin {
				t.Errorf("start-up log names the admin address: %v, want %v", got, tc.admin)
			}
			if tc.admin {
				if _, err := net.Dial("tcp", strings.TrimPrefix(admin, "http://")); err == nil {
					t.Error("the admin listener still accepts after Run returned")
				}
			}
		})
	}
}

// TestRunChecksAdminListener: Run refuses to start without the admin
// listener admin_listen asks for, and with one it does not.
func TestRunChecksAdminListener(t *testing.T) {
	for _, tc := range []struct {
		name        string
		adminListen bool
		giveAdmin   bool
	}{
		{"admin_listen set, no admin listener", true, false},
		{"admin_listen unset, an admin listener", false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			y := strings.ReplaceAll(serviceConfig, "DATA", t.TempDir())
			if tc.adminListen {
				y += "admin_listen: \"127.0.0.1:1\"\n"
			}
			cfg := parseConfig(t, y)
			svc, err := Open(context.Background(), cfg, Options{Logger: slog.New(slog.DiscardHandler), SkipDoctor: true})
			if err != nil {
				t.Fatal(err)
			}
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			var admin net.Listener
			if tc.giveAdmin {
				if admin, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
					t.Fatal(err)
				}
			}
			err = svc.Run(context.Background(), ln, admin)
			if err == nil || !strings.Contains(err.Error(), "admin listener") {
				t.Fatalf("Run: %v, want the admin listener refused", err)
			}
			if _, err := net.Dial("tcp", ln.Addr().String()); err == nil {
				t.Error("the public listener was left open")
			}
		})
	}
}
