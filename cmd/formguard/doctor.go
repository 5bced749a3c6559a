package main

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"time"

	"github.com/formguard/formguard/internal/config"
	"github.com/formguard/formguard/internal/server"
	"github.com/formguard/formguard/mailer/dnscheck"
)

// DefaultDoctorTimeout bounds the whole doctor run.
const DefaultDoctorTimeout = 30 * time.Second

func doctor(ctx context.Context, args []string, e env) int {
	fs := newFlags("doctor", e)
	path := fs.String("config", "", "config file (default ./formguard.yaml if present, else the built-in demo)")
	dns := fs.String("dns", "", "DNS server to ask, HOST:PORT (default: the system's resolvers)")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	timeout := fs.Duration("timeout", DefaultDoctorTimeout, "give up after this long")
	var relays []netip.Addr
	fs.Func("relay-ip", "an address mail leaves from (repeatable; default: the SMTP relay's addresses)", func(s string) error {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return fmt.Errorf("not an IP address")
		}
		relays = append(relays, a)
		return nil
	})
	if code := parseFlags(fs, args); code >= 0 {
		return code
	}
	cfg, source, err := loadConfig(*path, e)
	if err != nil {
		fmt.Fprintln(e.stderr, err)
		return exitUsage
	}
	var pub crypto.PublicKey
	switch k, err := dnscheck.LoadPublicKey(cfg.Mail.DKIM.KeyFile); {
	case err == nil:
		pub = k
	case errors.Is(err, os.ErrNotExist) && cfg.Mail.DKIM.Generate:
		fmt.Fprintf(e.stderr, "note: %s does not exist yet (serve generates it); the published key is not compared\n", cfg.Mail.DKIM.KeyFile)
	default:
		fmt.Fprintln(e.stderr, "formguard doctor:", err)
		return exitUsage
	}
	dc := server.DoctorConfig(cfg, pub, relays, *dns)
	switch {
	case len(relays) > 0:
	case dc.RelayHost != "":
		fmt.Fprintf(e.stderr, "note: no -relay-ip given: checking the addresses of the SMTP relay %s\n", dc.RelayHost)
	default:
		fmt.Fprintf(e.stderr, "note: no -relay-ip given and transport is %s: the relay's SPF and reverse DNS are not checked\n", cfg.Mail.Transport)
	}
	if cfg.Mail.Transport == config.TransportFile {
		fmt.Fprintf(e.stderr, "note: %s uses the file transport; these records matter once mail goes out by SMTP\n", source)
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	rep, err := dnscheck.Check(ctx, dc)
	if err != nil {
		fmt.Fprintln(e.stderr, "formguard doctor:", err)
		return exitUsage
	}
	if *asJSON {
		err = rep.WriteJSON(e.stdout)
	} else {
		err = rep.WriteText(e.stdout)
	}
	if err != nil {
		fmt.Fprintln(e.stderr, "formguard doctor:", err)
		return exitFailure
	}
	if rep.HasErrors() {
		return exitFailure
	}
	return exitOK
}
