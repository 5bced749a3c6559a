package config

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/formguard/formguard/mailer"
)

func TestTemplates(t *testing.T) {
	dir := t.TempDir()
	write := func(name, src string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.txt", "{{.Name}} wrote:\n{{indent \"> \" .Message}}\n")
	html := write("good.html", "<p>{{.Message}}</p>")
	unknown := write("unknown.txt", "{{.Phone}}")
	broken := write("broken.txt", "{{.Name")
	withTemplate := func(tpl string) string {
		return strings.Replace(minimal, "{to: [support@example.test]}", "{to: [support@example.test], template: "+tpl+"}", 1)
	}
	tests := []struct {
		name string
		yaml string
		want string // error substring; "" means valid
	}{
		{"a subject and both files", withTemplate(`{subject: "[{{.Site}}] {{.Subject}}", text_file: ` + good + `, html_file: ` + html + `}`), ""},
		{"only a subject keeps the built-in body", withTemplate(`{subject: "Hi {{.Name}}"}`), ""},
		{"a field templates do not have", withTemplate(`{text_file: ` + unknown + `}`), "forms.contact.template: text_file"},
		{"a syntax error", withTemplate(`{text_file: ` + broken + `}`), "forms.contact.template: text_file"},
		{"a bad subject", withTemplate(`{subject: "{{.Nope}}"}`), "forms.contact.template: subject"},
		{"a missing file", withTemplate(`{text_file: /nonexistent.txt}`), "no such file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("t.yaml", []byte(tc.yaml), env())
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
	t.Run("the rendered parts are the configured ones", func(t *testing.T) {
		c, err := Parse("t.yaml", []byte(withTemplate(`{subject: "[{{.Site}}] {{.Subject}}", text_file: `+good+`}`)), env())
		if err != nil {
			t.Fatal(err)
		}
		tpl, err := c.Forms["contact"].MailTemplate()
		if err != nil {
			t.Fatal(err)
		}
		data := &mailer.TemplateData{Site: "Ex", Name: "Ada", Subject: "Quote", Message: "a\nb", Received: time.Now()}
		var subj, text bytes.Buffer
		if err := tpl.Subject.Execute(&subj, data); err != nil {
			t.Fatal(err)
		}
		if err := tpl.Text.Execute(&text, data); err != nil {
			t.Fatal(err)
		}
		if subj.String() != "[Ex] Quote" || text.String() != "Ada wrote:\n> a\n> b\n" {
			t.Errorf("subject %q text %q", subj.String(), text.String())
		}
		if tpl.HTML != mailer.DefaultContactTemplate.HTML {
			t.Error("the unset HTML part is not the built-in one")
		}
	})
}
