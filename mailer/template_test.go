package mailer

import (
	"context"
	htmltemplate "html/template"
	"strings"
	"testing"
	texttemplate "text/template"
)

func TestTemplates(t *testing.T) {
	custom := Template{
		Subject: texttemplate.Must(texttemplate.New("s").Parse("Order question: {{.Fields.order}}\nBcc: x@y.example")),
		Text:    texttemplate.Must(texttemplate.New("t").Parse("Order {{.Fields.order}}\n\n{{.Message}}\n")),
		HTML:    htmltemplate.Must(htmltemplate.New("h").Parse(`<p>Order {{.Fields.order}}</p><pre>{{.Message}}</pre>`)),
	}
	f := newFixture(t, "", TransportFunc(func(context.Context, Envelope, []byte) error { return nil }),
		loadKey(t, "ed25519.pem"), func(c *Config) { c.Templates = map[string]Template{"orders": custom} })

	t.Run("visitor text is data, never template source", func(t *testing.T) {
		s := contact("sub-1")
		s.Message = `{{.Domain}} {{template "x"}} {{printf "%s" "pwn"}}`
		msgs, err := f.m.Compose(s)
		if err != nil {
			t.Fatal(err)
		}
		text, _ := parts(t, msgs[0].Raw)
		if !strings.Contains(text, s.Message) {
			t.Fatalf("visitor text was interpreted:\n%s", text)
		}
	})
	t.Run("per-form template with extra fields", func(t *testing.T) {
		s := contact("sub-2")
		s.Form = "orders"
		s.Fields = map[string]string{"order": "A-17 <i>"}
		msgs, err := f.m.Compose(s)
		if err != nil {
			t.Fatal(err)
		}
		raw := msgs[0].Raw
		if subj := decodeHeader(t, header(t, raw, "Subject")[0]); subj != "Order question: A-17 <i>" {
			t.Errorf("Subject = %q (a template's second line must be cut)", subj)
		}
		if len(header(t, raw, "Bcc")) != 0 {
			t.Fatal("template output injected a header")
		}
		text, html := parts(t, raw)
		if !strings.HasPrefix(text, "Order A-17 <i>\n") || !strings.Contains(html, "Order A-17 &lt;i&gt;") {
			t.Errorf("bodies:\n%s\n%s", text, html)
		}
	})
	t.Run("template errors are reported", func(t *testing.T) {
		broken := Template{Text: texttemplate.Must(texttemplate.New("t").Option("missingkey=error").Parse("{{.Fields.nope}}"))}
		g := newFixture(t, "", TransportFunc(func(context.Context, Envelope, []byte) error { return nil }),
			loadKey(t, "ed25519.pem"), func(c *Config) { c.Templates = map[string]Template{"contact": broken} })
		s := contact("sub-3")
		s.Fields = map[string]string{}
		if _, err := g.m.Compose(s); err == nil || !strings.Contains(err.Error(), `text template for form "contact"`) {
			t.Fatalf("err = %v", err)
		}
	})
}
