package config

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/formguard/formguard/guard"
)

var (
	formNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)
	labelRE    = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
)

// Bounds on tunables.
const (
	MinPoWMaxNumber = 1_000
	MaxPoWMaxNumber = 10_000_000
	MinPoWExpires   = time.Minute
	MaxPoWExpires   = 24 * time.Hour
)

func (c *Config) validate(p *problems) {
	checkHostPort(p, "listen", c.Listen, true)
	if c.AdminListen != "" {
		checkHostPort(p, "admin_listen", c.AdminListen, true)
		if c.AdminListen == c.Listen {
			p.add("admin_listen", "must differ from listen (unset it to serve everything on listen)")
		}
	}
	if c.DataDir == "" {
		p.add("data_dir", "must not be empty")
	}
	switch c.Log.Format {
	case LogAuto, LogJSON, LogText:
	default:
		p.add("log.format", fmt.Sprintf("%q is not auto, json or text", c.Log.Format))
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		p.add("log.level", fmt.Sprintf("%q is not debug, info, warn or error", c.Log.Level))
	}
	c.validateHTTP(p)
	c.validateSite(p)
	for i, s := range c.TrustedProxies {
		if _, err := guard.NewIPResolver([]string{s}); err != nil {
			p.add(fmt.Sprintf("trusted_proxies[%d]", i), strings.TrimPrefix(err.Error(), "guard: "))
		}
	}
	if c.RedisURL != "" {
		u, err := url.Parse(c.RedisURL)
		switch {
		case err != nil:
			p.add("redis_url", "not a URL")
		case u.Scheme != "redis" && u.Scheme != "rediss" && u.Scheme != "unix":
			p.add("redis_url", "scheme must be redis://, rediss:// or unix://")
		}
	}
	if c.Limits.MemoryKeys < 0 {
		p.add("limits.memory_keys", "must not be negative (0: the default)")
	}
	if c.Limits.ReplayEntries < 0 {
		p.add("limits.replay_entries", "must not be negative (0: the default)")
	}
	if c.Limits.RedisTimeout < 0 || c.Limits.RedisTimeout > 10*time.Second {
		p.add("limits.redis_timeout", "must be between 1ms and 10s")
	}
	c.validateMail(p)
	validateCaptcha(p, "captcha", &c.Captcha)
	if len(c.Forms) == 0 {
		p.add("forms", "at least one form is required")
	}
	for _, name := range c.FormNames() {
		c.validateForm(p, name, c.Forms[name])
	}
	if len(p.errs) == 0 {
		c.checkGuard(p)
	}
}

func (c *Config) validateHTTP(p *problems) {
	for _, d := range []struct {
		key string
		v   time.Duration
	}{
		{"http.read_header_timeout", c.HTTP.ReadHeaderTimeout},
		{"http.read_timeout", c.HTTP.ReadTimeout},
		{"http.write_timeout", c.HTTP.WriteTimeout},
		{"http.idle_timeout", c.HTTP.IdleTimeout},
		{"http.shutdown_timeout", c.HTTP.ShutdownTimeout},
		{"mail.smtp.timeout", c.Mail.SMTP.Timeout},
	} {
		if d.v < 0 {
			p.add(d.key, "must not be negative")
		}
	}
	if c.HTTP.MaxHeaderBytes < 1024 || c.HTTP.MaxHeaderBytes > 1<<20 {
		p.add("http.max_header_bytes", "must be between 1024 and 1048576")
	}
}

func (c *Config) validateSite(p *problems) {
	if c.Site.Domain == "" {
		p.add("site.domain", "required: the domain mail is sent from")
	} else if err := checkDomain(c.Site.Domain); err != nil {
		p.add("site.domain", err.Error())
	}
	if hasControl(c.Site.Name) || len(c.Site.Name) > 100 {
		p.add("site.name", "must be one line of at most 100 bytes")
	}
	if len(c.Site.Origins) == 0 {
		p.add("site.origins", "at least one origin (scheme://host[:port]) is required")
	}
	for i, o := range c.Site.Origins {
		n, err := guard.NormaliseOrigin(o)
		if err != nil {
			p.add(fmt.Sprintf("site.origins[%d]", i), err.Error())
			continue
		}
		c.Site.Origins[i] = n
	}
}

func (c *Config) validateMail(p *problems) {
	m := &c.Mail
	fromOK := false
	if m.From == "" {
		p.add("mail.from", "required: the header From address, on site.domain")
	} else if dom, err := addressDomain(m.From); err != nil {
		p.add("mail.from", err.Error())
	} else if c.Site.Domain != "" && dom != strings.ToLower(c.Site.Domain) {
		p.add("mail.from", fmt.Sprintf("must be on site.domain %s (DMARC alignment, RFC 7489 3.1)", c.Site.Domain))
	} else {
		fromOK = true
	}
	// An unset bounce is From: report it only when set on its own.
	bounceSet := m.Bounce != m.From
	if dom, err := addressDomain(m.Bounce); err != nil {
		if bounceSet {
			p.add("mail.bounce", err.Error())
		}
	} else if c.Site.Domain != "" && (fromOK || bounceSet) && !sameOrgDomain(dom, c.Site.Domain) {
		p.add("mail.bounce", fmt.Sprintf("must share site.domain's organisational domain (SPF alignment, RFC 7489 3.1.2); %s does not", dom))
	}
	c.validateDelivery(p)
}

// validateDelivery checks the transport, the outbox, retries and SMTP.
func (c *Config) validateDelivery(p *problems) {
	m := &c.Mail
	switch m.Transport {
	case TransportFile:
	case TransportSMTP:
		if m.SMTP.Addr == "" {
			p.add("mail.smtp.addr", "required with transport smtp (host:port)")
		} else {
			checkHostPort(p, "mail.smtp.addr", m.SMTP.Addr, false)
		}
	default:
		p.add("mail.transport", fmt.Sprintf("%q is not file or smtp", m.Transport))
	}
	switch m.Outbox {
	case OutboxKindDir:
	case OutboxKindRedis:
		if c.RedisURL == "" {
			p.add("mail.outbox", "redis needs redis_url")
		}
	default:
		p.add("mail.outbox", fmt.Sprintf("%q is not dir or redis", m.Outbox))
	}
	if m.OutboxDir == "" {
		p.add("mail.outbox_dir", "must not be empty")
	}
	switch r := m.Retry; {
	case r.BaseDelay < 10*time.Millisecond:
		p.add("mail.retry.base_delay", "must be at least 10ms")
	case r.MaxDelay < r.BaseDelay:
		p.add("mail.retry.max_delay", "must not be below base_delay")
	case r.MaxAge < time.Minute:
		p.add("mail.retry.max_age", "must be at least 1m")
	}
	if m.Workers < 1 || m.Workers > 64 {
		p.add("mail.workers", "must be between 1 and 64")
	}
	switch m.SMTP.TLS {
	case TLSNone, TLSStartTLS, TLSImplicit:
	default:
		p.add("mail.smtp.tls", fmt.Sprintf("%q is not none, starttls or tls", m.SMTP.TLS))
	}
	switch {
	case m.SMTP.Username != "" && !m.SMTP.Password.IsSet():
		p.add("mail.smtp.password_env", "a password is required with mail.smtp.username (password_env, password_file or "+EnvSMTPPassword+")")
	case m.SMTP.Username == "" && m.SMTP.Password.IsSet():
		p.add("mail.smtp.username", "required when a password is set")
	case m.Transport == TransportSMTP && m.SMTP.Username != "" && m.SMTP.TLS == TLSNone && !loopbackHost(m.SMTP.Addr):
		p.add("mail.smtp.tls", "none would send the password in clear to a non-loopback relay; use starttls or tls")
	}
	if hasControl(m.SMTP.Username) {
		p.add("mail.smtp.username", "must not contain control characters")
	}
	if m.SMTP.HELO != "" {
		if err := checkDomain(m.SMTP.HELO); err != nil {
			p.add("mail.smtp.helo", err.Error())
		}
	}
	c.validateDKIM(p)
}

func (c *Config) validateDKIM(p *problems) {
	m := &c.Mail
	for i, l := range strings.Split(m.DKIM.Selector, ".") {
		if !labelRE.MatchString(l) {
			p.add("mail.dkim.selector", fmt.Sprintf("label %d (%q) is not a lower-case DNS label", i+1, l))
			break
		}
	}
	if m.DKIM.KeyFile == "" {
		p.add("mail.dkim.key_file", "must not be empty")
	} else if !m.DKIM.Generate {
		if _, err := os.Stat(m.DKIM.KeyFile); err != nil {
			p.add("mail.dkim.key_file", fmt.Sprintf("%v (create one with `formguard dkim-keygen -out %s`, or set generate: true)", errors.Unwrap(err), m.DKIM.KeyFile))
		}
	}
}

func validateCaptcha(p *problems, path string, cc *Captcha) {
	switch cc.Provider {
	case ProviderPoW, ProviderNone:
	case ProviderTurnstile, ProviderHCaptcha, ProviderReCAPTCHA:
		if cc.SiteKey == "" {
			p.add(path+".site_key", "required for provider "+cc.Provider)
		}
		if !cc.Secret.IsSet() {
			p.add(path+".secret_env", "a secret is required for provider "+cc.Provider+" (secret_env, secret_file or "+EnvCaptchaSecret+")")
		}
	default:
		p.add(path+".provider", fmt.Sprintf("%q is not pow, turnstile, hcaptcha, recaptcha or none", cc.Provider))
		return
	}
	if hasControl(cc.SiteKey) || strings.ContainsAny(cc.SiteKey, `"'<>& `) {
		p.add(path+".site_key", "contains characters a site key never has")
	}
	if cc.VerifyURL != "" {
		u, err := url.Parse(cc.VerifyURL)
		switch {
		case err != nil || u.Host == "":
			p.add(path+".verify_url", "not an absolute URL")
		case u.Scheme == "https":
		case u.Scheme == "http" && loopbackHost(u.Host):
		default:
			p.add(path+".verify_url", "must be https (plain http only to a loopback host)")
		}
	}
	if cc.MinScore < 0 || cc.MinScore > 1 {
		p.add(path+".min_score", "must be between 0 and 1")
	}
	if cc.MinScore != 0 && cc.Provider != ProviderReCAPTCHA {
		p.add(path+".min_score", "only applies to provider recaptcha")
	}
	if cc.Provider == ProviderPoW {
		if cc.PoW.MaxNumber < MinPoWMaxNumber || cc.PoW.MaxNumber > MaxPoWMaxNumber {
			p.add(path+".pow.max_number", fmt.Sprintf("must be between %d and %d", MinPoWMaxNumber, MaxPoWMaxNumber))
		}
		if cc.PoW.Expires < MinPoWExpires || cc.PoW.Expires > MaxPoWExpires {
			p.add(path+".pow.expires", fmt.Sprintf("must be between %s and %s", MinPoWExpires, MaxPoWExpires))
		}
	}
}

// validateForm checks what the guard does not know about: the form's
// name, kind, captcha, template and form token. The guard checks the rest
// (checkGuard).
func (c *Config) validateForm(p *problems, name string, f *Form) {
	path := "forms." + name
	switch {
	case !formNameRE.MatchString(name):
		p.add(path, "a form name is 1-64 characters of a-z, 0-9, _ and -, starting with a letter or digit")
		return
	case f == nil:
		p.add(path, "empty form: set at least kind and its recipients")
		return
	case f.Kind != KindContact && f.Kind != KindShare:
		p.add(path+".kind", fmt.Sprintf("%q is not contact or share", f.Kind))
		return
	}
	if f.Captcha != nil {
		validateCaptcha(p, path+".captcha", f.Captcha)
	}
	if f.Template != nil {
		if _, err := f.MailTemplate(); err != nil {
			p.add(path+".template", err.Error())
		}
	}
	if t := f.FormToken; t != nil {
		switch {
		case t.MinFill < 0 || t.MinFill > time.Hour:
			p.add(path+".form_token.min_fill", "must be between 0 and 1h")
		case t.MaxAge < time.Minute || t.MaxAge > 7*24*time.Hour:
			p.add(path+".form_token.max_age", "must be between 1m and 168h")
		case t.MinFill >= t.MaxAge:
			p.add(path+".form_token.min_fill", "must be below max_age")
		}
	}
}
