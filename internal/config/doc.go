// Package config reads the formguard service's configuration: one YAML file
// (or the built-in demo when there is none), overridden by a handful of
// FORMGUARD_* environment variables, completed with defaults, then
// validated as a whole. It maps the YAML onto the libraries' own Configs
// (guard.Config, the captcha verifiers) rather than re-stating their rules.
//
// Load order:
//
//  1. the YAML file, decoded strictly: an unknown key is an error naming its
//     line, and so is a second YAML document;
//  2. environment overrides: FORMGUARD_LISTEN, FORMGUARD_REDIS_URL,
//     FORMGUARD_SMTP_ADDR, FORMGUARD_SMTP_PASSWORD, FORMGUARD_CAPTCHA_SECRET;
//  3. built-in defaults for every key left empty (the Default* constants;
//     a form's are the guard's, guard.Form.WithDefaults);
//  4. secrets read from the environment variables or files the config names;
//  5. validation of everything, reporting every problem at once, each with
//     its key path (and line, when it came from the file). A form's policy
//     is validated by guard.New itself, on a throwaway guard built from the
//     same mapping (GuardConfig) the service uses.
//
// Secrets are never written in the YAML file itself: the file names an
// environment variable (password_env, secret_env) or a file (password_file,
// secret_file) that holds them. Resolved secrets are held in the Secret type,
// which prints, logs and marshals as "[redacted]"; Redacted returns a copy
// safe to show whole.
package config
