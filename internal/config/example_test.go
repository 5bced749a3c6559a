package config_test

import (
	"fmt"

	"github.com/formguard/formguard/internal/config"
)

func ExampleParse() {
	yaml := `
site: {domain: example.org, origins: ["https://www.example.org"]}
mail:
  from: no-reply@example.org
  dkim: {key_file: ../../testdata/config/dkim-ed25519.pem}
forms:
  contact: {to: [support@example.org], limits: {per_ip: 10/h}}
`
	env := map[string]string{"FORMGUARD_LISTEN": "127.0.0.1:9000"}
	cfg, err := config.Parse("formguard.yaml", []byte(yaml), config.Options{
		Getenv: func(k string) (string, bool) { v, ok := env[k]; return v, ok },
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(cfg.Listen)
	fmt.Println(cfg.Mail.Bounce, cfg.Mail.OutboxDir)
	fmt.Println(cfg.Forms["contact"].Limits.PerIP, cfg.Forms["contact"].Limits.PerSender)
	// Output:
	// 127.0.0.1:9000
	// no-reply@example.org var/outbox
	// 10/h 3/h
}

func ExampleParse_invalid() {
	yaml := `
site: {domain: example.org, origins: ["https://www.example.org"]}
mail: {from: no-reply@evil.test, dkim: {generate: true}}
forms: {contact: {to: [support@example.org]}}
`
	_, err := config.Parse("formguard.yaml", []byte(yaml), config.Options{
		Getenv: func(string) (string, bool) { return "", false },
	})
	fmt.Println(err)
	// Output:
	// config: formguard.yaml:3: mail.from: must be on site.domain example.org (DMARC alignment, RFC 7489 3.1)
}
