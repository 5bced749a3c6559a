package config

import (
	"strings"
	"testing"
)

func TestWarnings(t *testing.T) {
	const prod = `
site: {domain: formguard.dev, origins: ["https://formguard.dev"]}
mail: {from: no-reply@formguard.dev, transport: smtp, smtp: {addr: "127.0.0.1:25", tls: none}, dkim: {key_file: ` + testKey + `}}
forms: {contact: {to: [a@formguard.dev]}}
`
	tests := []struct {
		name string
		yaml string
		want string // "" means no warning at all
	}{
		{"a sound production config warns of nothing", prod, ""},
		{"the demo warns of nothing (reserved domain)", string(Demo()), ""},
		{"trusting every proxy", prod + "trusted_proxies: [\"0.0.0.0/0\"]\n", "trusts nearly every address"},
		{"a generated key on a real domain", strings.Replace(prod, "dkim: {", "dkim: {generate: true, ", 1), "not yet published in DNS"},
		{"the file transport on a real domain", strings.Replace(prod, "transport: smtp", "transport: file", 1), "not sent"},
		{"plain http origin on a real host", strings.Replace(prod, "https://formguard.dev", "http://formguard.dev", 1), "secure context"},
		{"admin endpoints on every interface", prod + "admin_listen: \"0.0.0.0:9090\"\n", "admin_listen 0.0.0.0:9090 is not a loopback address"},
		{"admin endpoints on a bare port (loopback) warn of nothing", prod + "admin_listen: \"9090\"\n", ""},
		{"an open form", strings.Replace(prod, "{to: [a@formguard.dev]}", "{to: [a@formguard.dev], allow_missing_origin: true, captcha: {provider: none}}", 1), "forms.contact takes posts from any client"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var c *Config
			var err error
			if tc.name == "the demo warns of nothing (reserved domain)" {
				c, err = Load("", env())
			} else {
				c, err = Parse("t.yaml", []byte(tc.yaml), env())
			}
			if err != nil {
				t.Fatal(err)
			}
			w := strings.Join(c.Warnings(), "\n")
			if tc.want == "" && w != "" {
				t.Errorf("unexpected warnings:\n%s", w)
			}
			if tc.want != "" && !strings.Contains(w, tc.want) {
				t.Errorf("warnings %q lack %q", w, tc.want)
			}
		})
	}
}
