package config

import (
	"errors"

	"go.yaml.in/yaml/v3"

	"github.com/formguard/formguard/guard/ratelimit"
)

// Limit is a rate limit written "COUNT/[N]UNIT" in YAML ("5/h", "30/10m").
// The zero Limit means "the guard's default for this tier".
type Limit struct{ ratelimit.Limit }

// UnmarshalYAML parses the limit with ratelimit.ParseLimit.
func (l *Limit) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return nodeError(n, errors.New("a limit is a string such as 5/h or 30/10m"))
	}
	v, err := ratelimit.ParseLimit(n.Value)
	if err != nil {
		return nodeError(n, err)
	}
	l.Limit = v
	return nil
}

// MarshalYAML prints the limit as ParseLimit reads it, so printed configs
// load again.
func (l Limit) MarshalYAML() (any, error) {
	if l.IsZero() {
		return "", nil
	}
	return l.Limit.String(), nil
}
