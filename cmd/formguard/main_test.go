package main

import (
	"bytes"
	"context"
	"crypto"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/formguard/formguard/mailer"
)

// cli runs the command in-process with a fake environment.
func cli(t *testing.T, vars map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), args, env{stdout: &out, stderr: &errb, getenv: func(k string) (string, bool) {
		v, ok := vars[k]
		return v, ok
	}})
	return code, out.String(), errb.String()
}

// inDir runs the test in a fresh working directory (no formguard.yaml).
func inDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	t.Chdir(dir)
	return dir
}

const testKeyPath = "../../testdata/config/dkim-ed25519.pem"

// keyAbs is testKeyPath made absolute before any test changes directory.
var keyAbs = func() string {
	p, err := filepath.Abs(testKeyPath)
	if err != nil {
		panic(err)
	}
	return p
}()

func absKey(t *testing.T) string { return keyAbs }

func TestUsage(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantOut  string // in stdout or stderr
	}{
		{"help prints the usage", []string{"help"}, exitOK, "formguard dkim-keygen"},
		{"an unknown command is a usage error", []string{"frobnicate"}, exitUsage, `unknown command "frobnicate"`},
		{"an unknown flag is a usage error", []string{"serve", "-bogus"}, exitUsage, "flag provided but not defined: -bogus"},
		{"a stray argument is a usage error", []string{"serve", "extra"}, exitUsage, `unexpected argument "extra"`},
		{"serve -h is help, not an error", []string{"serve", "-h"}, exitOK, "-check"},
		{"version", []string{"version"}, exitOK, "formguard devel"},
		{"-h lists the commands", []string{"-h"}, exitOK, "formguard doctor      Check the domain's SPF"},
		{"--help lists the commands", []string{"--help"}, exitOK, "formguard version     Print the version."},
		{"help lists serve as the default", []string{"help"}, exitOK, "formguard [serve]     Serve the forms"},
		{"dkim-keygen needs -domain and -out", []string{"dkim-keygen"}, exitUsage, "-domain and -out required"},
		{"dkim-keygen refuses an unknown algorithm", []string{"dkim-keygen", "-alg", "dsa", "-domain", "example.org", "-out", "k.pem"}, exitUsage, "unknown key algorithm"},
		{"dkim-keygen refuses weak RSA", []string{"dkim-keygen", "-bits", "1024", "-domain", "example.org", "-out", "k.pem"}, exitUsage, "outside 2048..4096"},
		{"doctor refuses a bad relay IP", []string{"doctor", "-relay-ip", "nope"}, exitUsage, "not an IP address"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			inDir(t)
			code, out, errs := cli(t, nil, tc.args...)
			if code != tc.wantCode {
				t.Errorf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tc.wantCode, out, errs)
			}
			if !strings.Contains(out+errs, tc.wantOut) {
				t.Errorf("output lacks %q\nstdout: %s\nstderr: %s", tc.wantOut, out, errs)
			}
		})
	}
}

// TestVersionOf: the module version, and the VCS revision when the build
// recorded one.
func TestVersionOf(t *testing.T) {
	for _, tc := range []struct {
		name string
		info *debug.BuildInfo
		want string
	}{
		{"no build info", nil, "devel"},
		{"a work tree build", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, "devel"},
		{"go install of a release", &debug.BuildInfo{Main: debug.Module{Version: "v1.2.3"}}, "v1.2.3"},
		{"a build with VCS stamping", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "0123abcd"}, {Key: "vcs.modified", Value: "true"}}}, "devel (0123abcd, modified)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := versionOf(tc.info, tc.info != nil); got != tc.want {
				t.Errorf("versionOf = %q, want %q", got, tc.want)
			}
		})
	}
}

// TestServeCheckEffective: -check prints what the guard will use, not the
// zero values the file left unset, and names the key of a bad value.
func TestServeCheckEffective(t *testing.T) {
	dir := inDir(t)
	cfg := "site: {domain: formguard.dev, origins: [\"https://formguard.dev:443\"]}\nmail: {from: a@formguard.dev, dkim: {key_file: " + absKey(t) + "}}\n" +
		"forms: {c: {to: [b@formguard.dev]}, s: {kind: share}}\n"
	path := filepath.Join(dir, "formguard.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errs := cli(t, nil, "serve", "-check")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errs)
	}
	for _, want := range []string{
		"- https://formguard.dev\n", "require_email: true", "max_links: 3", "max_name: 100", "max_message: 5000",
		"max_recipients: 1", "max_message: 500", "per_ip: 5/h", "choice_field: \"\"", "demo: false",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("-check output lacks %q:\n%s", want, out)
		}
	}
	bad := strings.Replace(cfg, "{to: [b@formguard.dev]}", "{to: [b@formguard.dev], limits: {per_ip: 5/hour}}", 1)
	if err := os.WriteFile(path, []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errs = cli(t, nil, "serve", "-check")
	if code != exitUsage || !strings.Contains(errs, "formguard.yaml:3: forms.c.limits.per_ip: ratelimit: bad limit \"5/hour\"") {
		t.Fatalf("exit %d: %s", code, errs)
	}
}

func TestServeCheck(t *testing.T) {
	t.Run("the demo config is valid and printed", func(t *testing.T) {
		inDir(t)
		code, out, errs := cli(t, map[string]string{"FORMGUARD_CAPTCHA_SECRET": "pow-secret-value"}, "serve", "-check")
		if code != exitOK {
			t.Fatalf("exit %d: %s", code, errs)
		}
		for _, want := range []string{"# effective configuration from built-in demo", "domain: example.test", "outbox_dir: ./var/outbox", "secret: '[redacted]'"} {
			if !strings.Contains(out, want) {
				t.Errorf("stdout lacks %q:\n%s", want, out)
			}
		}
		if strings.Contains(out+errs, "pow-secret-value") {
			t.Error("a secret was printed")
		}
	})
	t.Run("formguard.yaml in the working directory is used", func(t *testing.T) {
		dir := inDir(t)
		cfg := "site: {domain: formguard.dev, origins: [\"https://formguard.dev\"]}\nmail: {from: a@formguard.dev, dkim: {key_file: " + absKey(t) + "}}\nforms: {c: {to: [b@formguard.dev]}}\n"
		if err := os.WriteFile(filepath.Join(dir, "formguard.yaml"), []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
		code, out, errs := cli(t, nil, "-check")
		if code != exitOK || !strings.Contains(out, "from formguard.yaml") || !strings.Contains(out, "domain: formguard.dev") {
			t.Fatalf("exit %d\n%s\n%s", code, out, errs)
		}
		if !strings.Contains(errs, "warning: mail.transport is file") {
			t.Errorf("-check does not print the config's warnings: %s", errs)
		}
	})
	t.Run("an invalid config is exit 2 with file and line", func(t *testing.T) {
		dir := inDir(t)
		bad := filepath.Join(dir, "bad.yaml")
		if err := os.WriteFile(bad, []byte("site:\n  domain: example.org\n  origns: []\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		code, _, errs := cli(t, nil, "serve", "-config", bad, "-check")
		if code != exitUsage || !strings.Contains(errs, "bad.yaml") || !strings.Contains(errs, "bad.yaml:3: site.origns: unknown key") {
			t.Fatalf("exit %d: %s", code, errs)
		}
	})
	t.Run("a DKIM key that does not parse is exit 2", func(t *testing.T) {
		dir := inDir(t)
		key := filepath.Join(dir, "dkim.pem")
		if err := os.WriteFile(key, []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg := "site: {domain: example.org, origins: [\"https://example.org\"]}\nmail: {from: a@example.org, dkim: {key_file: " + key + "}}\nforms: {c: {to: [b@example.org]}}\n"
		if err := os.WriteFile(filepath.Join(dir, "formguard.yaml"), []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
		code, _, errs := cli(t, nil, "serve", "-check")
		if code != exitUsage || !strings.Contains(errs, "mail.dkim.key_file: mailer: DKIM key") {
			t.Fatalf("exit %d: %s", code, errs)
		}
	})
	t.Run("a missing config file is exit 2", func(t *testing.T) {
		inDir(t)
		code, _, errs := cli(t, nil, "serve", "-config", "nope.yaml", "-check")
		if code != exitUsage || !strings.Contains(errs, "nope.yaml") {
			t.Fatalf("exit %d: %s", code, errs)
		}
	})
}

func TestKeygen(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"rsa", []string{"-domain", "example.org", "-selector", "k2026"}, "k=rsa"},
		{"ed25519", []string{"-alg", "ed25519", "-domain", "example.org"}, "k=ed25519"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := inDir(t)
			out := filepath.Join(dir, "dkim.pem")
			code, stdout, errs := cli(t, nil, append([]string{"dkim-keygen", "-out", out}, tc.args...)...)
			if code != exitOK {
				t.Fatalf("exit %d: %s", code, errs)
			}
			st, err := os.Stat(out)
			if err != nil || st.Mode().Perm() != 0o600 {
				t.Fatalf("key file: %v mode %v", err, st.Mode())
			}
			signer, err := mailer.LoadKey(out)
			if err != nil {
				t.Fatal(err)
			}
			sel := "s1"
			if strings.Contains(strings.Join(tc.args, " "), "k2026") {
				sel = "k2026"
			}
			name, txt, err := mailer.DNSRecord(sel, "example.org", signer.Public())
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(stdout, name+". IN TXT (") || !strings.Contains(stdout, "Value: "+txt) || !strings.Contains(stdout, tc.want) {
				t.Errorf("stdout does not publish the key's record %s:\n%s", name, stdout)
			}
			// Never overwrite a key.
			code, _, errs = cli(t, nil, append([]string{"dkim-keygen", "-out", out}, tc.args...)...)
			if code != exitFailure || !strings.Contains(errs, "refusing to overwrite") {
				t.Errorf("second run: exit %d: %s", code, errs)
			}
			if again, _ := mailer.LoadKey(out); again == nil || !again.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(signer.Public()) {
				t.Error("the key file changed")
			}
		})
	}
}

// zone is a tiny authoritative DNS server for the doctor tests.
type zone map[string][]string // name -> TXT values

func startDNS(t *testing.T, z zone) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		m.Authoritative = true
		q := r.Question[0]
		vals, ok := z[strings.ToLower(strings.TrimSuffix(q.Name, "."))]
		if !ok {
			m.Rcode = dns.RcodeNameError
		} else if q.Qtype == dns.TypeTXT {
			for _, v := range vals {
				m.Answer = append(m.Answer, &dns.TXT{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 60}, Txt: mailer.SplitTXT(v)})
			}
		}
		_ = w.WriteMsg(m)
	})}
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	go func() { _ = srv.ActivateAndServe() }()
	<-started
	t.Cleanup(func() { _ = srv.Shutdown() })
	return pc.LocalAddr().String()
}

func TestDoctor(t *testing.T) {
	signer, err := mailer.LoadKey(keyAbs)
	if err != nil {
		t.Fatal(err)
	}
	_, dkimTXT, err := mailer.DNSRecord("s1", "example.org", signer.Public())
	if err != nil {
		t.Fatal(err)
	}
	good := zone{
		"example.org":               {"v=spf1 ip4:192.0.2.25 -all"},
		"s1._domainkey.example.org": {dkimTXT},
		"_dmarc.example.org":        {"v=DMARC1; p=reject"},
	}
	bad := zone{"example.org": {"v=spf1 +all"}}
	tests := []struct {
		name     string
		zone     zone
		args     []string
		wantCode int
		want     []string
	}{
		{"a correct domain passes", good, []string{"-relay-ip", "192.0.2.25"}, exitOK, []string{"formguard doctor: example.org"}},
		{"a wide-open SPF and missing DKIM fail with exit 1", bad, []string{"-relay-ip", "192.0.2.25"}, exitFailure, []string{"SPF_ALL_PASS", "DKIM_MISSING", "DMARC_MISSING", "FAIL"}},
		{"-json prints the report as JSON", bad, []string{"-json"}, exitFailure, []string{`"code": "SPF_ALL_PASS"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := inDir(t)
			cfg := "site: {domain: example.org, origins: [\"https://example.org\"]}\nmail: {from: a@example.org, dkim: {key_file: " + absKey(t) + "}}\nforms: {c: {to: [b@example.org]}}\n"
			cfgFile := filepath.Join(dir, "fg.yaml")
			if err := os.WriteFile(cfgFile, []byte(cfg), 0o644); err != nil {
				t.Fatal(err)
			}
			addr := startDNS(t, tc.zone)
			code, out, errs := cli(t, nil, append([]string{"doctor", "-config", cfgFile, "-dns", addr}, tc.args...)...)
			if code != tc.wantCode {
				t.Errorf("exit %d, want %d\n%s\n%s", code, tc.wantCode, out, errs)
			}
			for _, w := range tc.want {
				if !strings.Contains(strings.ReplaceAll(out, `":"`, `": "`), w) {
					t.Errorf("stdout lacks %q:\n%s", w, out)
				}
			}
			if strings.Contains(strings.Join(tc.args, " "), "-json") {
				var v map[string]any
				if err := json.Unmarshal([]byte(out), &v); err != nil {
					t.Errorf("-json output is not JSON: %v\n%s", err, out)
				}
			}
			if !strings.Contains(strings.Join(tc.args, " "), "-relay-ip") && !strings.Contains(errs, "no -relay-ip given") {
				t.Errorf("stderr does not say where relay IPs came from: %s", errs)
			}
		})
	}
	t.Run("an unreachable DNS server is exit 2", func(t *testing.T) {
		dir := inDir(t)
		cfg := "site: {domain: example.org, origins: [\"https://example.org\"]}\nmail: {from: a@example.org, dkim: {key_file: " + absKey(t) + "}}\nforms: {c: {to: [b@example.org]}}\n"
		cfgFile := filepath.Join(dir, "fg.yaml")
		if err := os.WriteFile(cfgFile, []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
		pc, err := net.ListenPacket("udp", "127.0.0.1:0") // bound, never answers
		if err != nil {
			t.Fatal(err)
		}
		defer pc.Close()
		code, out, errs := cli(t, nil, "doctor", "-config", cfgFile, "-dns", pc.LocalAddr().String(), "-timeout", "3s")
		if code != exitUsage {
			t.Errorf("exit %d, want %d\n%s\n%s", code, exitUsage, out, errs)
		}
	})
}
