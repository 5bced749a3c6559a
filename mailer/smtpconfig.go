package mailer

import (
	"cmp"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	mail "github.com/wneessen/go-mail"
)

// TLSMode selects how the SMTP transport protects the relay connection.
type TLSMode string

// TLS modes. The zero value is the safe one: STARTTLS is mandatory unless
// the relay is on a loopback address, where there is no wire to protect.
const (
	TLSAuto     TLSMode = ""         // STARTTLS required; none for a loopback relay
	TLSNone     TLSMode = "none"     // plaintext; loopback relays only
	TLSStartTLS TLSMode = "starttls" // STARTTLS required (RFC 3207)
	TLSImplicit TLSMode = "tls"      // TLS from the first byte (RFC 8314 3.3)
)

// SMTP transport defaults.
const (
	DefaultPoolSize    = 4
	DefaultSMTPTimeout = 30 * time.Second
	DefaultIdleTimeout = 30 * time.Second
	DefaultMaxPerConn  = 100
)

// SMTPConfig configures the SMTP transport.
type SMTPConfig struct {
	// Addr is the relay's host:port (required).
	Addr string
	// TLS is the TLS mode. Zero value: TLSAuto.
	TLS TLSMode
	// TLSConfig overrides the TLS settings. Zero value: system roots,
	// ServerName = the relay's host, TLS 1.2 minimum.
	TLSConfig *tls.Config
	// Username and Password enable SMTP AUTH (RFC 4954). Zero value: none.
	// go-mail refuses to send them over an unencrypted non-loopback link.
	Username, Password string
	// Auth is "plain" (RFC 4616) or "login". Zero value: plain.
	Auth string
	// HELO is the name given in EHLO. Zero value: the host name.
	HELO string
	// PoolSize caps open connections; idle ones are reused across
	// messages. Zero value: DefaultPoolSize.
	PoolSize int
	// Timeout bounds dialling and each SMTP exchange. Zero value:
	// DefaultSMTPTimeout.
	Timeout time.Duration
	// IdleTimeout closes a pooled connection unused this long (relays drop
	// idle clients, RFC 5321 4.5.3.2.7). Zero value: DefaultIdleTimeout.
	IdleTimeout time.Duration
	// MaxPerConn transactions (a refused message counts) are run on one
	// connection before it is replaced. Zero value: DefaultMaxPerConn.
	MaxPerConn int
	// Now is the clock for idle ages. Zero value: time.Now.
	Now func() time.Time
}

// isLoopback reports whether host names the local machine.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// NewSMTP validates cfg and returns the transport. It does not connect.
func NewSMTP(cfg SMTPConfig) (*SMTP, error) {
	host, portStr, err := net.SplitHostPort(cfg.Addr)
	if err != nil || host == "" {
		return nil, fmt.Errorf("mailer: SMTPConfig.Addr %q is not host:port", cfg.Addr)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 1 || port > 65535 {
		return nil, fmt.Errorf("mailer: SMTPConfig.Addr %q has a bad port", cfg.Addr)
	}
	if cfg.PoolSize < 0 || cfg.Timeout < 0 || cfg.IdleTimeout < 0 || cfg.MaxPerConn < 0 {
		return nil, errors.New("mailer: SMTPConfig sizes and durations must not be negative")
	}
	s := &SMTP{timeout: cfg.Timeout, idleTimeout: cfg.IdleTimeout, maxPerConn: cfg.MaxPerConn, now: cfg.Now}
	if s.now == nil {
		s.now = time.Now
	}
	if s.timeout == 0 {
		s.timeout = DefaultSMTPTimeout
	}
	if s.idleTimeout == 0 {
		s.idleTimeout = DefaultIdleTimeout
	}
	if s.maxPerConn == 0 {
		s.maxPerConn = DefaultMaxPerConn
	}
	s.slots = make(chan struct{}, cmp.Or(cfg.PoolSize, DefaultPoolSize))

	opts := []mail.Option{mail.WithPort(port), mail.WithTimeout(s.timeout)}
	mode := cfg.TLS
	if mode == TLSAuto {
		mode = TLSStartTLS
		if isLoopback(host) {
			mode = TLSNone
		}
	}
	switch mode {
	case TLSNone:
		if !isLoopback(host) {
			return nil, fmt.Errorf("mailer: SMTP TLS mode none is only allowed for a loopback relay, not %s", host)
		}
		opts = append(opts, mail.WithTLSPolicy(mail.NoTLS))
	case TLSStartTLS:
		opts = append(opts, mail.WithTLSPolicy(mail.TLSMandatory))
	case TLSImplicit:
		opts = append(opts, mail.WithSSL())
	default:
		return nil, fmt.Errorf("mailer: SMTPConfig.TLS %q (want none, starttls or tls)", cfg.TLS)
	}
	tc := cfg.TLSConfig
	if tc == nil {
		tc = &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	}
	opts = append(opts, mail.WithTLSConfig(tc))
	if cfg.Username != "" || cfg.Password != "" {
		auth := mail.SMTPAuthPlain
		switch cfg.Auth {
		case "", "plain", "PLAIN":
		case "login", "LOGIN":
			auth = mail.SMTPAuthLogin
		default:
			return nil, fmt.Errorf("mailer: SMTPConfig.Auth %q (want plain or login)", cfg.Auth)
		}
		opts = append(opts, mail.WithSMTPAuth(auth), mail.WithUsername(cfg.Username), mail.WithPassword(cfg.Password))
	}
	if cfg.HELO != "" {
		opts = append(opts, mail.WithHELO(cfg.HELO))
	}
	c, err := mail.NewClient(host, opts...)
	if err != nil {
		// go-mail's option errors never contain the password.
		return nil, fmt.Errorf("mailer: SMTP client: %w", err)
	}
	s.client = c
	return s, nil
}
