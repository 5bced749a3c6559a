package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The documented exit statuses, from the real binary.
func TestExitStatus(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("site: {domain: example.org}\nmail: {from: x@evil.test}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		args   []string
		env    []string
		status int
		want   string
	}{
		{"serve -check on the demo is valid", []string{"serve", "-check"}, nil, 0, "domain: example.test"},
		{"an invalid config is 2 and names the key", []string{"serve", "-config", bad}, nil, 2, "bad.yaml:2: mail.from: must be on site.domain"},
		{"a bad FORMGUARD_LISTEN is 2 and names the variable", []string{"-check"}, []string{"FORMGUARD_LISTEN=nowhere"}, 2, "listen (from FORMGUARD_LISTEN)"},
		{"an unknown command is 2", []string{"send-spam"}, nil, 2, "unknown command"},
		{"dkim-keygen prints the record", []string{"dkim-keygen", "-domain", "example.org", "-out", filepath.Join(dir, "k.pem")}, nil, 0, "s1._domainkey.example.org. IN TXT"},
		{"a port in use is 1", []string{"serve"}, []string{"FORMGUARD_LISTEN=BUSY"}, 1, "cannot listen"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := tc.env
			if len(env) == 1 && env[0] == "FORMGUARD_LISTEN=BUSY" {
				p := start(t, t.TempDir(), nil) // holds a port
				env = []string{"FORMGUARD_LISTEN=" + strings.TrimPrefix(p.URL, "http://")}
			}
			status, out, errs := runCLI(t, t.TempDir(), env, tc.args...)
			if status != tc.status {
				t.Errorf("status %d, want %d\nstdout: %s\nstderr: %s", status, tc.status, out, errs)
			}
			if !strings.Contains(out+errs, tc.want) {
				t.Errorf("output lacks %q\nstdout: %s\nstderr: %s", tc.want, out, errs)
			}
		})
	}
}

// SIGINT stops the service as cleanly as SIGTERM.
func TestSIGINT(t *testing.T) {
	p := start(t, t.TempDir(), nil)
	if err := p.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		t.Fatal("no exit after SIGINT")
	}
	if code := p.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("exit status %d", code)
	}
	if len(logLines(p.logs.String(), "stopped cleanly")) != 1 {
		t.Errorf("no clean-stop log line:\n%s", p.logs)
	}
}
