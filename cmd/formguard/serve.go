package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"syscall"

	"github.com/formguard/formguard/internal/config"
	"github.com/formguard/formguard/internal/server"
	"github.com/formguard/formguard/mailer"
)

func serve(ctx context.Context, args []string, e env) int {
	fs := newFlags("serve", e)
	path := fs.String("config", "", "config file (default ./formguard.yaml if present, else the built-in demo)")
	check := fs.Bool("check", false, "validate the config, print it with secrets redacted, and exit")
	dns := fs.String("dns", "", "DNS server for the start-up doctor, HOST:PORT (default: the system's resolvers)")
	noDoctor := fs.Bool("no-doctor", false, "skip the background DNS checks at start-up")
	if code := parseFlags(fs, args); code >= 0 {
		return code
	}
	cfg, source, err := loadConfig(*path, e)
	if err != nil {
		fmt.Fprintln(e.stderr, err)
		return exitUsage
	}
	if *check {
		// The key must parse, not just exist (unless serve will make it).
		if _, err := os.Stat(cfg.Mail.DKIM.KeyFile); err == nil || !cfg.Mail.DKIM.Generate {
			if _, err := mailer.LoadKey(cfg.Mail.DKIM.KeyFile); err != nil {
				fmt.Fprintf(e.stderr, "config: %s: mail.dkim.key_file: %v\n", source, err)
				return exitUsage
			}
		}
		out, err := cfg.YAML()
		if err != nil {
			fmt.Fprintln(e.stderr, "formguard:", err)
			return exitFailure
		}
		fmt.Fprintf(e.stdout, "# effective configuration from %s (secrets redacted)\n%s", source, out)
		for _, w := range cfg.Warnings() {
			fmt.Fprintln(e.stderr, "warning:", w)
		}
		fmt.Fprintf(e.stderr, "formguard: %s is valid\n", source)
		return exitOK
	}
	log := server.NewLogger(cfg.Log, e.stderr)
	log.Info("configuration loaded", "source", source)
	svc, err := server.Open(ctx, cfg, server.Options{Logger: log, DNSServer: *dns, SkipDoctor: *noDoctor})
	if err != nil {
		log.Error("cannot start", "error", err.Error())
		return exitFailure
	}
	ln, err := listen(cfg.Listen, "listen", config.EnvListen, log)
	if err != nil {
		_ = svc.Close()
		return exitFailure
	}
	var admin net.Listener
	if cfg.AdminListen != "" {
		if admin, err = listen(cfg.AdminListen, "admin_listen", config.EnvAdminListen, log); err != nil {
			_ = ln.Close()
			_ = svc.Close()
			return exitFailure
		}
	}
	if err := svc.Run(ctx, ln, admin); err != nil {
		log.Error("stopped with an error", "error", err.Error())
		return exitFailure
	}
	return exitOK
}

// listen binds addr, logging why it could not; a port already in use gets
// a hint naming the variable that picks another.
func listen(addr, key, envVar string, log *slog.Logger) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		attrs := []any{"addr", addr, "error", err.Error()}
		if errors.Is(err, syscall.EADDRINUSE) {
			attrs = append(attrs, "hint", "another process uses this port: stop it, or set "+envVar+" (or "+key+" in the config) to a free address")
		}
		log.Error("cannot listen", attrs...)
	}
	return ln, err
}
