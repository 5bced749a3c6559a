package config

import (
	"os"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/formguard/formguard/guard"
	"github.com/formguard/formguard/guard/captcha"
	"github.com/formguard/formguard/guard/ratelimit"
)

// docsRow returns the line of docs/configuration.md's tables for key.
func docsRow(doc, key string) string {
	for _, l := range strings.Split(doc, "\n") {
		if strings.HasPrefix(l, "| `"+key+"`") || strings.HasPrefix(l, "| `"+key+"` ") {
			return l
		}
	}
	return ""
}

// TestDocsCoverEveryKey keeps docs/configuration.md's key table in step
// with the code: every key the config accepts is documented, with the
// code's default.
func TestDocsCoverEveryKey(t *testing.T) {
	b, err := os.ReadFile("../../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	c, err := Load("", env())
	if err != nil {
		t.Fatal(err)
	}
	full := c.Redacted()
	full.Forms = map[string]*Form{"f": {Captcha: &Captcha{}, FormToken: &FormToken{}, Template: &Template{}}}
	out, err := yaml.Marshal(full)
	if err != nil {
		t.Fatal(err)
	}
	var root yaml.Node
	if err := yaml.Unmarshal(out, &root); err != nil {
		t.Fatal(err)
	}
	var walk func(n *yaml.Node, path string)
	walk = func(n *yaml.Node, path string) {
		if n.Kind != yaml.MappingNode {
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i].Value
			p := k
			if path != "" {
				p = path + "." + k
			}
			switch {
			case path == "forms":
				walk(n.Content[i+1], "forms.*")
				continue
			case strings.HasPrefix(p, "forms.*.captcha"):
				continue // documented as "same keys as captcha"
			case n.Content[i+1].Kind == yaml.MappingNode:
				walk(n.Content[i+1], p) // a section: its leaves are the keys
				continue
			}
			documented := strings.Contains(doc, "`"+strings.TrimPrefix(p, "forms.*.")+"`") ||
				strings.Contains(doc, "`"+strings.TrimPrefix(p, "forms.*.")+" ") ||
				strings.Contains(doc, strings.TrimPrefix(p, "forms.*.")+"` /") ||
				strings.Contains(doc, "/ `"+k+"`") || strings.Contains(doc, "/ "+k+"`")
			if !documented {
				t.Errorf("key %s is not documented in docs/configuration.md", p)
			}
		}
	}
	walk(root.Content[0], "")

	// Defaults that the docs state must be the code's.
	for key, want := range map[string]string{
		"listen":                   DefaultListen,
		"data_dir":                 DefaultDataDir,
		"mail.dkim.selector":       DefaultDKIMSelector,
		"captcha.provider":         DefaultCaptchaProvider,
		"captcha.pow.max_number":   "100000",
		"captcha.pow.expires":      "10m",
		"mail.smtp.tls":            DefaultSMTPTLS,
		"mail.transport":           DefaultTransport,
		"mail.outbox":              OutboxKindDir,
		"http.max_header_bytes":    "16384",
		"http.read_header_timeout": "5s",
		"http.shutdown_timeout":    "20s",
		"limits.global":            guard.DefaultGlobal.String(),
		"limits.redis_timeout":     DefaultRedisTimeout.String(),
		"limits.captcha_verify":    DefaultCaptchaVerify.String(),
		"limits.per_ip":            guard.DefaultPerIP.String(),
		"limits.per_network":       guard.DefaultPerNetwork.String(),
		"limits.per_sender":        guard.DefaultPerSender.String(),
		"limits.per_recipient":     guard.DefaultPerRecipient.String(),
		"limits.per_form":          guard.DefaultPerForm.String(),
		"max_recipients":           "1",
		"choice_field":             guard.DefaultChoiceField,
		"form_token.min_fill":      "3s",
		"mail.retry.base_delay":    "30s",
		"mail.retry.max_delay":     "1h",
		"mail.retry.max_age":       "72h",
		"mail.workers":             "4×CPUs",
		"form_token.max_age":       "2h",
		"limits.memory_keys":       "0",
		"limits.replay_entries":    "0",
	} {
		t.Run(key, func(t *testing.T) {
			row := docsRow(doc, key)
			if row == "" {
				t.Fatalf("no table row for %s", key)
			}
			cols := strings.Split(row, "|")
			if len(cols) < 3 || !strings.Contains(cols[2], "`"+want+"`") {
				t.Errorf("the default column for %s does not say %q:\n%s", key, want, row)
			}
		})
	}

	// 0 stands for a library default: the row names its value.
	for key, lib := range map[string]int{"limits.memory_keys": ratelimit.DefaultMaxKeys, "limits.replay_entries": captcha.DefaultReplayEntries} {
		if row := docsRow(doc, key); !strings.Contains(row, "("+strconv.Itoa(lib)+")") {
			t.Errorf("the row for %s does not give the library default %d:\n%s", key, lib, row)
		}
	}
}
