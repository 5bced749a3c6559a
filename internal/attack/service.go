package attack

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ModuleRoot finds the directory holding formguard's go.mod, walking up
// from the working directory.
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.Contains(string(data), "module github.com/formguard/formguard\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("attack: formguard's go.mod not found above the working directory")
		}
		dir = parent
	}
}

// BuildService builds ./cmd/formguard into dir with go build and returns
// the binary's path.
func BuildService(ctx context.Context, dir string) (string, error) {
	root, err := ModuleRoot()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "formguard")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/formguard")
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("attack: go build ./cmd/formguard: %v\n%s", err, out)
	}
	return bin, nil
}

// ServiceConfig is what the generated formguard.yaml says.
type ServiceConfig struct {
	Port      int
	Dir       string // data_dir; the DKIM key and outbox live under it
	OutboxDir string // default Dir/outbox
	SinkAddr  string
	RedisURL  string
	// Limits per form, "COUNT/UNIT".
	ContactPerIP, ContactPerSender, SharePerIP, SharePerSender, SharePerRecipient string
	// RedisFallback sets limits.redis_fallback: decide from a stricter
	// local store while Redis is unreachable instead of refusing.
	RedisFallback bool
	// DirOutbox sets mail.outbox: dir, so that with redis_url the mail is
	// still queued on disk (and can be accepted while Redis is down).
	DirOutbox bool
	// MemoryKeys and ReplayEntries set limits.memory_keys (the in-memory
	// rate-limit store's capacity) and limits.replay_entries (the
	// in-memory single-use cache's); 0 leaves the key out.
	MemoryKeys, ReplayEntries int
	// CaptchaVerify sets limits.captcha_verify ("" leaves the default).
	CaptchaVerify string
	// TokenFormPerIP is per_ip of the feedback, callback and quote forms
	// (default 1000/h).
	TokenFormPerIP string
	// PerNetwork sets every form's per_network ("" leaves the default).
	PerNetwork string
	// PoWExpires is captcha.pow.expires (default 1m).
	PoWExpires string
	// TurnstileVerifyURL, when set, adds SignupForm: a contact form with
	// Cloudflare Turnstile, verified at this URL.
	TurnstileVerifyURL string
	// ExtraYAML is appended at top level (for scenario-specific keys).
	ExtraYAML string
}

// Site constants of the generated config.
const (
	SiteDomain   = "example.test"
	SiteOrigin2  = "https://example.test"
	ContactForm  = "contact"  // fixed recipient, no CAPTCHA
	ShareForm    = "share"    // max_recipients 3, proof-of-work
	FeedbackForm = "feedback" // fixed recipient, proof-of-work (cross-form replays)
	CallbackForm = "callback" // fixed recipient, form token, no CAPTCHA
	QuoteForm    = "quote"    // fixed recipient, form token (cross-form tokens)
	ContactTo    = "support@example.test"
	FeedbackTo   = "feedback@example.test"
	CallbackTo   = "callback@example.test"
	QuoteTo      = "quote@example.test"
	ShareMax     = 3
	DKIMSelector = "s1"
	// PoWMaxNumber is the smallest difficulty the config allows, so the
	// harness solves thousands of challenges cheaply.
	PoWMaxNumber = 1000
	// TokenMinFill is the token forms' min_fill. Validation takes any
	// positive duration (0 means the 3s default), but a post sent right
	// after its token was issued must reliably land inside min_fill, so
	// the too-fast attack tests something; loopback posts take
	// milliseconds, even under -race, so one second leaves a wide margin
	// and costs the run about two seconds of waiting.
	TokenMinFill = time.Second
	// TokenMaxAge is the token forms' max_age; stale tokens are minted
	// older than it.
	TokenMaxAge = time.Hour
	// KeySecretEnv names the variable holding the service's key_secret,
	// the master from which it derives the form-token key.
	KeySecretEnv = "FG_ATTACK_KEY_SECRET"
)

// Origin is the service's own origin.
func (c *ServiceConfig) Origin() string { return "http://127.0.0.1:" + strconv.Itoa(c.Port) }

// KeyFile is where the DKIM key is written.
func (c *ServiceConfig) KeyFile() string { return filepath.Join(c.Dir, "dkim.pem") }

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// YAML renders the config.
func (c *ServiceConfig) YAML() string {
	outbox := or(c.OutboxDir, filepath.Join(c.Dir, "outbox"))
	redis := ""
	if c.RedisURL != "" {
		redis = fmt.Sprintf("redis_url: %q\n", c.RedisURL)
	}
	fallback := ""
	if c.RedisFallback {
		fallback = ", redis_fallback: true"
	}
	outboxKind := ""
	if c.DirOutbox {
		outboxKind = "  outbox: dir\n"
	}
	if c.MemoryKeys > 0 {
		fallback += fmt.Sprintf(", memory_keys: %d", c.MemoryKeys)
	}
	if c.ReplayEntries > 0 {
		fallback += fmt.Sprintf(", replay_entries: %d", c.ReplayEntries)
	}
	if c.CaptchaVerify != "" {
		fallback += ", captcha_verify: " + c.CaptchaVerify
	}
	tokenPerIP := or(c.TokenFormPerIP, "1000/h")
	signup := ""
	if c.TurnstileVerifyURL != "" {
		// The secret is FORMGUARD_CAPTCHA_SECRET (Service.Secret).
		signup = fmt.Sprintf(`  %s:
    kind: contact
    to: [%q]
    captcha: {provider: turnstile, site_key: %s, verify_url: %q}
    limits: {per_ip: 1000/h, per_sender: 1000/h, per_form: 100000/h}
`, SignupForm, SignupTo, TurnstileSiteKey, c.TurnstileVerifyURL)
	}
	y := fmt.Sprintf(`# generated by formguard-attack
listen: 127.0.0.1:%d
data_dir: %q
log: {format: json, level: info}
http:
  read_header_timeout: 2s
  read_timeout: 4s
  write_timeout: 10s
  idle_timeout: 30s
  shutdown_timeout: 5s
site:
  domain: %s
  name: Example
  origins: [%q, %q]
trusted_proxies: ["127.0.0.1/32"]
key_secret_env: %s
%slimits: {global: 100000/h%s}
mail:
  from: no-reply@%s
  bounce: bounces@%s
  transport: smtp
  outbox_dir: %q
%s  smtp: {addr: %q, tls: none, timeout: 10s}
  dkim: {selector: %s, key_file: %q}
captcha:
  provider: pow
  pow: {max_number: %d, expires: %s}
forms:
  %s:
    kind: contact
    to: [%q]
    captcha: {provider: none}
    limits: {per_ip: %s, per_sender: %s, per_form: 100000/h}
  %s:
    kind: contact
    to: [%q]
    limits: {per_ip: %s, per_sender: 1000/h, per_form: 100000/h}
  %s:
    kind: share
    max_recipients: %d
    limits: {per_ip: %s, per_sender: %s, per_recipient: %s, per_form: 100000/h}
  %s:
    kind: contact
    to: [%q]
    captcha: {provider: none}
    form_token: {min_fill: %s, max_age: %s}
    limits: {per_ip: %s, per_sender: 1000/h, per_form: 100000/h}
  %s:
    kind: contact
    to: [%q]
    captcha: {provider: none}
    form_token: {min_fill: %s, max_age: %s}
    limits: {per_ip: %s, per_sender: 1000/h, per_form: 100000/h}
%s%s`, c.Port, c.Dir, SiteDomain, c.Origin(), SiteOrigin2, KeySecretEnv, redis, fallback, SiteDomain, SiteDomain, outbox, outboxKind, c.SinkAddr,
		DKIMSelector, c.KeyFile(), PoWMaxNumber, or(c.PoWExpires, "1m"),
		ContactForm, ContactTo, or(c.ContactPerIP, "5/h"), or(c.ContactPerSender, "3/h"),
		FeedbackForm, FeedbackTo, tokenPerIP,
		ShareForm, ShareMax, or(c.SharePerIP, "5/h"), or(c.SharePerSender, "3/h"), or(c.SharePerRecipient, "2/d"),
		CallbackForm, CallbackTo, TokenMinFill, TokenMaxAge, tokenPerIP,
		QuoteForm, QuoteTo, TokenMinFill, TokenMaxAge, tokenPerIP,
		signup, c.ExtraYAML)
	if c.PerNetwork != "" {
		y = strings.ReplaceAll(y, "per_form: 100000/h}", "per_form: 100000/h, per_network: "+c.PerNetwork+"}")
	}
	return y
}

// Caps are the audit's view of the configured limits.
func (c *ServiceConfig) Caps() map[string]Caps {
	n := func(s, def string) int {
		s = or(s, def)
		v, _ := strconv.Atoi(s[:strings.IndexByte(s, '/')])
		return v
	}
	return map[string]Caps{
		ContactForm: {PerIP: n(c.ContactPerIP, "5/h"), PerSender: n(c.ContactPerSender, "3/h")},
		ShareForm:   {PerIP: n(c.SharePerIP, "5/h"), PerSender: n(c.SharePerSender, "3/h"), PerRecipient: n(c.SharePerRecipient, "2/d")},
	}
}

// WriteDKIMKey writes a fresh RSA-2048 key (PKCS#8 PEM) to KeyFile unless
// one is there, and returns its TXT record.
func (c *ServiceConfig) WriteDKIMKey() (string, error) {
	if _, err := os.Stat(c.KeyFile()); err != nil {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return "", err
		}
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			return "", err
		}
		if err := os.WriteFile(c.KeyFile(), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
			return "", err
		}
	}
	return DKIMRecord(c.KeyFile())
}

// Service is one run of the real formguard binary.
type Service struct {
	Bin    string
	Config *ServiceConfig
	Secret string // FORMGUARD_CAPTCHA_SECRET
	// KeySecret is the config's key_secret (through KeySecretEnv): the
	// master the service derives its form-token key from.
	KeySecret string
	Addr      string // 127.0.0.1:PORT

	mu      sync.Mutex
	cmd     *exec.Cmd
	done    chan struct{}
	exitErr error
	logf    *os.File
	starts  int
}

// NewService writes the config into cfg.Dir and prepares the service;
// Start runs it.
func NewService(bin string, cfg *ServiceConfig) (*Service, error) {
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(cfg.Dir, "formguard.yaml"), []byte(cfg.YAML()), 0o600); err != nil {
		return nil, err
	}
	var sec, ks [24]byte
	_, _ = rand.Read(sec[:])
	_, _ = rand.Read(ks[:])
	logf, err := os.OpenFile(filepath.Join(cfg.Dir, "service.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	return &Service{Bin: bin, Config: cfg, Secret: hex.EncodeToString(sec[:]), KeySecret: hex.EncodeToString(ks[:]),
		Addr: "127.0.0.1:" + strconv.Itoa(cfg.Port), logf: logf}, nil
}

// LogPath is the service's combined stdout and stderr, across restarts.
func (s *Service) LogPath() string { return filepath.Join(s.Config.Dir, "service.log") }

// Start runs the binary and waits until GET /readyz answers 200.
func (s *Service) Start(ctx context.Context) error {
	s.mu.Lock()
	if s.cmd != nil {
		s.mu.Unlock()
		return errors.New("attack: service already running")
	}
	cmd := exec.Command(s.Bin, "serve", "-config", filepath.Join(s.Config.Dir, "formguard.yaml"))
	cmd.Dir = s.Config.Dir
	cmd.Env = append(os.Environ(), "FORMGUARD_CAPTCHA_SECRET="+s.Secret, KeySecretEnv+"="+s.KeySecret)
	cmd.Stdout, cmd.Stderr = s.logf, s.logf
	if err := cmd.Start(); err != nil {
		s.mu.Unlock()
		return fmt.Errorf("attack: starting formguard: %w", err)
	}
	s.starts++
	fmt.Fprintf(s.logf, "--- formguard-attack: start #%d, pid %d\n", s.starts, cmd.Process.Pid)
	done := make(chan struct{})
	s.cmd, s.done = cmd, done
	go func() {
		err := cmd.Wait()
		s.mu.Lock()
		s.exitErr = err
		s.mu.Unlock()
		close(done)
	}()
	s.mu.Unlock()
	return s.waitReady(ctx, done)
}

func (s *Service) waitReady(ctx context.Context, done chan struct{}) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	c := &http.Client{Timeout: time.Second}
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+s.Addr+"/readyz", nil)
		if resp, err := c.Do(req); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-done:
			return fmt.Errorf("attack: formguard exited before it was ready (%v); log: %s\n%s", s.exitErr, s.LogPath(), s.TailLog(20))
		case <-ctx.Done():
			return fmt.Errorf("attack: formguard not ready on %s: %w; log:\n%s", s.Addr, ctx.Err(), s.TailLog(20))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// PID is the running process's ID, 0 when none.
func (s *Service) PID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

// Kill sends SIGKILL (a crash) and waits for the process to go.
func (s *Service) Kill() { s.signal(syscall.SIGKILL) }

// Stop sends SIGTERM (graceful shutdown) and waits, killing after 15s.
func (s *Service) Stop() { s.signal(syscall.SIGTERM) }

func (s *Service) signal(sig syscall.Signal) {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(sig)
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
	s.mu.Lock()
	s.cmd = nil
	s.mu.Unlock()
}

// Close stops the service and closes its log.
func (s *Service) Close() {
	s.Stop()
	_ = s.logf.Close()
}

// TailLog returns the last n lines of the service log.
func (s *Service) TailLog(n int) string {
	f, err := os.Open(s.LogPath())
	if err != nil {
		return ""
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return strings.Join(lines, "\n")
}

// FreePort asks the kernel for a free loopback TCP port.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
