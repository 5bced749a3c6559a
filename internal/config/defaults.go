package config

import (
	"net"
	"path/filepath"
	"runtime"
	"sort"
	"strings"

	"github.com/formguard/formguard/guard"
	"github.com/formguard/formguard/guard/ratelimit"
	"github.com/formguard/formguard/mailer/outbox"
)

// Defaults returns the built-in defaults that a config file is applied
// over. They describe no site and no form, so they do not validate alone.
func Defaults() *Config {
	return &Config{
		Listen:  DefaultListen,
		DataDir: DefaultDataDir,
		Log:     Log{Format: DefaultLogFormat, Level: DefaultLogLevel},
		HTTP: HTTP{
			ReadHeaderTimeout: DefaultReadHeaderTimeout,
			ReadTimeout:       DefaultReadTimeout,
			WriteTimeout:      DefaultWriteTimeout,
			IdleTimeout:       DefaultIdleTimeout,
			ShutdownTimeout:   DefaultShutdownTimeout,
			MaxHeaderBytes:    DefaultMaxHeaderBytes,
		},
		Mail: Mail{
			Transport: DefaultTransport,
			SMTP:      SMTP{TLS: DefaultSMTPTLS, Timeout: DefaultSMTPTimeout},
			DKIM:      DKIM{Selector: DefaultDKIMSelector},
		},
		Captcha: Captcha{
			Provider: DefaultCaptchaProvider,
			PoW:      PoW{MaxNumber: DefaultPoWMaxNumber, Expires: DefaultPoWExpires},
		},
	}
}

// applyDefaults fills every key left empty that has a derived default, so
// the effective config (serve -check) shows what is really used.
func (c *Config) applyDefaults() {
	if c.Site.Name == "" {
		c.Site.Name = c.Site.Domain
	}
	if c.DataDir == "" {
		c.DataDir = DefaultDataDir
	}
	c.AdminListen = adminAddr(c.AdminListen)
	if c.Mail.Outbox == "" {
		c.Mail.Outbox = OutboxKindDir
		if c.RedisURL != "" {
			c.Mail.Outbox = OutboxKindRedis
		}
	}
	if c.Mail.OutboxDir == "" {
		c.Mail.OutboxDir = filepath.Join(c.DataDir, DefaultOutboxSubdir)
	}
	if c.Mail.DKIM.KeyFile == "" {
		c.Mail.DKIM.KeyFile = filepath.Join(c.DataDir, DefaultDKIMKeyFile)
	}
	if c.Mail.Bounce == "" {
		c.Mail.Bounce = c.Mail.From
	}
	if c.Mail.SMTP.HELO == "" {
		c.Mail.SMTP.HELO = c.Site.Domain
	}
	d := Defaults()
	zeroDur(&c.HTTP.ReadHeaderTimeout, d.HTTP.ReadHeaderTimeout)
	zeroDur(&c.HTTP.ReadTimeout, d.HTTP.ReadTimeout)
	zeroDur(&c.HTTP.WriteTimeout, d.HTTP.WriteTimeout)
	zeroDur(&c.HTTP.IdleTimeout, d.HTTP.IdleTimeout)
	zeroDur(&c.HTTP.ShutdownTimeout, d.HTTP.ShutdownTimeout)
	zeroDur(&c.Mail.SMTP.Timeout, d.Mail.SMTP.Timeout)
	zeroDur(&c.Mail.Retry.BaseDelay, outbox.DefaultBaseDelay)
	zeroDur(&c.Mail.Retry.MaxDelay, outbox.DefaultMaxDelay)
	zeroDur(&c.Mail.Retry.MaxAge, outbox.DefaultMaxAge)
	if c.Mail.Workers == 0 {
		c.Mail.Workers = DefaultWorkers()
	}
	if c.HTTP.MaxHeaderBytes == 0 {
		c.HTTP.MaxHeaderBytes = d.HTTP.MaxHeaderBytes
	}
	if c.Log.Format == "" {
		c.Log.Format = DefaultLogFormat
	}
	if c.Log.Level == "" {
		c.Log.Level = DefaultLogLevel
	}
	if c.Mail.Transport == "" {
		c.Mail.Transport = DefaultTransport
	}
	if c.Mail.SMTP.TLS == "" {
		c.Mail.SMTP.TLS = DefaultSMTPTLS
	}
	if c.Mail.DKIM.Selector == "" {
		c.Mail.DKIM.Selector = DefaultDKIMSelector
	}
	captchaDefaults(&c.Captcha)
	if c.Limits.Global.IsZero() {
		c.Limits.Global.Limit = guard.DefaultGlobal
	}
	if c.Limits.CaptchaVerify.IsZero() {
		c.Limits.CaptchaVerify.Limit = DefaultCaptchaVerify
	}
	if c.Limits.RedisTimeout == 0 {
		c.Limits.RedisTimeout = DefaultRedisTimeout
	}
	for _, name := range c.FormNames() {
		f := c.Forms[name]
		if f == nil {
			continue
		}
		if f.Kind == "" {
			f.Kind = KindContact
		}
		if f.Kind == KindShare && f.MaxRecipients == 0 {
			f.MaxRecipients = guard.DefaultMaxRecipients
		}
		if f.Kind == KindContact && len(f.Choices) > 0 && f.ChoiceField == "" {
			f.ChoiceField = guard.DefaultChoiceField
		}
		fillLimit(&f.Limits.PerIP, guard.DefaultPerIP)
		fillLimit(&f.Limits.PerNetwork, guard.DefaultPerNetwork)
		fillLimit(&f.Limits.PerSender, guard.DefaultPerSender)
		fillLimit(&f.Limits.PerRecipient, guard.DefaultPerRecipient)
		fillLimit(&f.Limits.PerForm, guard.DefaultPerForm)
		if f.Captcha != nil {
			f.Captcha = mergeCaptcha(c.Captcha, *f.Captcha)
		}
		if f.FormToken != nil {
			zeroDur(&f.FormToken.MinFill, DefaultMinFill)
			zeroDur(&f.FormToken.MaxAge, DefaultTokenMaxAge)
		}
	}
}

// adminAddr puts a bare admin port (":9090" or "9090") on loopback: the
// admin endpoints tell whoever can reach them about the service's health.
func adminAddr(v string) string {
	if v == "" {
		return ""
	}
	port := strings.TrimPrefix(v, ":")
	for _, r := range port {
		if r < '0' || r > '9' {
			return v
		}
	}
	return net.JoinHostPort("127.0.0.1", port)
}

func captchaDefaults(cc *Captcha) {
	if cc.Provider == "" {
		cc.Provider = DefaultCaptchaProvider
	}
	if cc.PoW.MaxNumber == 0 {
		cc.PoW.MaxNumber = DefaultPoWMaxNumber
	}
	if cc.PoW.Expires == 0 {
		cc.PoW.Expires = DefaultPoWExpires
	}
	if cc.Provider == ProviderReCAPTCHA && cc.MinScore == 0 && cc.Action != "" {
		cc.MinScore = DefaultRecaptchaMinScore
	}
}

// mergeCaptcha applies a form's captcha override to the service's: with
// the same provider unset keys are inherited; a different provider starts
// afresh, since one provider's keys mean nothing to another.
func mergeCaptcha(base, o Captcha) *Captcha {
	if o.Provider != "" && o.Provider != base.Provider {
		captchaDefaults(&o)
		return &o
	}
	m := base
	if o.SecretEnv != "" || o.SecretFile != "" {
		m.SecretEnv, m.SecretFile = o.SecretEnv, o.SecretFile
	}
	if o.SiteKey != "" {
		m.SiteKey = o.SiteKey
	}
	if o.VerifyURL != "" {
		m.VerifyURL = o.VerifyURL
	}
	if o.MinScore != 0 {
		m.MinScore = o.MinScore
	}
	if o.Action != "" {
		m.Action = o.Action
	}
	if o.PoW.MaxNumber != 0 {
		m.PoW.MaxNumber = o.PoW.MaxNumber
	}
	if o.PoW.Expires != 0 {
		m.PoW.Expires = o.PoW.Expires
	}
	return &m
}

func zeroDur[T ~int64](v *T, d T) {
	if *v == 0 {
		*v = d
	}
}

func fillLimit(l *Limit, d ratelimit.Limit) {
	if l.IsZero() {
		l.Limit = d
	}
}

// FormNames returns the form names in sorted order.
func (c *Config) FormNames() []string {
	names := make([]string, 0, len(c.Forms))
	for n := range c.Forms {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// FormCaptcha returns the captcha settings in force for form name.
func (c *Config) FormCaptcha(name string) Captcha {
	if f := c.Forms[name]; f != nil && f.Captcha != nil {
		return *f.Captcha
	}
	return c.Captcha
}

// GlobalLimit is the one service-wide limit: the strictest of limits.global
// and any form's limits.global.
func (c *Config) GlobalLimit() ratelimit.Limit {
	g := c.Limits.Global.Limit
	for _, f := range c.Forms {
		if f == nil || f.Limits.Global.IsZero() {
			continue
		}
		if g.IsZero() || f.Limits.Global.Interval() > g.Interval() {
			g = f.Limits.Global.Limit
		}
	}
	return g
}

// DefaultWorkers is mail.workers' default: four delivery goroutines per
// CPU, at least outbox.DefaultConcurrency and at most 64. A worker spends
// most of its time waiting on the relay and on fsync, and signs (RSA: about
// 1 ms of CPU) only in between, so several per core keep every core signing.
func DefaultWorkers() int {
	return min(64, max(outbox.DefaultConcurrency, 4*runtime.GOMAXPROCS(0)))
}
