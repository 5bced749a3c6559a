package server

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"sort"
	"strconv"

	"github.com/formguard/formguard/guard/captcha"
	"github.com/formguard/formguard/internal/config"
)

//go:embed web
var webFS embed.FS

var demoTmpl = template.Must(template.ParseFS(webFS, "web/index.html"))

// DemoForm describes one form on the demo page.
type DemoForm struct {
	Name          string   // form name (/f/{Name})
	Kind          string   // contact or share
	Captcha       string   // pow, turnstile, hcaptcha, recaptcha or none
	SiteKey       string   // third-party providers' public key
	Choices       []string // contact choices (sorted); empty: fixed recipients
	ChoiceField   string
	MaxRecipients int
	Token         bool // the form needs a form token, embedded per page view
}

// Demo is the demo page: every configured form, working, with the
// proof-of-work widget where the form uses it.
type Demo struct {
	SiteName string
	Domain   string
	Origin   string // the site's first origin, for the share form's default URL
	Forms    []DemoForm
	// CurlForm is a form without CAPTCHA or form token, for the curl
	// example; "" hides the example.
	CurlForm string
	// Issue makes a form token for forms with Token set; the page is then
	// rendered per view, each with fresh tokens.
	Issue func(form string) (string, error)
}

// NewDemo checks that the demo page renders.
func NewDemo(d Demo) (*Demo, error) {
	sort.Slice(d.Forms, func(i, j int) bool { return d.Forms[i].Name < d.Forms[j].Name })
	if err := demoTmpl.Execute(io.Discard, &d); err != nil {
		return nil, fmt.Errorf("server: demo page: %w", err)
	}
	return &d, nil
}

// ServeHTTP serves the page with a strict CSP: scripts only from this
// origin (the widget) and the CAPTCHA providers the page uses.
func (d *Demo) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var page bytes.Buffer
	if err := demoTmpl.Execute(&page, d); err != nil {
		http.Error(w, "demo page unavailable", http.StatusServiceUnavailable)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(page.Len()))
	h.Set("Cache-Control", "no-store") // form tokens are single use
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; script-src 'self' https://challenges.cloudflare.com https://js.hcaptcha.com https://www.google.com https://www.gstatic.com; frame-src https://challenges.cloudflare.com https://*.hcaptcha.com https://www.google.com; style-src 'self' 'unsafe-inline'; worker-src 'self' blob:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(page.Bytes())
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
