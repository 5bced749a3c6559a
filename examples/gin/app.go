// The settings and the mail side, which do not depend on the router.

package main

import (
	"context"
	"crypto"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/formguard/formguard/guard"
	"github.com/formguard/formguard/mailer"
	"github.com/formguard/formguard/mailer/outbox"
)

// config is an example's settings, from flags and the environment.
type config struct {
	Addr   string // listen address; http://Addr is the origin posts must come from
	Domain string // the site's domain: From, MAIL FROM and DKIM d= are on it
	To     string // the contact form's recipient
	Data   string // data folder: dkim.pem, outbox/ and (file transport) sent/
	SMTP   string // relay host:port; empty: write .eml files to Data/sent
	// SMTP AUTH, from the environment only (flags show up in ps).
	SMTPUser, SMTPPassword string
}

// flags parses the command line into a config; data is the default data
// folder.
func flags(data string) config {
	var cfg config
	flag.StringVar(&cfg.Addr, "addr", envOr("ADDR", "127.0.0.1:8080"), "listen address ($ADDR)")
	flag.StringVar(&cfg.Domain, "domain", "example.test", "the site's mail domain (From, MAIL FROM, DKIM d=)")
	flag.StringVar(&cfg.To, "to", "", "contact form recipient (default support@DOMAIN)")
	flag.StringVar(&cfg.Data, "data", data, "data folder: DKIM key, outbox, sent .eml files")
	flag.StringVar(&cfg.SMTP, "smtp", os.Getenv("FORMGUARD_SMTP_ADDR"), "SMTP relay host:port ($FORMGUARD_SMTP_ADDR); empty: the file transport")
	flag.Parse()
	if cfg.To == "" {
		cfg.To = "support@" + cfg.Domain
	}
	cfg.SMTPUser, cfg.SMTPPassword = os.Getenv("FORMGUARD_SMTP_USERNAME"), os.Getenv("FORMGUARD_SMTP_PASSWORD")
	return cfg
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// dkimSelector names the DKIM key in DNS: s1._domainkey.<domain>.
const dkimSelector = "s1"

// newMailer opens everything under cfg.Data: the DKIM key (made on first
// run), the durable outbox, and the transport: SMTP to cfg.SMTP, or .eml
// files in Data/sent when no relay is given. The Mailer owns and closes
// the outbox and transport.
func newMailer(cfg config, log *slog.Logger) (*mailer.Mailer, error) {
	if err := os.MkdirAll(cfg.Data, 0o700); err != nil {
		return nil, err
	}
	key, err := dkimKey(filepath.Join(cfg.Data, "dkim.pem"), cfg.Domain, log)
	if err != nil {
		return nil, err
	}
	// A post is answered only once its mail is fsynced here, so mail
	// accepted while the relay is down is sent when it comes back.
	spool, err := outbox.NewDir(outbox.DirConfig{Path: filepath.Join(cfg.Data, "outbox")})
	if err != nil {
		return nil, err
	}
	var transport mailer.Transport
	if cfg.SMTP == "" {
		transport, err = mailer.NewFile(mailer.FileConfig{Dir: filepath.Join(cfg.Data, "sent")})
	} else {
		// The zero TLS mode requires STARTTLS, except to a loopback relay.
		transport, err = mailer.NewSMTP(mailer.SMTPConfig{Addr: cfg.SMTP,
			Username: cfg.SMTPUser, Password: cfg.SMTPPassword})
	}
	if err != nil {
		spool.Close()
		return nil, err
	}
	m, err := mailer.New(mailer.Config{
		Domain:    cfg.Domain, // From no-reply@Domain, MAIL FROM the same
		SiteName:  "Example",
		DKIM:      mailer.DKIM{Selector: dkimSelector, Signer: key},
		Transport: transport,
		Outbox:    spool,
		Logger:    log,
	})
	if err != nil {
		transport.Close()
		spool.Close()
		return nil, err
	}
	return m, nil
}

// dkimKey loads the DKIM key at path, generating an RSA-2048 key there on
// first run, and logs the TXT record that publishes it (RFC 6376 3.6.2).
func dkimKey(path, domain string, log *slog.Logger) (crypto.Signer, error) {
	pemBytes, err := os.ReadFile(path)
	generated := errors.Is(err, fs.ErrNotExist)
	if generated {
		if pemBytes, err = mailer.GenerateKey("rsa", 0); err == nil {
			err = writeNew(path, pemBytes)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("DKIM key: %w", err)
	}
	key, err := mailer.ParseKey(pemBytes)
	if err != nil {
		return nil, err
	}
	name, txt, err := mailer.DNSRecord(dkimSelector, domain, key.Public())
	if err != nil {
		return nil, err
	}
	// An RSA record is longer than 255 bytes: a zone file needs it split
	// into several quoted strings (mailer.SplitTXT).
	log.Info("DKIM key: publish this TXT record", "key_file", path, "generated", generated,
		"dns_name", name, "dns_txt", txt)
	return key, nil
}

// writeNew writes a private key file, mode 0600, refusing to replace one.
func writeNew(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
	}
	return err
}

// errOutbox answers a post that passed every check but whose mail could
// not be queued: nothing was accepted, so the visitor may try again.
var errOutbox = &guard.Error{
	Status:     http.StatusServiceUnavailable,
	Code:       "outbox_unavailable",
	Message:    "Your message could not be queued for delivery; nothing was sent. Please try again later.",
	RetryAfter: 30 * time.Second,
}

// deliveryError maps a Deliver error to the answer. A submission the mailer
// refuses to build is a bug (the guard accepted it), so 500 internal;
// anything else means the outbox could not take the mail: 503. The cause
// goes to the log, never to the client.
func deliveryError(err error) *guard.Error {
	if errors.Is(err, mailer.ErrSubmission) || errors.Is(err, mailer.ErrPolicy) {
		return guard.AsError(err) // guard.ErrInternal carrying err
	}
	e := *errOutbox
	e.Cause = err
	return &e
}

// Serve runs srv until ctx ends, then shuts it down gracefully: in-flight
// posts finish queueing (up to 15 s) before Serve returns, so the caller's
// deferred Mailer.Close comes after the last Deliver.
func serve(ctx context.Context, srv *http.Server, cfg config) error {
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	slog.Info("example listening", "addr", "http://"+cfg.Addr, "data", cfg.Data, "smtp", cfg.SMTP)
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	slog.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return err
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
