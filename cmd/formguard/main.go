package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/formguard/formguard/internal/config"
)

// Exit statuses (see the package documentation).
const (
	exitOK      = 0
	exitFailure = 1 // runtime failure, or doctor errors
	exitUsage   = 2 // bad usage, invalid config, DNS unreachable for doctor
)

const usage = `formguard: a form-to-mail service that is never an open relay.

Usage:
  formguard [serve] [-config FILE] [-check] [-dns HOST:PORT] [-no-doctor]
      Serve forms (default). Without -config: ./formguard.yaml if present,
      else the built-in demo. -check validates and prints the effective
      config (secrets redacted) and exits.
  formguard doctor [-config FILE] [-dns HOST:PORT] [-relay-ip IP ...] [-json]
      Check the domain's SPF, DKIM and DMARC records against the config.
      Exit 1 when any finding is an error.
  formguard dkim-keygen [-alg rsa|ed25519] [-bits 2048] [-selector s1] -domain D -out FILE
      Generate a DKIM key and print the DNS TXT record to publish.
  formguard version

Environment: FORMGUARD_LISTEN, FORMGUARD_ADMIN_LISTEN, FORMGUARD_REDIS_URL,
FORMGUARD_SMTP_ADDR, FORMGUARD_SMTP_PASSWORD, FORMGUARD_CAPTCHA_SECRET
override the config.
Exit status: 0 ok, 1 runtime failure or doctor errors, 2 usage or config error.
`

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], env{stdout: os.Stdout, stderr: os.Stderr, getenv: os.LookupEnv})
	stop()
	os.Exit(code)
}

// env is the process environment, replaceable in tests.
type env struct {
	stdout, stderr io.Writer
	getenv         func(string) (string, bool)
}

func run(ctx context.Context, args []string, e env) int {
	cmd := "serve"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		return serve(ctx, args, e)
	case "doctor":
		return doctor(ctx, args, e)
	case "dkim-keygen":
		return keygen(args, e)
	case "version":
		fmt.Fprintln(e.stdout, "formguard", version)
		return exitOK
	case "help", "-h", "-help", "--help":
		fmt.Fprint(e.stdout, usage)
		return exitOK
	}
	fmt.Fprintf(e.stderr, "formguard: unknown command %q\n\n%s", cmd, usage)
	return exitUsage
}

// newFlags makes a FlagSet that reports errors instead of exiting.
func newFlags(name string, e env) *flag.FlagSet {
	fs := flag.NewFlagSet("formguard "+name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	return fs
}

// parseFlags parses args, returning the exit code to use when parsing
// stopped (help or error), or -1 to go on.
func parseFlags(fs *flag.FlagSet, args []string) int {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "%s: unexpected argument %q\n", fs.Name(), fs.Arg(0))
		return exitUsage
	}
	return -1
}

// loadConfig resolves which config to read and loads it. The returned
// source names it for logs.
func loadConfig(path string, e env) (*config.Config, string, error) {
	if path == "" {
		if _, err := os.Stat(config.DefaultFile); err == nil {
			path = config.DefaultFile
		}
	}
	cfg, err := config.Load(path, config.Options{Getenv: e.getenv})
	source := path
	if path == "" {
		source = config.DemoName
	}
	return cfg, source, err
}
