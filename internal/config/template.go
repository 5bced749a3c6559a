package config

import (
	"fmt"
	htmltemplate "html/template"
	"io"
	"os"
	"strings"
	texttemplate "text/template"
	"time"

	"github.com/formguard/formguard/mailer"
)

// MaxTemplateFile bounds a template file.
const MaxTemplateFile = 256 << 10

// Template customises a form's mail. Templates are Go text/template (the
// HTML part html/template, which escapes every value), fed
// mailer.TemplateData: .Site .Domain .Form .Kind .ID .Name .Email .Subject
// .Message .URL .Fields .Received, and the function indent. Unset parts
// keep the built-in template of the form's kind.
type Template struct {
	// Subject is an inline template for the Subject (one line; cut at the
	// first line break and capped by the mailer).
	Subject string `yaml:"subject"`
	// TextFile is a template file for the text/plain part.
	TextFile string `yaml:"text_file"`
	// HTMLFile is a template file for the optional text/html part.
	HTMLFile string `yaml:"html_file"`
}

var templateFuncs = map[string]any{"indent": func(prefix, s string) string {
	return prefix + strings.ReplaceAll(s, "\n", "\n"+prefix)
}}

// MailTemplate builds the form's mailer.Template: the built-in template of
// its kind with the configured parts replaced. Every part is parsed and
// tried on sample data, so a template that cannot render fails here, at
// start-up, not on a visitor's post.
func (f *Form) MailTemplate() (mailer.Template, error) {
	tpl := mailer.DefaultContactTemplate
	if f.Kind == KindShare {
		tpl = mailer.DefaultShareTemplate
	}
	t := f.Template
	if t == nil {
		return tpl, nil
	}
	if t.Subject != "" {
		s, err := texttemplate.New("subject").Funcs(templateFuncs).Parse(t.Subject)
		if err != nil {
			return tpl, fmt.Errorf("subject: %w", err)
		}
		tpl.Subject = s
	}
	if t.TextFile != "" {
		src, err := readTemplate(t.TextFile)
		if err != nil {
			return tpl, err
		}
		if tpl.Text, err = texttemplate.New("text").Funcs(templateFuncs).Parse(src); err != nil {
			return tpl, fmt.Errorf("text_file: %w", err)
		}
	}
	if t.HTMLFile != "" {
		src, err := readTemplate(t.HTMLFile)
		if err != nil {
			return tpl, err
		}
		if tpl.HTML, err = htmltemplate.New("html").Funcs(templateFuncs).Parse(src); err != nil {
			return tpl, fmt.Errorf("html_file: %w", err)
		}
	}
	sample := &mailer.TemplateData{Site: "Site", Domain: "example.test", Form: "form", Kind: f.Kind, ID: "id",
		Name: "Name", Email: "name@example.test", Subject: "Subject", Message: "Line one\nLine two",
		URL: "https://example.test/", Fields: map[string]string{"x": "y"}, Received: time.Unix(0, 0)}
	if err := tpl.Subject.Execute(io.Discard, sample); err != nil {
		return tpl, fmt.Errorf("subject: %w", err)
	}
	if err := tpl.Text.Execute(io.Discard, sample); err != nil {
		return tpl, fmt.Errorf("text_file: %w", err)
	}
	if tpl.HTML != nil {
		if err := tpl.HTML.Execute(io.Discard, sample); err != nil {
			return tpl, fmt.Errorf("html_file: %w", err)
		}
	}
	return tpl, nil
}

func readTemplate(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxTemplateFile+1))
	if err != nil {
		return "", err
	}
	if len(b) > MaxTemplateFile {
		return "", fmt.Errorf("%s is larger than %d bytes", path, MaxTemplateFile)
	}
	return string(b), nil
}
