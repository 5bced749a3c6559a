package config

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/formguard/formguard/guard"
	"github.com/formguard/formguard/guard/ratelimit"
)

const testKey = "../../testdata/config/dkim-ed25519.pem"

// env is a fake environment for Options.Getenv.
func env(kv ...string) Options {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return Options{Getenv: func(k string) (string, bool) { v, ok := m[k]; return v, ok }}
}

// minimal is the smallest valid config; tests append to or edit it.
const minimal = `
site: {domain: example.test, origins: ["https://example.test"]}
mail:
  from: no-reply@example.test
  dkim: {key_file: ` + testKey + `}
forms:
  contact: {to: [support@example.test]}
`

func TestDemoLoads(t *testing.T) {
	c, err := Load("", env())
	if err != nil {
		t.Fatalf("demo config: %v", err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"listen", c.Listen, "127.0.0.1:8080"},
		{"domain", c.Site.Domain, "example.test"},
		{"origins", strings.Join(c.Site.Origins, " "), "http://127.0.0.1:8080 http://localhost:8080"},
		{"transport", c.Mail.Transport, TransportFile},
		{"outbox", c.Mail.Outbox, OutboxKindDir},
		{"outbox dir", c.Mail.OutboxDir, "./var/outbox"},
		{"dkim key", c.Mail.DKIM.KeyFile, "./var/dkim.pem"},
		{"dkim generate", c.Mail.DKIM.Generate, true},
		{"captcha", c.Captcha.Provider, ProviderPoW},
		{"redis", c.RedisURL, ""},
		{"forms", strings.Join(c.FormNames(), ","), "contact,hello,share"},
		{"share max", c.Forms["share"].MaxRecipients, 3},
		{"hello captcha", c.FormCaptcha("hello").Provider, ProviderNone},
		{"contact captcha", c.FormCaptcha("contact").Provider, ProviderPoW},
		{"global", c.GlobalLimit(), ratelimit.Limit{Count: 200, Period: time.Hour}},
		{"site name", c.Site.Name, "Example"},
	}
	for _, tc := range checks {
		t.Run(tc.name, func(t *testing.T) {
			if fmt.Sprint(tc.got) != fmt.Sprint(tc.want) {
				t.Errorf("got %v, want %v", tc.got, tc.want)
			}
		})
	}
}

func TestDemoOriginsFollowListen(t *testing.T) {
	for _, tc := range []struct{ listen, want string }{
		{"127.0.0.1:9123", "http://127.0.0.1:9123 http://localhost:9123"},
		{"0.0.0.0:80", "http://127.0.0.1 http://localhost"},
		{"192.0.2.7:8080", "http://192.0.2.7:8080"},
	} {
		t.Run(tc.listen, func(t *testing.T) {
			c, err := Load("", env(EnvListen, tc.listen))
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(c.Site.Origins, " "); got != tc.want {
				t.Errorf("origins %q, want %q", got, tc.want)
			}
		})
	}
	// A config file's origins are never rewritten.
	c, err := Parse("t.yaml", []byte(minimal), env(EnvListen, "127.0.0.1:9123"))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(c.Site.Origins, " "); got != "https://example.test" {
		t.Errorf("file origins rewritten: %q", got)
	}
}

func TestFullExample(t *testing.T) {
	c, err := Load("../../testdata/config/full.yaml", env(
		"FG_TEST_SMTP_PASSWORD", "hunter2",
		"FG_TEST_TURNSTILE_SECRET", "ts-secret",
		"FG_TEST_KEY_SECRET", "k3y"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Mail.SMTP.Password.Reveal() != "hunter2" || c.Captcha.Secret.Reveal() != "ts-secret" || c.KeySecret.Reveal() != "k3y" {
		t.Errorf("secrets not resolved: %q %q %q", c.Mail.SMTP.Password.Reveal(), c.Captcha.Secret.Reveal(), c.KeySecret.Reveal())
	}
	if got := c.FormCaptcha("share"); got.Provider != ProviderPoW || got.PoW.MaxNumber != 200000 || got.PoW.Expires != 5*time.Minute || got.Secret.IsSet() {
		t.Errorf("share captcha override = %+v", got)
	}
	if got := c.Forms["contact"].Limits.PerRecipient.Limit; got != guard.DefaultPerRecipient {
		t.Errorf("unset per_recipient = %v, want the guard default %v", got, guard.DefaultPerRecipient)
	}
	if got := c.GlobalLimit(); got != (ratelimit.Limit{Count: 200, Period: time.Hour}) {
		t.Errorf("global = %v, want the strictest (200/h)", got)
	}
	if c.Forms["newsletter-feedback"].Kind != KindContact {
		t.Errorf("kind did not default to contact")
	}
}

func TestEnvOverrides(t *testing.T) {
	y := strings.Replace(minimal, "mail:\n", "mail:\n  smtp: {username: formguard}\n", 1)
	c, err := Parse("t.yaml", []byte(y), env(
		EnvListen, "127.0.0.1:9999",
		EnvAdminListen, "9998",
		EnvRedisURL, "redis://127.0.0.1:6380/1",
		EnvSMTPAddr, "relay.example.test:2525",
		EnvSMTPPassword, "pw",
		EnvCaptchaSecret, "cs"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, got, want string }{
		{"listen", c.Listen, "127.0.0.1:9999"},
		{"admin listen (a bare port is loopback)", c.AdminListen, "127.0.0.1:9998"},
		{"redis", c.RedisURL, "redis://127.0.0.1:6380/1"},
		{"smtp addr", c.Mail.SMTP.Addr, "relay.example.test:2525"},
		{"smtp password", c.Mail.SMTP.Password.Reveal(), "pw"},
		{"captcha secret", c.Captcha.Secret.Reveal(), "cs"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.got != tc.want {
				t.Errorf("got %q, want %q", tc.got, tc.want)
			}
		})
	}
}

// TestAdminListen: a bare port binds loopback; a host is kept as written;
// unset stays unset (everything on listen).
func TestAdminListen(t *testing.T) {
	for _, tc := range []struct{ name, value, want string }{
		{"unset", "", ""},
		{"a bare port with a colon binds loopback", `":9090"`, "127.0.0.1:9090"},
		{"a bare port binds loopback", `"9090"`, "127.0.0.1:9090"},
		{"a host is kept", `"[::1]:9090"`, "[::1]:9090"},
		{"every interface when asked for", `"0.0.0.0:9090"`, "0.0.0.0:9090"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			y := minimal
			if tc.value != "" {
				y += "admin_listen: " + tc.value + "\n"
			}
			c, err := Parse("t.yaml", []byte(y), env())
			if err != nil {
				t.Fatal(err)
			}
			if c.AdminListen != tc.want {
				t.Errorf("admin_listen = %q, want %q", c.AdminListen, tc.want)
			}
		})
	}
}

// TestLimitsKeys: per_network defaults to the guard's and can be set per
// form; the capacity knobs pass through, 0 meaning the library default.
func TestLimitsKeys(t *testing.T) {
	y := strings.Replace(minimal, "{to: [support@example.test]}", "{to: [support@example.test]}\n  narrow: {to: [support@example.test], limits: {per_network: 7/10m}}", 1) +
		"limits: {memory_keys: 4096, replay_entries: 512}\n"
	c, err := Parse("t.yaml", []byte(y), env())
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Forms["contact"].Limits.PerNetwork.Limit; got != guard.DefaultPerNetwork {
		t.Errorf("unset per_network = %v, want the guard default %v", got, guard.DefaultPerNetwork)
	}
	if got := c.Forms["narrow"].Limits.PerNetwork.Limit; got != (ratelimit.Limit{Count: 7, Period: 10 * time.Minute}) {
		t.Errorf("per_network = %v, want 7/10m", got)
	}
	if c.Limits.MemoryKeys != 4096 || c.Limits.ReplayEntries != 512 {
		t.Errorf("memory_keys %d replay_entries %d, want 4096 and 512", c.Limits.MemoryKeys, c.Limits.ReplayEntries)
	}
	d, err := Parse("t.yaml", []byte(minimal), env())
	if err != nil {
		t.Fatal(err)
	}
	if d.Limits.MemoryKeys != 0 || d.Limits.ReplayEntries != 0 || d.AdminListen != "" {
		t.Errorf("defaults: memory_keys %d replay_entries %d admin_listen %q, want 0, 0 and unset", d.Limits.MemoryKeys, d.Limits.ReplayEntries, d.AdminListen)
	}
}

func TestEnvErrorNamesVariable(t *testing.T) {
	_, err := Parse("t.yaml", []byte(minimal), env(EnvListen, "nonsense"))
	if err == nil || !strings.Contains(err.Error(), "listen (from FORMGUARD_LISTEN)") {
		t.Fatalf("err = %v, want it to name FORMGUARD_LISTEN", err)
	}
}

func TestInvalid(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		env  []string
		want string // substring of the error, with file:line when known
	}{
		{"unknown top-level key is refused with its line", minimal + "listn: :80\n", nil, "t.yaml:8: listn: unknown key"},
		{"unknown form key is refused", strings.Replace(minimal, "{to: [support@example.test]}", "{to: [support@example.test], bcc: [x@y.test]}", 1), nil, "t.yaml:7: forms.contact.bcc: unknown key"},
		{"two documents are refused", minimal + "---\nlisten: :1\n", nil, "only one YAML document"},
		{"missing domain", strings.Replace(minimal, "domain: example.test, ", "", 1), nil, "site.domain: required"},
		{"upper-case domain", strings.Replace(minimal, "domain: example.test", "domain: Example.test", 1), nil, "t.yaml:2: site.domain"},
		{"single-label domain", strings.Replace(minimal, "domain: example.test", "domain: localhost", 1), nil, "at least two labels"},
		{"origin with a path", strings.Replace(minimal, `"https://example.test"`, `"https://example.test/contact"`, 1), nil, "site.origins[0]"},
		{"origin without scheme", strings.Replace(minimal, `"https://example.test"`, `"example.test"`, 1), nil, "site.origins[0]: \"example.test\" is not an origin: want scheme://host[:port] with scheme http or https"},
		{"no origins", strings.Replace(minimal, `origins: ["https://example.test"]`, `origins: []`, 1), nil, "site.origins: at least one"},
		{"from off the site domain", strings.Replace(minimal, "from: no-reply@example.test", "from: no-reply@evil.test", 1), nil, "t.yaml:4: mail.from: must be on site.domain"},
		{"from with a display name", strings.Replace(minimal, "from: no-reply@example.test", `from: "Bob <no-reply@example.test>"`, 1), nil, "mail.from: \"Bob <no-reply@example.test>\": display names"},
		{"unaligned bounce", strings.Replace(minimal, "from: no-reply@example.test", "from: no-reply@example.test\n  bounce: b@other.test", 1), nil, "mail.bounce: must share"},
		{"bad transport", strings.Replace(minimal, "mail:\n", "mail:\n  transport: sendmail\n", 1), nil, `mail.transport: "sendmail" is not file or smtp`},
		{"smtp without addr", strings.Replace(minimal, "mail:\n", "mail:\n  transport: smtp\n", 1), nil, "mail.smtp.addr: required with transport smtp"},
		{"bad outbox", strings.Replace(minimal, "mail:\n", "mail:\n  outbox: postgres\n", 1), nil, `mail.outbox: "postgres" is not dir or redis`},
		{"redis outbox without redis", strings.Replace(minimal, "mail:\n", "mail:\n  outbox: redis\n", 1), nil, "mail.outbox: redis needs redis_url"},
		{"inline password is refused", strings.Replace(minimal, "mail:\n", "mail:\n  smtp: {password: hunter2}\n", 1), nil, "secrets are not accepted in the config file"},
		{"password env not set", strings.Replace(minimal, "mail:\n", "mail:\n  smtp: {username: u, password_env: NOPE}\n", 1), nil, "environment variable NOPE is not set"},
		{"username without password", strings.Replace(minimal, "mail:\n", "mail:\n  smtp: {username: u}\n", 1), nil, "a password is required"},
		{"cleartext password to a remote relay", strings.Replace(minimal, "mail:\n", "mail:\n  transport: smtp\n  smtp: {addr: relay.example.test:25, tls: none, username: u, password_env: PW}\n", 1), []string{"PW", "x"}, "would send the password in clear"},
		{"missing dkim key", strings.Replace(minimal, testKey, "/nonexistent/dkim.pem", 1), nil, "formguard dkim-keygen"},
		{"bad selector", strings.Replace(minimal, "dkim: {", "dkim: {selector: Bad_Sel, ", 1), nil, "mail.dkim.selector"},
		{"bad limit names its line", strings.Replace(minimal, "{to: [support@example.test]}", "\n    to: [support@example.test]\n    limits: {per_ip: 5/fortnight}", 1), nil, "t.yaml:9: forms.contact.limits.per_ip: ratelimit: bad limit"},
		{"limit without unit", strings.Replace(minimal, "{to: [support@example.test]}", "{to: [support@example.test], limits: {per_ip: \"5\"}}", 1), nil, "want COUNT/UNIT"},
		{"no forms", strings.Replace(minimal, "forms:\n  contact: {to: [support@example.test]}\n", "", 1), nil, "forms: at least one form"},
		{"bad form name", strings.Replace(minimal, "  contact:", "  Contact.Us:", 1), nil, "a form name is"},
		{"contact without recipients", strings.Replace(minimal, "{to: [support@example.test]}", "{kind: contact}", 1), nil, "forms.contact.to: a contact form needs To or Choices"},
		{"bad recipient", strings.Replace(minimal, "[support@example.test]", "[\"support@example.test\\r\\nBcc: x@y.test\"]", 1), nil, "forms.contact.to[0]"},
		{"share with fixed recipients", strings.Replace(minimal, "{to: [support@example.test]}", "{kind: share, to: [a@example.test]}", 1), nil, "forms.contact.to: share forms take recipients from the visitor"},
		{"share with too many recipients", strings.Replace(minimal, "{to: [support@example.test]}", "{kind: share, max_recipients: 50}", 1), nil, "max_recipients: must be between 1 and 10"},
		{"share without captcha", strings.Replace(minimal, "{to: [support@example.test]}", "{kind: share, captcha: {provider: none}}", 1), nil, "open relay"},
		{"unknown kind", strings.Replace(minimal, "{to: [support@example.test]}", "{kind: relay, to: [a@example.test]}", 1), nil, `"relay" is not contact or share`},
		{"duplicate field names", strings.Replace(minimal, "{to: [support@example.test]}", "{to: [a@example.test], fields: {name: email}}", 1), nil, "is also used by"},
		{"reserved field name", strings.Replace(minimal, "{to: [support@example.test]}", "{to: [a@example.test], extra_fields: [_gotcha]}", 1), nil, "not starting with _"},
		{"offsite success url", strings.Replace(minimal, "{to: [support@example.test]}", "{to: [a@example.test], success_url: \"https://evil.test/\"}", 1), nil, "forms.contact.success_url: \"https://evil.test/\" is not on an allowed origin"},
		{"protocol-relative error url", strings.Replace(minimal, "{to: [support@example.test]}", "{to: [a@example.test], error_url: \"//evil.test/\"}", 1), nil, "error_url"},
		{"unknown captcha provider", minimal + "captcha: {provider: recaptha}\n", nil, `captcha.provider: "recaptha" is not`},
		{"turnstile without keys", minimal + "captcha: {provider: turnstile}\n", nil, "captcha.site_key: required"},
		{"turnstile without secret", minimal + "captcha: {provider: turnstile, site_key: k}\n", nil, "a secret is required for provider turnstile"},
		{"inline captcha secret", minimal + "captcha: {secret: s}\n", nil, "secrets are not accepted"},
		{"plain-http verify url", minimal + "captcha: {provider: hcaptcha, site_key: k, verify_url: \"http://hcaptcha.example/siteverify\"}\n", []string{EnvCaptchaSecret, "s"}, "must be https"},
		{"min_score off recaptcha", minimal + "captcha: {min_score: 0.5}\n", nil, "only applies to provider recaptcha"},
		{"tiny pow", minimal + "captcha: {pow: {max_number: 10}}\n", nil, "captcha.pow.max_number"},
		{"bad trusted proxy", minimal + "trusted_proxies: [\"10.0.0.0/33\"]\n", nil, "trusted_proxies[0]"},
		{"bad redis url", minimal + "redis_url: http://x\n", nil, "redis_url: scheme must be"},
		{"redis timeout over 10s", minimal + "limits: {redis_timeout: 1m}\n", nil, "limits.redis_timeout: must be between"},
		{"zero captcha verify rate names its line", minimal + "limits: {captcha_verify: 0/s}\n", nil, "t.yaml:8: limits.captcha_verify: ratelimit: bad limit"},
		{"negative redis timeout", minimal + "limits: {redis_timeout: -1s}\n", nil, "limits.redis_timeout: must be between"},
		{"bad log level", minimal + "log: {level: loud}\n", nil, "log.level"},
		{"negative timeout", minimal + "http: {read_timeout: -1s}\n", nil, "http.read_timeout: must not be negative"},
		{"wrong type", minimal + "http: {max_header_bytes: lots}\n", nil, "t.yaml:8: http.max_header_bytes: want a whole number, not \"lots\""},
		{"form token min_fill not below max_age", strings.Replace(minimal, "{to: [support@example.test]}", "{to: [a@example.test], form_token: {min_fill: 2h, max_age: 1h}}", 1), nil, "form_token.min_fill"},
		{"form token max_age too short", strings.Replace(minimal, "{to: [support@example.test]}", "{to: [a@example.test], form_token: {max_age: 10s}}", 1), nil, "form_token.max_age: must be between 1m and 168h"},
		{"admin_listen not host:port", minimal + "admin_listen: localhost\n", nil, `t.yaml:8: admin_listen: "localhost" is not host:port`},
		{"admin_listen with a bad port", minimal + "admin_listen: \"127.0.0.1:99999\"\n", nil, "admin_listen: \"127.0.0.1:99999\": bad port"},
		{"admin_listen on listen's address", minimal + "listen: 127.0.0.1:8080\nadmin_listen: \"8080\"\n", nil, "admin_listen: must differ from listen"},
		{"bad admin_listen names its variable", minimal, []string{EnvAdminListen, "a:b:c"}, "admin_listen (from FORMGUARD_ADMIN_LISTEN)"},
		{"negative memory_keys", minimal + "limits: {memory_keys: -1}\n", nil, "limits.memory_keys: must not be negative"},
		{"negative replay_entries", minimal + "limits: {replay_entries: -5}\n", nil, "limits.replay_entries: must not be negative"},
		{"bad per_network names its line", strings.Replace(minimal, "{to: [support@example.test]}", "\n    to: [support@example.test]\n    limits: {per_network: 30/fortnight}", 1), nil, "t.yaml:9: forms.contact.limits.per_network: ratelimit: bad limit"},
		{"key secret from env and file", minimal + "key_secret_env: A\nkey_secret_file: /x\n", nil, "not both"},
		{"a missing secret_file is reported under secret_file", minimal + "captcha: {secret_file: /nonexistent/secret}\n", nil, "t.yaml:8: captcha.secret_file: open /nonexistent/secret"},
		{"a form's missing secret_file names the form", strings.Replace(minimal, "{to: [support@example.test]}", "{to: [a@example.test], captcha: {secret_file: /nonexistent/s}}", 1), nil, "forms.contact.captcha.secret_file: open /nonexistent/s"},
		{"a missing password_file is reported under password_file", strings.Replace(minimal, "mail:\n", "mail:\n  smtp: {username: u, password_file: /nonexistent/pw}\n", 1), nil, "mail.smtp.password_file: open /nonexistent/pw"},
		{"inline password as a list is plainly refused", strings.Replace(minimal, "mail:\n", "mail:\n  smtp: {password: [a, b]}\n", 1), nil, "t.yaml:4: mail.smtp.password: secrets are not accepted in the config file"},
		{"password_env as a list says what it wants", strings.Replace(minimal, "mail:\n", "mail:\n  smtp: {password_env: [a]}\n", 1), nil, "t.yaml:4: mail.smtp.password_env: want a single value, not a list"},
		{"a duration as a bare number", minimal + "http: {read_timeout: 30}\n", nil, "t.yaml:8: http.read_timeout: want a duration such as 30s"},
		{"a bad limit names its key", strings.Replace(minimal, "{to: [support@example.test]}", "{to: [support@example.test], limits: {per_ip: 5/hour}}", 1), nil, "t.yaml:7: forms.contact.limits.per_ip: ratelimit: bad limit \"5/hour\""},
		{"a list where a mapping goes", minimal + "log: [json]\n", nil, "t.yaml:8: log: want a mapping (key: value), not a list"},
		{"several decoding errors are all reported", minimal + "log: {level: [x]}\nhttp: {idle_timeout: soon}\n", nil, "http.idle_timeout: want a duration"},
		{"max_name over the guard's bound", strings.Replace(minimal, "{to: [support@example.test]}", "{to: [support@example.test], max_name: 200000}", 1), nil, "forms.contact.max_name: must be between 0 (default) and 100000"},
		{"a bad choice address names its list", strings.Replace(minimal, "{to: [support@example.test]}", "{choices: {sales: [a@example.test, nope]}}", 1), nil, "forms.contact.choices.sales[1]: recipient \"nope\""},
		{"a field renamed to a sender key", strings.Replace(minimal, "{to: [support@example.test]}", "{to: [a@example.test], fields: {email: reply_to}}", 1), nil, "forms.contact.fields.email: field name \"reply_to\" would let a visitor choose"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("t.yaml", []byte(tc.yaml), env(tc.env...))
			if err == nil {
				t.Fatalf("accepted:\n%s", tc.yaml)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not contain %q", err, tc.want)
			}
			if !strings.HasPrefix(err.Error(), "config: ") {
				t.Errorf("error %q lacks the config: prefix", err)
			}
			// Every problem names its key, except a file that is not one
			// YAML document at all.
			errs := []error{err}
			if j, ok := err.(interface{ Unwrap() []error }); ok {
				errs = j.Unwrap()
			}
			for _, e := range errs {
				var ce *Error
				if !errors.As(e, &ce) {
					if !strings.Contains(e.Error(), "only one YAML document") {
						t.Errorf("error %q is not a *config.Error", e)
					}
				} else if ce.Path == "" {
					t.Errorf("error %q has no key path", e)
				}
			}
		})
	}
}

// TestOutboxFollowsRedis: the outbox is the Redis stream when redis_url is
// set, unless mail.outbox says dir, and the directory otherwise.
func TestOutboxFollowsRedis(t *testing.T) {
	for _, tc := range []struct{ name, yaml, want string }{
		{"no redis", minimal, OutboxKindDir},
		{"redis", minimal + "redis_url: redis://127.0.0.1:6379/0\n", OutboxKindRedis},
		{"redis with a dir outbox", strings.Replace(minimal, "mail:\n", "mail:\n  outbox: dir\n", 1) + "redis_url: redis://127.0.0.1:6379/0\n", OutboxKindDir},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse("t.yaml", []byte(tc.yaml), env())
			if err != nil {
				t.Fatal(err)
			}
			if c.Mail.Outbox != tc.want {
				t.Fatalf("mail.outbox = %q, want %q", c.Mail.Outbox, tc.want)
			}
		})
	}
}

func TestAllProblemsReported(t *testing.T) {
	y := strings.Replace(minimal, "domain: example.test", "domain: EXAMPLE", 1) + "log: {format: xml}\n"
	_, err := Parse("t.yaml", []byte(y), env())
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{"site.domain", "log.format", "mail.from"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %s:\n%v", want, err)
		}
	}
	var ce *Error
	if !errors.As(err, &ce) || !errors.Is(err, ErrInvalid) {
		t.Errorf("errors.As(*Error)/Is(ErrInvalid) failed for %T", err)
	}
}

func TestSecretsNeverPrinted(t *testing.T) {
	const pw, cs, ks = "s3cret-pw-1", "s3cret-cs-2", "s3cret-ks-3"
	dir := t.TempDir()
	kf := filepath.Join(dir, "key")
	if err := os.WriteFile(kf, []byte(ks+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	y := minimal + "key_secret_file: " + kf + "\n" +
		"captcha: {provider: recaptcha, site_key: k, secret_env: CS, min_score: 0.7}\n"
	y = strings.Replace(y, "mail:\n", "mail:\n  smtp: {username: u, password_env: PW}\n", 1)
	c, err := Parse("t.yaml", []byte(y), env("PW", pw, "CS", cs))
	if err != nil {
		t.Fatal(err)
	}
	if c.KeySecret.Reveal() != ks {
		t.Fatalf("key secret from file = %q", c.KeySecret.Reveal())
	}
	out, err := c.YAML()
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("cfg", "config", c, "pw", c.Mail.SMTP.Password)
	views := map[string]string{
		"yaml":    string(out),
		"fmt %v":  fmt.Sprintf("%v", c.Mail),
		"fmt %#v": fmt.Sprintf("%#v", c.Mail.SMTP),
		"slog":    logs.String(),
	}
	for name, v := range views {
		t.Run(name, func(t *testing.T) {
			for _, s := range []string{pw, cs, ks} {
				if strings.Contains(v, s) {
					t.Errorf("%s shows a secret:\n%s", name, v)
				}
			}
		})
	}
	if !strings.Contains(string(out), "password: '[redacted]'") {
		t.Errorf("yaml does not say the password is set:\n%s", out)
	}
	// Redacted must not alias the original.
	r := c.Redacted()
	r.Site.Origins[0] = "changed"
	if c.Site.Origins[0] == "changed" || c.Mail.SMTP.Password.Reveal() != pw {
		t.Error("Redacted aliases or alters the original")
	}
}

func TestEffectiveConfigRoundTrips(t *testing.T) {
	c, err := Load("", env())
	if err != nil {
		t.Fatal(err)
	}
	out, err := c.YAML()
	if err != nil {
		t.Fatal(err)
	}
	c2, err := Parse("effective.yaml", out, env())
	if err != nil {
		t.Fatalf("printed config does not load again: %v\n%s", err, out)
	}
	out2, _ := c2.YAML()
	if !bytes.Equal(out, out2) {
		t.Errorf("not a fixed point:\n%s\n---\n%s", out, out2)
	}
}

func TestLineOf(t *testing.T) {
	var root yaml.Node
	if err := yaml.Unmarshal([]byte("a:\n  b:\n    - x\n    - y\n  c: 1\n"), &root); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path string
		want int
	}{
		{"a", 1}, {"a.b", 2}, {"a.b[1]", 4}, {"a.c", 5}, {"a.missing", 1}, {"zzz", 0},
	} {
		t.Run(tc.path, func(t *testing.T) {
			if got := lineOf(&root, tc.path); got != tc.want {
				t.Errorf("lineOf(%q) = %d, want %d", tc.path, got, tc.want)
			}
		})
	}
}

// TestSameSite: success_url and error_url take a path on this site or a
// URL on one of its origins, and nothing else.
func TestSameSite(t *testing.T) {
	for _, tc := range []struct {
		u    string
		want bool
	}{
		{"/thanks", true},
		{"https://example.test/thanks", true},
		{"HTTPS://EXAMPLE.TEST/x", true},
		{"//evil.test", false},
		{"/\\evil.test", false},
		{"https://evil.test/", false},
		{"https://user@example.test/", false},
		{"javascript:alert(1)", false},
		{"/ok\r\nSet-Cookie: x", false},
	} {
		t.Run(tc.u, func(t *testing.T) {
			y := strings.Replace(minimal, "{to: [support@example.test]}", fmt.Sprintf("{to: [support@example.test], success_url: %q}", tc.u), 1)
			_, err := Parse("t.yaml", []byte(y), env())
			if got := err == nil; got != tc.want {
				t.Errorf("success_url %q accepted = %v (%v)", tc.u, got, err)
			}
			if err != nil && !strings.Contains(err.Error(), "forms.contact.success_url") {
				t.Errorf("error %q does not name forms.contact.success_url", err)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(minimal))
	f.Add(Demo())
	if b, err := os.ReadFile("../../testdata/config/full.yaml"); err == nil {
		f.Add(b)
	}
	f.Add([]byte("forms: {a: {limits: {per_ip: 1/0s}}}"))
	f.Add([]byte("&a [*a, *a]"))
	f.Add([]byte("site: {origins: [\"http://[::1]:80\"]}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("fuzz.yaml", data, env())
		if err != nil {
			if !strings.HasPrefix(err.Error(), "config: ") {
				t.Fatalf("error without prefix: %v", err)
			}
			return
		}
		// Whatever loads must satisfy the invariants the server relies on.
		if c.Site.Domain == "" || len(c.Site.Origins) == 0 || len(c.Forms) == 0 {
			t.Fatalf("accepted an incomplete config: %+v", c)
		}
		for name, f := range c.Forms {
			if f.Kind == KindShare && (f.MaxRecipients < 1 || f.MaxRecipients > guard.MaxShareRecipients) {
				t.Fatalf("form %s: max_recipients %d", name, f.MaxRecipients)
			}
		}
		if _, err := c.YAML(); err != nil {
			t.Fatalf("cannot print accepted config: %v", err)
		}
	})
}
