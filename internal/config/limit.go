package config

import (
	"fmt"

	"go.yaml.in/yaml/v3"

	"github.com/formguard/formguard/guard/ratelimit"
)

// Limit is a rate limit written "COUNT/[N]UNIT" in YAML ("5/h", "30/10m").
// The zero Limit means "the guard's default for this tier".
type Limit struct{ ratelimit.Limit }

// UnmarshalYAML parses the limit with ratelimit.ParseLimit.
func (l *Limit) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: a limit is a string such as 5/h or 30/10m", n.Line)
	}
	v, err := ratelimit.ParseLimit(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
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
