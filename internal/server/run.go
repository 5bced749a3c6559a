package server

import (
	"context"
	"crypto"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/netip"

	"github.com/formguard/formguard/internal/config"
	"github.com/formguard/formguard/mailer/dnscheck"
)

// Run serves the public handler on ln, and the admin endpoints on admin,
// until ctx ends, then shuts down gracefully: it stops accepting, lets
// in-flight requests finish (so every accepted post is in the outbox),
// stops the delivery workers after their current attempt and closes
// everything. admin must be given exactly when admin_listen is set (nil
// otherwise). It returns nil after a clean shutdown.
func (s *Service) Run(ctx context.Context, ln, admin net.Listener) error {
	if (admin != nil) != (s.cfg.AdminListen != "") {
		_ = ln.Close()
		if admin != nil {
			_ = admin.Close()
		}
		return errors.Join(errors.New("server: Run needs an admin listener exactly when admin_listen is set"), s.Close())
	}
	servers := []*http.Server{s.httpServer(s.handler)}
	listeners := []net.Listener{ln}
	if admin != nil {
		servers = append(servers, s.httpServer(s.handler.AdminHandler()))
		listeners = append(listeners, admin)
	}
	workCtx, stopWork := context.WithCancel(context.WithoutCancel(ctx))
	defer stopWork()
	s.mailer.Start(workCtx)
	s.logStart(ln, admin)
	if config.ReservedDomain(s.cfg.Site.Domain) {
		s.log.Info("doctor skipped: site.domain is a reserved test name (RFC 2606, RFC 6761)", "domain", s.cfg.Site.Domain)
	} else if !s.opt.SkipDoctor {
		s.bg.Add(1)
		go func() {
			defer s.bg.Done()
			s.doctor(workCtx)
		}()
	}
	serveErr := s.serve(ctx, servers, listeners)
	stopWork()
	err := errors.Join(serveErr, s.Close())
	if err == nil {
		s.log.Info("stopped cleanly")
	}
	return err
}

// serve runs every server on its listener until ctx ends or one of them
// fails, then shuts them all down within http.shutdown_timeout.
func (s *Service) serve(ctx context.Context, servers []*http.Server, listeners []net.Listener) error {
	errc := make(chan error, len(servers))
	for i, srv := range servers {
		go func() { errc <- srv.Serve(listeners[i]) }()
	}
	var errs []error
	pending := len(servers)
	select {
	case err := <-errc:
		errs = append(errs, err)
		pending--
	case <-ctx.Done():
		s.log.Info("shutting down", "grace_ms", s.cfg.HTTP.ShutdownTimeout.Milliseconds())
	}
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.HTTP.ShutdownTimeout)
	defer cancel()
	// The public server first: its in-flight posts finish while /readyz
	// and /metrics still answer.
	for _, srv := range servers {
		if err := srv.Shutdown(sctx); err != nil {
			s.log.Warn("graceful shutdown incomplete; closing connections", "error", err.Error())
			_ = srv.Close()
		}
	}
	for ; pending > 0; pending-- {
		errs = append(errs, <-errc)
	}
	for i, err := range errs {
		if errors.Is(err, http.ErrServerClosed) {
			errs[i] = nil
		}
	}
	return errors.Join(errs...)
}

func (s *Service) httpServer(h http.Handler) *http.Server {
	c := s.cfg.HTTP
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: c.ReadHeaderTimeout,
		ReadTimeout:       c.ReadTimeout,
		WriteTimeout:      c.WriteTimeout,
		IdleTimeout:       c.IdleTimeout,
		MaxHeaderBytes:    c.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
}

// logStart logs where the service listens and what it runs on, and the
// config's warnings.
func (s *Service) logStart(ln, admin net.Listener) {
	outboxAt := s.cfg.Mail.OutboxDir
	if s.cfg.Mail.Outbox == config.OutboxKindRedis {
		outboxAt = "redis stream " + RedisPrefix + ":outbox"
	}
	attrs := []any{"addr", ln.Addr().String(), "url", "http://" + ln.Addr().String() + "/",
		"outbox", outboxAt, "transport", s.cfg.Mail.Transport, "forms", s.cfg.FormNames(),
		"limits", map[bool]string{true: "redis", false: "memory"}[s.redis != nil]}
	if admin != nil {
		attrs = append(attrs, "admin_addr", admin.Addr().String())
	}
	if s.cfg.Mail.Transport == config.TransportFile {
		attrs = append(attrs, "eml_dir", s.SentDir())
	}
	s.log.Info("formguard listening", attrs...)
	for _, w := range s.cfg.Warnings() {
		s.log.Warn("config warning", "warning", w)
	}
}

// Close stops background work and releases every resource (idempotent).
func (s *Service) Close() error {
	s.closeOnce.Do(func() {
		s.bg.Wait()
		var errs []error
		for i := len(s.closers) - 1; i >= 0; i-- {
			errs = append(errs, s.closers[i]())
		}
		s.closeErr = errors.Join(errs...)
	})
	return s.closeErr
}

// doctor runs the DNS checks once and logs each finding; a DNS outage is
// logged, never fatal.
func (s *Service) doctor(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, StartupDoctorTimeout)
	defer cancel()
	rep, err := dnscheck.Check(ctx, DoctorConfig(s.cfg, s.signer.Public(), nil, s.opt.DNSServer))
	if err != nil {
		s.log.Warn("doctor: DNS checks could not run", "error", err.Error())
		return
	}
	for _, f := range rep.Findings {
		level := slog.LevelInfo
		switch f.Severity {
		case dnscheck.SeverityError:
			level = slog.LevelError
		case dnscheck.SeverityWarning:
			level = slog.LevelWarn
		}
		s.log.Log(ctx, level, "doctor finding", "code", string(f.Code), "severity", string(f.Severity), "detail", f.Detail, "fix", f.Fix)
	}
	s.log.Info("doctor done", "domain", rep.Domain, "findings", len(rep.Findings), "errors", rep.HasErrors(), "notes", rep.Notes)
}

// DoctorConfig is the dnscheck configuration for cfg: the DKIM public key,
// the relay IPs when given, else the SMTP relay's host.
func DoctorConfig(cfg *config.Config, pub crypto.PublicKey, relayIPs []netip.Addr, server string) dnscheck.Config {
	dc := dnscheck.Config{
		Domain:    cfg.Site.Domain,
		Bounce:    cfg.Mail.Bounce,
		Selector:  cfg.Mail.DKIM.Selector,
		PublicKey: pub,
		RelayIPs:  relayIPs,
		Server:    server,
	}
	if len(relayIPs) == 0 && cfg.Mail.Transport == config.TransportSMTP {
		dc.RelayHost = cfg.Mail.SMTP.Addr
	}
	return dc
}
