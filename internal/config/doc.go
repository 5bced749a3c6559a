// Package config reads the formguard service's configuration: one YAML file
// (or the built-in demo), FORMGUARD_* environment overrides, defaults,
// secrets, then validation that reports every problem with its key path and
// line. It maps the YAML onto the libraries' own Configs rather than
// re-stating their rules. Secrets are never written in the YAML itself and
// print as "[redacted]". See docs/configuration.md.
package config
