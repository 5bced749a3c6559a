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

// applyDefaults fills every key left empty with its default, so the
// effective config (serve -check) shows what is really used. A form's
// defaults are the guard's (guard.Form.WithDefaults).
func (c *Config) applyDefaults() {
	or(&c.Listen, DefaultListen)
	or(&c.DataDir, DefaultDataDir)
	or(&c.Site.Name, c.Site.Domain)
	c.AdminListen = adminAddr(c.AdminListen)
	or(&c.Mail.Outbox, map[bool]string{true: OutboxKindRedis, false: OutboxKindDir}[c.RedisURL != ""])
	or(&c.Mail.OutboxDir, filepath.Join(c.DataDir, DefaultOutboxSubdir))
	or(&c.Mail.DKIM.KeyFile, filepath.Join(c.DataDir, DefaultDKIMKeyFile))
	or(&c.Mail.Bounce, c.Mail.From)
	or(&c.Mail.SMTP.HELO, c.Site.Domain)
	or(&c.HTTP.ReadHeaderTimeout, DefaultReadHeaderTimeout)
	or(&c.HTTP.ReadTimeout, DefaultReadTimeout)
	or(&c.HTTP.WriteTimeout, DefaultWriteTimeout)
	or(&c.HTTP.IdleTimeout, DefaultIdleTimeout)
	or(&c.HTTP.ShutdownTimeout, DefaultShutdownTimeout)
	or(&c.HTTP.MaxHeaderBytes, DefaultMaxHeaderBytes)
	or(&c.Mail.SMTP.Timeout, DefaultSMTPTimeout)
	or(&c.Mail.Retry.BaseDelay, outbox.DefaultBaseDelay)
	or(&c.Mail.Retry.MaxDelay, outbox.DefaultMaxDelay)
	or(&c.Mail.Retry.MaxAge, outbox.DefaultMaxAge)
	or(&c.Mail.Workers, DefaultWorkers())
	or(&c.Log.Format, DefaultLogFormat)
	or(&c.Log.Level, DefaultLogLevel)
	or(&c.Mail.Transport, DefaultTransport)
	or(&c.Mail.SMTP.TLS, DefaultSMTPTLS)
	or(&c.Mail.DKIM.Selector, DefaultDKIMSelector)
	or(&c.Limits.Global.Limit, guard.DefaultGlobal)
	or(&c.Limits.CaptchaVerify.Limit, DefaultCaptchaVerify)
	or(&c.Limits.RedisTimeout, DefaultRedisTimeout)
	captchaDefaults(&c.Captcha)
	for _, f := range c.Forms {
		if f == nil {
			continue
		}
		or(&f.Kind, KindContact)
		if f.Captcha != nil {
			f.Captcha = mergeCaptcha(c.Captcha, *f.Captcha)
		}
		if f.FormToken != nil {
			or(&f.FormToken.MinFill, DefaultMinFill)
			or(&f.FormToken.MaxAge, DefaultTokenMaxAge)
		}
		if f.Kind == KindContact || f.Kind == KindShare {
			f.setEffective(f.guardForm(nil, "").WithDefaults())
		}
	}
}

// setEffective writes the values the guard uses back into the form.
func (f *Form) setEffective(e guard.Form) {
	f.Fields, f.ChoiceField, f.RequireEmail = e.Fields, e.ChoiceField, e.RequireEmail
	f.MaxRecipients, f.MaxName, f.MaxSubject = e.MaxRecipients, e.MaxName, e.MaxSubject
	f.MaxMessage, f.MaxLinks, f.MaxBody = e.MaxMessage, e.MaxLinks, e.MaxBody
	l := &f.Limits
	l.PerIP.Limit, l.PerNetwork.Limit, l.PerSender.Limit = e.Limits.PerIP, e.Limits.PerNetwork, e.Limits.PerSender
	l.PerRecipient.Limit, l.PerForm.Limit = e.Limits.PerRecipient, e.Limits.PerForm
}

// or sets *v to def when *v is its zero value.
func or[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}

// adminAddr puts a bare admin port (":9090" or "9090") on loopback: the
// admin endpoints tell whoever can reach them about the service's health.
func adminAddr(v string) string {
	port := strings.TrimPrefix(v, ":")
	if v == "" || strings.Trim(port, "0123456789") != "" {
		return v
	}
	return net.JoinHostPort("127.0.0.1", port)
}

func captchaDefaults(cc *Captcha) {
	or(&cc.Provider, DefaultCaptchaProvider)
	or(&cc.PoW.MaxNumber, DefaultPoWMaxNumber)
	or(&cc.PoW.Expires, DefaultPoWExpires)
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
	if o.SecretEnv != "" || o.SecretFile != "" {
		base.SecretEnv, base.SecretFile = o.SecretEnv, o.SecretFile
	}
	or(&o.SiteKey, base.SiteKey)
	or(&o.VerifyURL, base.VerifyURL)
	or(&o.MinScore, base.MinScore)
	or(&o.Action, base.Action)
	or(&o.PoW.MaxNumber, base.PoW.MaxNumber)
	or(&o.PoW.Expires, base.PoW.Expires)
	o.Provider, o.SecretEnv, o.SecretFile = base.Provider, base.SecretEnv, base.SecretFile
	return &o
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
