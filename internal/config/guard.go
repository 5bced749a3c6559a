package config

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"github.com/formguard/formguard/post"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/time/rate"

	"github.com/formguard/formguard/guard"
	"github.com/formguard/formguard/guard/captcha"
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

// CaptchaDeps are what Captchas needs besides the config.
type CaptchaDeps struct {
	// Master keys the proof-of-work HMAC when the captcha block has no
	// secret, and the form tokens (required: derive it from something
	// every instance shares).
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

// Captchas builds each form's verifier and form token. An error is an
// *Error naming the form's captcha or form_token key.
func (c *Config) Captchas(d CaptchaDeps) (*Captchas, error) {
	if len(d.Master) == 0 || d.Replay == nil {
		return nil, errors.New("config: Captchas needs Master and Replay")
	}
	out := &Captchas{Verifiers: map[string]captcha.Verifier{}, PoW: map[string]*captcha.PoW{}, Tokens: map[string]*captcha.FormToken{}}
	// One bucket for every third-party verifier of the service: see
	// limits.captcha_verify.
	lv := c.Limits.CaptchaVerify.Limit
	siteverify := rate.NewLimiter(rate.Limit(float64(lv.Count)/lv.Period.Seconds()), lv.Count)
	for _, name := range c.FormNames() {
		if ft := c.Forms[name].FormToken; ft != nil {
			tok, err := captcha.NewFormToken(captcha.FormTokenConfig{
				Keys: [][]byte{DeriveKey(d.Master, "form token")}, MinFill: ft.MinFill, MaxAge: ft.MaxAge,
				Replay: d.Replay, Now: d.Now,
			})
			if err != nil {
				return nil, &Error{Path: "forms." + name + ".form_token", Msg: err.Error()}
			}
			out.Tokens[name] = tok
		}
		v, err := c.verifier(name, d)
		if err != nil {
			return nil, &Error{Path: "forms." + name + ".captcha", Msg: err.Error()}
		}
		switch p, isPoW := v.(*captcha.PoW); {
		case isPoW:
			out.PoW[name] = p
		case v != nil:
			v = captcha.Throttle(v, siteverify, 0)
		}
		if v != nil {
			out.Verifiers[name] = v
		}
	}
	return out, nil
}

// verifier builds form name's CAPTCHA verifier; nil for provider none.
func (c *Config) verifier(name string, d CaptchaDeps) (captcha.Verifier, error) {
	cc := c.FormCaptcha(name)
	var hosts []string
	for _, o := range c.Site.Origins {
		if u, err := url.Parse(o); err == nil && u.Hostname() != "" {
			hosts = append(hosts, u.Hostname())
		}
	}
	switch cc.Provider {
	case ProviderPoW:
		key := DeriveKey(d.Master, "pow")
		if cc.Secret.IsSet() {
			key = DeriveKey([]byte(cc.Secret.Reveal()), "pow")
		}
		return captcha.NewPoW(captcha.PoWConfig{
			Keys: [][]byte{key}, MaxNumber: cc.PoW.MaxNumber, Expiry: cc.PoW.Expires,
			Replay: d.Replay, Now: d.Now, Escalate: d.Escalate,
		})
	case ProviderTurnstile:
		return captcha.NewTurnstile(captcha.TurnstileConfig{
			Secret: cc.Secret.Reveal(), SiteKey: cc.SiteKey, Hostnames: hosts, Action: cc.Action,
			VerifyURL: cc.VerifyURL, HTTPClient: d.HTTPClient, Replay: d.Replay, Now: d.Now,
		})
	case ProviderHCaptcha:
		return captcha.NewHCaptcha(captcha.HCaptchaConfig{
			Secret: cc.Secret.Reveal(), SiteKey: cc.SiteKey, Hostnames: hosts,
			VerifyURL: cc.VerifyURL, HTTPClient: d.HTTPClient, Replay: d.Replay, Now: d.Now,
		})
	case ProviderReCAPTCHA:
		version := 2
		if cc.Action != "" {
			version = 3
		}
		return captcha.NewReCAPTCHA(captcha.ReCAPTCHAConfig{
			Version: version, Secret: cc.Secret.Reveal(), SiteKey: cc.SiteKey, Hostnames: hosts,
			Action: cc.Action, MinScore: cc.MinScore,
			VerifyURL: cc.VerifyURL, HTTPClient: d.HTTPClient, Replay: d.Replay, Now: d.Now,
		})
	case ProviderNone:
		return nil, nil
	}
	return nil, fmt.Errorf("unknown captcha provider %q", cc.Provider)
}

// GuardConfig maps the config onto guard.Config, each form with its
// verifiers from caps (nil: none). The caller adds the parts that are not
// configuration: Store, KeySecret, Now, Logger and the handlers.
func (c *Config) GuardConfig(caps *Captchas) guard.Config {
	forms := make(map[string]guard.Form, len(c.Forms))
	for name, f := range c.Forms {
		forms[name] = f.guardForm(caps, name)
	}
	return guard.Config{
		Domain:         c.Site.Domain,
		Origins:        c.Site.Origins,
		TrustedProxies: c.TrustedProxies,
		Forms:          forms,
		Global:         c.GlobalLimit(),
	}
}

// guardForm maps the form onto guard.Form, with the verifiers caps holds
// for form name (caps nil: none).
func (f *Form) guardForm(caps *Captchas, name string) guard.Form {
	g := guard.Form{
		To: f.To, Choices: f.Choices, ChoiceField: f.ChoiceField,
		MaxRecipients: f.MaxRecipients, RecipientDomains: f.RecipientDomains, DenyRecipientDomains: f.DenyRecipientDomains,
		Fields: f.Fields, ExtraFields: f.ExtraFields, RequireEmail: f.RequireEmail,
		MaxName: f.MaxName, MaxSubject: f.MaxSubject, MaxMessage: f.MaxMessage, MaxLinks: f.MaxLinks, MaxBody: f.MaxBody,
		AllowMissingOrigin: f.AllowMissingOrigin, AllowNoBotDefence: f.AllowNoBotDefence,
		Limits: guard.Limits{
			PerIP: f.Limits.PerIP.Limit, PerNetwork: f.Limits.PerNetwork.Limit, PerSender: f.Limits.PerSender.Limit,
			PerRecipient: f.Limits.PerRecipient.Limit, PerForm: f.Limits.PerForm.Limit,
		},
		SuccessURL: f.SuccessURL, ErrorURL: f.ErrorURL,
	}
	if f.Kind == KindShare {
		g.Kind = post.Share
	}
	if caps != nil {
		g.Captcha = caps.Verifiers[name]
		if t := caps.Tokens[name]; t != nil {
			g.Token = t
		}
	}
	return g
}

// checkGuard builds the verifiers and the guard the config describes, with
// throwaway keys and caches, so that whatever they refuse is reported at
// load time under its key.
func (c *Config) checkGuard(p *problems) {
	master := make([]byte, 32)
	_, _ = rand.Read(master)
	caps, err := c.Captchas(CaptchaDeps{Master: master, Replay: captcha.NewMemoryReplay(0, nil)})
	if err == nil {
		var g *guard.Guard
		if g, err = guard.New(c.GuardConfig(caps)); err == nil {
			_ = g.Close()
			return
		}
	}
	var ce *Error
	var fe *guard.FormError
	switch {
	case errors.As(err, &ce):
		p.add(ce.Path, ce.Msg)
	case errors.As(err, &fe):
		p.add("forms."+fe.Form+"."+yamlPath(fe.Key), fe.Msg)
	default:
		p.add("forms", err.Error())
	}
}

// yamlPath turns a guard key path ("ExtraFields[1]", "Choices.sales[0]")
// into the YAML one ("extra_fields[1]", "choices.sales[0]"): segments that
// start with a capital are Go field names, the others map keys.
func yamlPath(key string) string {
	segs := strings.Split(key, ".")
	for i, s := range segs {
		if s == "" || s[0] < 'A' || s[0] > 'Z' {
			continue
		}
		var b strings.Builder
		for j := 0; j < len(s); j++ {
			ch := s[j]
			if 'A' <= ch && ch <= 'Z' {
				lowerBefore := j > 0 && 'a' <= s[j-1] && s[j-1] <= 'z'
				lowerAfter := j > 0 && j+1 < len(s) && 'a' <= s[j+1] && s[j+1] <= 'z'
				if lowerBefore || lowerAfter {
					b.WriteByte('_')
				}
				ch += 'a' - 'A'
			}
			b.WriteByte(ch)
		}
		segs[i] = b.String()
	}
	return strings.Join(segs, ".")
}
