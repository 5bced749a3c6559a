package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Redacted is what a set Secret prints as.
const Redacted = "[redacted]"

// MaxSecretFile bounds a secret file's size; a secret is a line, not a blob.
const MaxSecretFile = 64 << 10

// Secret holds a password or key resolved from the environment or a file.
// It prints, logs and marshals (YAML and JSON) as "[redacted]" when set, so
// a Config can be shown or logged whole; Reveal returns the value. A Secret
// cannot be written in the YAML file: secrets live in environment variables
// or files, never in the config.
type Secret string

// Reveal returns the secret value.
func (s Secret) Reveal() string { return string(s) }

// IsSet reports whether the secret is non-empty.
func (s Secret) IsSet() bool { return s != "" }

func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return Redacted
}

// GoString keeps %#v from printing the value.
func (s Secret) GoString() string { return `config.Secret("` + s.String() + `")` }

// LogValue keeps slog from printing the value.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalYAML prints the redacted form.
func (s Secret) MarshalYAML() (any, error) { return s.String(), nil }

// MarshalJSON prints the redacted form.
func (s Secret) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }

// errInlineSecret refuses secrets written in the config file.
var errInlineSecret = errors.New("secrets are not accepted in the config file; name an environment variable (*_env) or a file (*_file)")

// UnmarshalYAML refuses inline secrets.
func (s *Secret) UnmarshalYAML(n *yaml.Node) error { return nodeError(n, errInlineSecret) }

// secrets resolves secrets, reporting each problem under the key that
// names the variable (KEY_env) or file (KEY_file).
type secrets struct {
	getenv func(string) (string, bool)
	p      *problems
}

func (s secrets) resolve(key, envName, fileName string) Secret {
	switch {
	case envName != "" && fileName != "":
		s.p.add(key+"_file", "set either "+key+"_env or "+key+"_file, not both")
	case envName != "":
		if v, ok := s.getenv(envName); ok && v != "" {
			return Secret(v)
		}
		s.p.add(key+"_env", fmt.Sprintf("environment variable %s is not set", envName))
	case fileName != "":
		v, err := readSecretFile(fileName)
		if err == nil {
			return Secret(v)
		}
		s.p.add(key+"_file", err.Error())
	}
	return ""
}

func readSecretFile(name string) (string, error) {
	f, err := os.Open(name)
	if err != nil {
		return "", err
	}
	defer f.Close()
	buf := make([]byte, MaxSecretFile+1)
	n, _ := io.ReadFull(f, buf)
	if n > MaxSecretFile {
		return "", fmt.Errorf("%s is larger than %d bytes", name, MaxSecretFile)
	}
	v := strings.TrimRight(string(buf[:n]), "\r\n")
	if v == "" {
		return "", fmt.Errorf("%s is empty", name)
	}
	return v, nil
}
