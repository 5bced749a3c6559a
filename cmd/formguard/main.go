package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
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

Usage: formguard [command] [flags]

Commands:
  formguard [serve]     Serve the forms (the default command).
  formguard doctor      Check the domain's SPF, DKIM and DMARC records against the config.
  formguard dkim-keygen Generate a DKIM key and print the DNS record to publish.
  formguard version     Print the version.
  formguard help        Print this help.

Run "formguard COMMAND -h" for a command's flags. Without -config, serve and
doctor read ./formguard.yaml, else the built-in demo.

Environment: FORMGUARD_LISTEN, FORMGUARD_ADMIN_LISTEN, FORMGUARD_REDIS_URL,
FORMGUARD_SMTP_ADDR, FORMGUARD_SMTP_PASSWORD, FORMGUARD_CAPTCHA_SECRET
override the config.
Exit status: 0 ok, 1 runtime failure or doctor errors, 2 usage or config error.
`

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
	if len(args) > 0 && (!strings.HasPrefix(args[0], "-") || isHelp(args[0])) {
		cmd, args = args[0], args[1:]
	}
	switch {
	case isHelp(cmd):
		fmt.Fprint(e.stdout, usage)
		return exitOK
	case cmd == "version":
		fmt.Fprintln(e.stdout, "formguard", buildVersion())
		return exitOK
	case cmd == "serve":
		return serve(ctx, args, e)
	case cmd == "doctor":
		return doctor(ctx, args, e)
	case cmd == "dkim-keygen":
		return keygen(args, e)
	}
	fmt.Fprintf(e.stderr, "formguard: unknown command %q\n\n%s", cmd, usage)
	return exitUsage
}

func isHelp(arg string) bool {
	switch arg {
	case "help", "-h", "-help", "--help":
		return true
	}
	return false
}

// buildVersion is the module version the binary was built from (as go
// install records it; "devel" for a build in a work tree) and, when the
// build recorded it, the VCS revision.
func buildVersion() string { return versionOf(debug.ReadBuildInfo()) }

func versionOf(info *debug.BuildInfo, ok bool) string {
	if !ok {
		return "devel"
	}
	v := info.Main.Version
	if v == "" || v == "(devel)" {
		v = "devel"
	}
	var rev, modified string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				modified = ", modified"
			}
		}
	}
	if rev != "" {
		v += " (" + rev + modified + ")"
	}
	return v
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
