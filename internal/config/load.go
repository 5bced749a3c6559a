package config

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"

	"go.yaml.in/yaml/v3"
)

// Environment variables that override the file.
const (
	EnvListen        = "FORMGUARD_LISTEN"
	EnvAdminListen   = "FORMGUARD_ADMIN_LISTEN"
	EnvRedisURL      = "FORMGUARD_REDIS_URL"
	EnvSMTPAddr      = "FORMGUARD_SMTP_ADDR"
	EnvSMTPPassword  = "FORMGUARD_SMTP_PASSWORD"
	EnvCaptchaSecret = "FORMGUARD_CAPTCHA_SECRET"
)

// DefaultFile is the config file `formguard` reads when run without -config.
const DefaultFile = "formguard.yaml"

// DemoName names the built-in demo config in errors and logs.
const DemoName = "built-in demo"

// MaxFileSize bounds a config file; anything larger is refused unread.
const MaxFileSize = 1 << 20

//go:embed demo.yaml
var demo []byte

// Demo returns the built-in demo configuration's YAML.
func Demo() []byte { return bytes.Clone(demo) }

// Options are Load's replaceable parts. The zero value reads the process
// environment.
type Options struct {
	// Getenv looks an environment variable up. Zero value: os.LookupEnv.
	Getenv func(string) (string, bool)
}

// Load reads the config file at path (the built-in demo when path is ""),
// applies the environment overrides, resolves secrets and validates.
func Load(path string, opt Options) (*Config, error) {
	if path == "" {
		return parse(DemoName, demo, opt, true)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("config: reading %s: %w", path, err)
	}
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("config: %s is larger than %d bytes", path, MaxFileSize)
	}
	return Parse(filepath.Base(path), data, opt)
}

// Parse is Load for YAML already in memory; name labels errors.
func Parse(name string, data []byte, opt Options) (*Config, error) {
	return parse(name, data, opt, false)
}

func parse(name string, data []byte, opt Options, isDemo bool) (*Config, error) {
	if opt.Getenv == nil {
		opt.Getenv = os.LookupEnv
	}
	cfg := &Config{}
	p := &problems{file: name, root: &yaml.Node{}, env: map[string]string{}}
	if len(bytes.TrimSpace(data)) > 0 {
		// The node tree gives every error its key path and line.
		if err := yaml.Unmarshal(data, p.root); err != nil {
			return nil, fmt.Errorf("config: %s: %w", name, err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(data))
		dec.KnownFields(true)
		if err := dec.Decode(cfg); err != nil && !errors.Is(err, io.EOF) {
			if !p.decodeError(err) {
				return nil, fmt.Errorf("config: %s: %w", name, err)
			}
			return nil, p.err()
		}
		var extra yaml.Node
		if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("config: %s: only one YAML document is allowed", name)
		}
	}
	cfg.applyEnv(opt.Getenv, p)
	if isDemo && p.env["listen"] != "" {
		cfg.demoOrigins()
	}
	cfg.applyDefaults()
	cfg.resolveSecrets(opt.Getenv, p)
	cfg.validate(p)
	if err := p.err(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// applyEnv applies the FORMGUARD_* overrides, remembering which key each
// one set so errors can name the variable instead of a line.
func (c *Config) applyEnv(getenv func(string) (string, bool), p *problems) {
	set := func(env, path string, dst *string) {
		if v, ok := getenv(env); ok && v != "" {
			*dst = v
			p.env[path] = env
		}
	}
	set(EnvListen, "listen", &c.Listen)
	set(EnvAdminListen, "admin_listen", &c.AdminListen)
	set(EnvRedisURL, "redis_url", &c.RedisURL)
	set(EnvSMTPAddr, "mail.smtp.addr", &c.Mail.SMTP.Addr)
}

// resolveSecrets reads every secret from the environment or its file.
func (c *Config) resolveSecrets(getenv func(string) (string, bool), p *problems) {
	s := secrets{getenv: getenv, p: p}
	if v, ok := getenv(EnvSMTPPassword); ok && v != "" {
		c.Mail.SMTP.Password = Secret(v)
		p.env["mail.smtp.password"] = EnvSMTPPassword
	} else {
		c.Mail.SMTP.Password = s.resolve("mail.smtp.password", c.Mail.SMTP.PasswordEnv, c.Mail.SMTP.PasswordFile)
	}
	c.KeySecret = s.resolve("key_secret", c.KeySecretEnv, c.KeySecretFile)
	envCaptcha, _ := getenv(EnvCaptchaSecret)
	if envCaptcha != "" {
		// The override wins over the file for the service-wide captcha.
		c.Captcha.Secret = Secret(envCaptcha)
		p.env["captcha.secret"] = EnvCaptchaSecret
	} else {
		c.Captcha.Secret = s.resolve("captcha.secret", c.Captcha.SecretEnv, c.Captcha.SecretFile)
	}
	for _, name := range c.FormNames() {
		f := c.Forms[name]
		switch {
		case f == nil || f.Captcha == nil:
		case f.Captcha.SecretEnv == c.Captcha.SecretEnv && f.Captcha.SecretFile == c.Captcha.SecretFile && f.Captcha.Provider == c.Captcha.Provider:
			f.Captcha.Secret = c.Captcha.Secret // inherited
		case envCaptcha != "" && f.Captcha.SecretEnv == "" && f.Captcha.SecretFile == "":
			f.Captcha.Secret = Secret(envCaptcha)
		default:
			f.Captcha.Secret = s.resolve("forms."+name+".captcha.secret", f.Captcha.SecretEnv, f.Captcha.SecretFile)
		}
	}
}

// demoOrigins makes the demo's origins follow a FORMGUARD_LISTEN override,
// so its page works on whatever port it is served from.
func (c *Config) demoOrigins() {
	host, port, err := net.SplitHostPort(c.Listen)
	if err != nil {
		return // validation reports it
	}
	switch host {
	case "", "0.0.0.0", "::":
		host = "127.0.0.1"
	}
	c.Site.Origins = []string{"http://" + net.JoinHostPort(host, port)}
	if a, err := netip.ParseAddr(host); err == nil && a.IsLoopback() {
		c.Site.Origins = append(c.Site.Origins, "http://"+net.JoinHostPort("localhost", port))
	}
}
