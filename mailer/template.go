package mailer

import (
	htmltemplate "html/template"
	"strings"
	texttemplate "text/template"
	"time"
)

// Template renders one form's messages. Templates come from configuration
// (trusted); a visitor's text only ever reaches them as TemplateData, so it
// is data and never template source. HTML is rendered with html/template,
// which escapes every value by context.
type Template struct {
	// Subject renders the Subject field. The result is cut at the first
	// line break, stripped of control characters and capped at
	// MaxSubjectRunes.
	Subject *texttemplate.Template
	// Text renders the text/plain part (required).
	Text *texttemplate.Template
	// HTML renders an optional text/html alternative.
	HTML *htmltemplate.Template
}

// MaxSubjectRunes caps a rendered Subject.
const MaxSubjectRunes = 200

// TemplateData is what templates see. Every visitor-controlled value is
// plain text (escaped by html/template in HTML parts).
type TemplateData struct {
	Site     string            // Config.SiteName
	Domain   string            // Config.Domain
	Form     string            // form name
	Kind     string            // "contact" or "share"
	ID       string            // submission ID
	Name     string            // visitor's name (may be "")
	Email    string            // visitor's address, also in Reply-To (may be "")
	Subject  string            // visitor's subject (contact forms)
	Message  string            // visitor's text
	URL      string            // shared page (share forms)
	Fields   map[string]string // allow-listed extra fields
	Received time.Time         // when the guard accepted the post
}

var funcs = texttemplate.FuncMap{"indent": func(prefix, s string) string {
	return prefix + strings.ReplaceAll(s, "\n", "\n"+prefix)
}}

// Built-in templates, used for forms without an entry in Config.Templates.
var (
	// DefaultContactTemplate addresses the site's own staff.
	DefaultContactTemplate = Template{
		Subject: texttemplate.Must(texttemplate.New("subject").Parse(
			`[{{.Site}}] {{if .Subject}}{{.Subject}}{{else}}Message from {{if .Name}}{{.Name}}{{else}}a visitor{{end}}{{end}}`)),
		Text: texttemplate.Must(texttemplate.New("text").Funcs(funcs).Parse(
			`New message from the {{.Form}} form on {{.Site}}.

Name:    {{if .Name}}{{.Name}}{{else}}(not given){{end}}
Email:   {{if .Email}}{{.Email}} (reply to this message to answer){{else}}(not given){{end}}
{{- if .Subject}}
Subject: {{.Subject}}{{end}}
{{- range $k, $v := .Fields}}
{{$k}}: {{$v}}{{end}}

{{.Message}}

-- 
Submission {{.ID}}, received {{.Received.UTC.Format "2006-01-02 15:04:05 MST"}}.
`)),
		HTML: htmltemplate.Must(htmltemplate.New("html").Parse(
			`<!doctype html><html><body>
<p>New message from the <b>{{.Form}}</b> form on {{.Site}}.</p>
<table>
<tr><td>Name</td><td>{{if .Name}}{{.Name}}{{else}}(not given){{end}}</td></tr>
<tr><td>Email</td><td>{{if .Email}}{{.Email}}{{else}}(not given){{end}}</td></tr>
{{- if .Subject}}<tr><td>Subject</td><td>{{.Subject}}</td></tr>{{end}}
{{- range $k, $v := .Fields}}<tr><td>{{$k}}</td><td>{{$v}}</td></tr>{{end}}
</table>
<pre style="white-space:pre-wrap">{{.Message}}</pre>
<p><small>Submission {{.ID}}</small></p>
</body></html>
`)),
	}

	// DefaultShareTemplate goes to visitor-chosen recipients, so it is fixed
	// and careful: the subject carries nothing from the visitor, the note is
	// quoted as the visitor's words, and the message says who sent it.
	DefaultShareTemplate = Template{
		Subject: texttemplate.Must(texttemplate.New("subject").Parse(
			`A page on {{.Site}} was shared with you`)),
		Text: texttemplate.Must(texttemplate.New("text").Funcs(funcs).Parse(
			`{{if .Name}}{{.Name}}{{else}}A visitor{{end}} shared this page on {{.Site}} with you:

{{.URL}}
{{if .Message}}
Their note:

{{indent "> " .Message}}
{{end}}
-- 
This message was sent by {{.Site}} ({{.Domain}}) on behalf of a visitor
who entered your address in a "share this page" form. You will not be
added to any list.
`)),
		HTML: htmltemplate.Must(htmltemplate.New("html").Parse(
			`<!doctype html><html><body>
<p>{{if .Name}}{{.Name}}{{else}}A visitor{{end}} shared this page on {{.Site}} with you:</p>
<p><a href="{{.URL}}">{{.URL}}</a></p>
{{- if .Message}}
<p>Their note:</p>
<blockquote style="white-space:pre-wrap">{{.Message}}</blockquote>
{{- end}}
<hr><p><small>This message was sent by {{.Site}} ({{.Domain}}) on behalf of a visitor
who entered your address in a "share this page" form. You will not be
added to any list.</small></p>
</body></html>
`)),
	}
)
