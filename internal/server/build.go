package server

import (
	"crypto/hmac"
	"crypto/sha256"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"time"

	"github.com/formguard/formguard/guard"
	"github.com/formguard/formguard/guard/captcha"
	"github.com/formguard/formguard/internal/config"
	"golang.org/x/time/rate"
)

// DeriveKey derives a 32-byte key for one purpose from a master secret
// (HMAC-SHA256 as a PRF, RFC 2104), so one secret can key several things
// without any two sharing a key.
func DeriveKey(master []byte, purpose string) []byte {
	m := hmac.New(sha256.New, master)
	m.Write([]byte("formguard v1 " + purpose))
	return m.Sum(nil)
}

// Captchas are the bot defences built for every form.
type Captchas struct {
	// Verifiers by form; a form with provider none has none.
	Verifiers map[string]captcha.Verifier
	// PoW by form, for the challenge endpoints.
	PoW map[string]*captcha.PoW
	// Tokens by form, for forms with form_token.
	Tokens map[string]*captcha.FormToken
}

// CaptchaDeps are what BuildCaptchas needs besides the config.
type CaptchaDeps struct {
	// Master keys the proof-of-work HMAC when the captcha block has no
	// secret (required: derive it from something every instance shares).
	Master []byte
	// Replay is the single-use cache shared by every verifier (required).
	Replay captcha.ReplayCache
	// HTTPClient calls third-party siteverify endpoints. Zero value:
	// http.DefaultClient.
	HTTPClient *http.Client
	// Now is the clock. Zero value: time.Now.
	Now func() time.Time
	// Escalate raises proof-of-work difficulty per client key (see
	// captcha.PoWConfig.Escalate). Zero value: no escalation.
	Escalate func(clientKey string) int64
}

// BuildCaptchas builds each form's verifier from the config.
func BuildCaptchas(cfg *config.Config, d CaptchaDeps) (*Captchas, error) {
	if len(d.Master) == 0 || d.Replay == nil {
		return nil, fmt.Errorf("server: BuildCaptchas needs Master and Replay")
	}
	hosts, err := hostnames(cfg.Site.Origins)
	if err != nil {
		return nil, err
	}
	out := &Captchas{Verifiers: map[string]captcha.Verifier{}, PoW: map[string]*captcha.PoW{}, Tokens: map[string]*captcha.FormToken{}}
	// One bucket for every third-party verifier of the service: see
	// limits.captcha_verify.
	lv := cfg.Limits.CaptchaVerify.Limit
	if lv.IsZero() {
		lv = config.DefaultCaptchaVerify
	}
	siteverify := rate.NewLimiter(rate.Limit(float64(lv.Count)/lv.Period.Seconds()), lv.Count)
	for _, name := range cfg.FormNames() {
		if ft := cfg.Forms[name].FormToken; ft != nil {
			tok, err := captcha.NewFormToken(captcha.FormTokenConfig{
				Keys: [][]byte{DeriveKey(d.Master, "form token")}, MinFill: ft.MinFill, MaxAge: ft.MaxAge,
				Replay: d.Replay, Now: d.Now,
			})
			if err != nil {
				return nil, fmt.Errorf("server: form %s: %w", name, err)
			}
			out.Tokens[name] = tok
		}
		cc := cfg.FormCaptcha(name)
		var v captcha.Verifier
		switch cc.Provider {
		case config.ProviderNone:
			continue
		case config.ProviderPoW:
			key := DeriveKey(d.Master, "pow")
			if cc.Secret.IsSet() {
				key = DeriveKey([]byte(cc.Secret.Reveal()), "pow")
			}
			p, err := captcha.NewPoW(captcha.PoWConfig{
				Keys: [][]byte{key}, MaxNumber: cc.PoW.MaxNumber, Expiry: cc.PoW.Expires,
				Replay: d.Replay, Now: d.Now, Escalate: d.Escalate,
			})
			if err != nil {
				return nil, fmt.Errorf("server: form %s: %w", name, err)
			}
			out.PoW[name] = p
			v = p
		case config.ProviderTurnstile:
			v, err = captcha.NewTurnstile(captcha.TurnstileConfig{
				Secret: cc.Secret.Reveal(), SiteKey: cc.SiteKey, Hostnames: hosts, Action: cc.Action,
				VerifyURL: cc.VerifyURL, HTTPClient: d.HTTPClient, Replay: d.Replay, Now: d.Now,
			})
		case config.ProviderHCaptcha:
			v, err = captcha.NewHCaptcha(captcha.HCaptchaConfig{
				Secret: cc.Secret.Reveal(), SiteKey: cc.SiteKey, Hostnames: hosts,
				VerifyURL: cc.VerifyURL, HTTPClient: d.HTTPClient, Replay: d.Replay, Now: d.Now,
			})
		case config.ProviderReCAPTCHA:
			version := 2
			if cc.Action != "" {
				version = 3
			}
			v, err = captcha.NewReCAPTCHA(captcha.ReCAPTCHAConfig{
				Version: version, Secret: cc.Secret.Reveal(), SiteKey: cc.SiteKey, Hostnames: hosts,
				Action: cc.Action, MinScore: cc.MinScore,
				VerifyURL: cc.VerifyURL, HTTPClient: d.HTTPClient, Replay: d.Replay, Now: d.Now,
			})
		default:
			return nil, fmt.Errorf("server: form %s: unknown captcha provider %q", name, cc.Provider)
		}
		if err != nil {
			return nil, fmt.Errorf("server: form %s: %w", name, err)
		}
		if cc.Provider != config.ProviderPoW {
			v = captcha.Throttle(v, siteverify, 0)
		}
		out.Verifiers[name] = v
	}
	return out, nil
}

// GuardForms turns the config's forms into guard policies, with each
// form's verifier and form token (either map may be nil).
func GuardForms(cfg *config.Config, verifiers map[string]captcha.Verifier, tokens map[string]*captcha.FormToken) map[string]guard.Form {
	forms := make(map[string]guard.Form, len(cfg.Forms))
	for _, name := range cfg.FormNames() {
		f := cfg.Forms[name]
		kind := guard.KindContact
		if f.Kind == config.KindShare {
			kind = guard.KindShare
		}
		forms[name] = guard.Form{
			Kind:                 kind,
			To:                   f.To,
			Choices:              f.Choices,
			ChoiceField:          f.ChoiceField,
			MaxRecipients:        f.MaxRecipients,
			RecipientDomains:     f.RecipientDomains,
			DenyRecipientDomains: f.DenyRecipientDomains,
			Fields: guard.FieldNames{
				Name: f.Fields.Name, Email: f.Fields.Email, Subject: f.Fields.Subject,
				Message: f.Fields.Message, To: f.Fields.To, URL: f.Fields.URL,
			},
			ExtraFields:        f.ExtraFields,
			RequireEmail:       f.RequireEmail,
			MaxName:            f.MaxName,
			MaxSubject:         f.MaxSubject,
			MaxMessage:         f.MaxMessage,
			MaxLinks:           f.MaxLinks,
			MaxBody:            f.MaxBody,
			AllowMissingOrigin: f.AllowMissingOrigin,
			AllowNoBotDefence:  f.AllowNoBotDefence,
			Limits: guard.Limits{
				PerIP: f.Limits.PerIP.Limit, PerNetwork: f.Limits.PerNetwork.Limit, PerSender: f.Limits.PerSender.Limit,
				PerRecipient: f.Limits.PerRecipient.Limit, PerForm: f.Limits.PerForm.Limit,
			},
			SuccessURL: f.SuccessURL,
			ErrorURL:   f.ErrorURL,
			Captcha:    verifiers[name],
		}
		if t := tokens[name]; t != nil {
			gf := forms[name]
			gf.Token = t
			forms[name] = gf
		}
	}
	return forms
}

// DemoFor describes the config's forms for the demo page; tokens issue
// the form tokens of forms that need one (nil: none do).
func DemoFor(cfg *config.Config, tokens map[string]*captcha.FormToken) (*Demo, error) {
	d := Demo{SiteName: cfg.Site.Name, Domain: cfg.Site.Domain, Issue: func(form string) (string, error) {
		t, ok := tokens[form]
		if !ok {
			return "", fmt.Errorf("server: form %s has no form token", form)
		}
		return t.Issue(form)
	}}
	if len(cfg.Site.Origins) > 0 {
		d.Origin = cfg.Site.Origins[0]
	}
	for _, name := range cfg.FormNames() {
		f := cfg.Forms[name]
		cc := cfg.FormCaptcha(name)
		df := DemoForm{Name: name, Kind: f.Kind, Captcha: cc.Provider, SiteKey: cc.SiteKey,
			ChoiceField: f.ChoiceField, MaxRecipients: f.MaxRecipients, Token: tokens[name] != nil}
		for c := range f.Choices {
			df.Choices = append(df.Choices, c)
		}
		sort.Strings(df.Choices)
		d.Forms = append(d.Forms, df)
		if d.CurlForm == "" && cc.Provider == config.ProviderNone && f.FormToken == nil && len(f.Choices) == 0 && f.Kind == config.KindContact {
			d.CurlForm = name
		}
	}
	return NewDemo(d)
}

// hostnames are the host names of the origins, which third-party CAPTCHA
// answers must name.
func hostnames(origins []string) ([]string, error) {
	seen := map[string]bool{}
	var out []string
	for _, o := range origins {
		u, err := url.Parse(o)
		if err != nil || u.Hostname() == "" {
			return nil, fmt.Errorf("server: origin %q has no host", o)
		}
		if h := u.Hostname(); !seen[h] {
			seen[h] = true
			out = append(out, h)
		}
	}
	return out, nil
}

// GuardConfig is the guard.Config for cfg, counting decisions in m. The
// caller adds the parts that are not configuration: Store, KeySecret, Now
// and Logger.
func GuardConfig(cfg *config.Config, caps *Captchas, m *Metrics) guard.Config {
	onErr, onOK := m.GuardHandlers()
	return guard.Config{
		Domain:         cfg.Site.Domain,
		Origins:        cfg.Site.Origins,
		TrustedProxies: cfg.TrustedProxies,
		Forms:          GuardForms(cfg, caps.Verifiers, caps.Tokens),
		Global:         cfg.GlobalLimit(),
		ErrorHandler:   onErr,
		SuccessHandler: onOK,
	}
}
