package config

import (
	"maps"
	"slices"

	"go.yaml.in/yaml/v3"
)

// Redacted returns a deep copy of c in which every secret reads
// "[redacted]" (when set) however it is printed, marshalled or logged. It
// is the view `formguard serve -check` prints.
func (c *Config) Redacted() *Config {
	r := *c
	r.TrustedProxies = slices.Clone(c.TrustedProxies)
	r.Site.Origins = slices.Clone(c.Site.Origins)
	r.KeySecret = redact(c.KeySecret)
	r.Mail.SMTP.Password = redact(c.Mail.SMTP.Password)
	r.Captcha.Secret = redact(c.Captcha.Secret)
	r.Forms = make(map[string]*Form, len(c.Forms))
	for name, f := range c.Forms {
		if f == nil {
			continue
		}
		g := *f
		g.To = slices.Clone(f.To)
		g.Choices = maps.Clone(f.Choices)
		g.ExtraFields = slices.Clone(f.ExtraFields)
		g.RecipientDomains = slices.Clone(f.RecipientDomains)
		g.DenyRecipientDomains = slices.Clone(f.DenyRecipientDomains)
		if f.Template != nil {
			tp := *f.Template
			g.Template = &tp
		}
		if f.FormToken != nil {
			ft := *f.FormToken
			g.FormToken = &ft
		}
		if f.Captcha != nil {
			cc := *f.Captcha
			cc.Secret = redact(cc.Secret)
			g.Captcha = &cc
		}
		r.Forms[name] = &g
	}
	return &r
}

func redact(s Secret) Secret {
	if s.IsSet() {
		return Redacted
	}
	return ""
}

// YAML renders the redacted effective configuration.
func (c *Config) YAML() ([]byte, error) {
	return yaml.Marshal(c.Redacted())
}
