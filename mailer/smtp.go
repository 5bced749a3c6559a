package mailer

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/textproto"
	"strconv"
	"strings"
	"sync"
	"time"

	mail "github.com/wneessen/go-mail"
	"github.com/wneessen/go-mail/smtp"
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
	// PoolSize caps concurrent connections; idle ones are reused across
	// messages. Zero value: DefaultPoolSize.
	PoolSize int
	// Timeout bounds dialling and each SMTP exchange. Zero value:
	// DefaultSMTPTimeout.
	Timeout time.Duration
	// IdleTimeout closes a pooled connection unused this long (relays drop
	// idle clients, RFC 5321 4.5.3.2.7). Zero value: DefaultIdleTimeout.
	IdleTimeout time.Duration
	// MaxPerConn messages are sent on one connection before it is
	// replaced. Zero value: DefaultMaxPerConn.
	MaxPerConn int
	// Now is the clock for idle ages. Zero value: time.Now.
	Now func() time.Time
}

// SMTP is a Transport to one relay through a go-mail Client, keeping a
// small pool of authenticated connections: each message is one MAIL, RCPT,
// DATA exchange on a warm connection instead of connect, EHLO, STARTTLS and
// AUTH every time. A pooled connection that turns out to be dead before
// DATA is replaced and the message retried once on a fresh connection.
type SMTP struct {
	client               *mail.Client
	timeout, idleTimeout time.Duration
	maxPerConn           int
	slots                chan struct{}
	now                  func() time.Time

	mu     sync.Mutex
	idle   []*pooledConn
	closed bool
}

type pooledConn struct {
	c    *smtp.Client
	used time.Time
	sent int
	// pipelining is set when the relay advertised PIPELINING (RFC 2920);
	// mailParams are the MAIL FROM parameters go-mail's Client.Mail would
	// add for this relay's extensions.
	pipelining bool
	mailParams string
}

// newPooledConn records what the relay advertised in its EHLO reply.
func newPooledConn(c *smtp.Client, now time.Time) *pooledConn {
	pc := &pooledConn{c: c, used: now}
	pc.pipelining, _ = c.Extension("PIPELINING")
	// As go-mail's Client.Mail: BODY=8BITMIME and SMTPUTF8 when offered
	// (the Mailer sets neither SkipSMTPUTF8 nor DSN options).
	if ok, _ := c.Extension("8BITMIME"); ok {
		pc.mailParams += " BODY=8BITMIME"
	}
	if ok, _ := c.Extension("SMTPUTF8"); ok {
		pc.mailParams += " SMTPUTF8"
	}
	return pc
}

var _ Transport = (*SMTP)(nil)

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
	size := cfg.PoolSize
	if size == 0 {
		size = DefaultPoolSize
	}
	s.slots = make(chan struct{}, size)

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

// get returns a pooled connection or dials a new one.
func (s *SMTP) get(ctx context.Context) (pc *pooledConn, reused bool, err error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, false, errors.New("mailer: SMTP transport is closed")
	}
	now := s.now()
	for len(s.idle) > 0 {
		pc = s.idle[len(s.idle)-1]
		s.idle = s.idle[:len(s.idle)-1]
		if now.Sub(pc.used) < s.idleTimeout {
			s.mu.Unlock()
			return pc, true, nil
		}
		_ = pc.c.Close() // stale: drop without a QUIT round trip
	}
	s.mu.Unlock()
	c, err := s.client.DialToSMTPClientWithContext(ctx)
	if err != nil {
		return nil, false, err
	}
	return newPooledConn(c, now), false, nil
}

// put returns a healthy connection to the pool.
func (s *SMTP) put(pc *pooledConn) {
	pc.used = s.now()
	s.mu.Lock()
	if s.closed || pc.sent >= s.maxPerConn || len(s.idle) >= cap(s.slots) {
		s.mu.Unlock()
		_ = pc.c.Quit()
		return
	}
	s.idle = append(s.idle, pc)
	s.mu.Unlock()
}

// Send implements Transport.
func (s *SMTP) Send(ctx context.Context, env Envelope, raw []byte) error {
	select {
	case s.slots <- struct{}{}:
	case <-ctx.Done():
		return classify("dial", ctx.Err())
	}
	defer func() { <-s.slots }()
	for attempt := 0; ; attempt++ {
		pc, reused, err := s.get(ctx)
		if err != nil {
			// Connection-time refusals (greeting, STARTTLS, AUTH 535) are
			// configuration or relay problems, not verdicts on this
			// message: keep it queued (MaxAge bounds the wait).
			d := classify("dial", err)
			d.temporary = true
			return d
		}
		op, err := s.transact(ctx, pc, env, raw)
		if err == nil {
			pc.sent++
			s.put(pc)
			return nil
		}
		var reply *textproto.Error
		if errors.As(err, &reply) && op != "data-end" {
			// The relay answered: the connection is in sync. Abort the
			// transaction (RFC 5321 4.1.1.5) and keep the connection.
			if pc.c.Reset() == nil {
				s.put(pc)
			} else {
				pc.c.Close()
			}
			return classify(op, err)
		}
		pc.c.Close()
		if reused && attempt == 0 && (op == "mail" || op == "rcpt") {
			// A pooled connection the relay had already dropped; nothing
			// was committed, so try once on a fresh one.
			continue
		}
		return classify(op, err)
	}
}

// transact runs one MAIL/RCPT/DATA exchange and names the failing step.
func (s *SMTP) transact(ctx context.Context, pc *pooledConn, env Envelope, raw []byte) (string, error) {
	c := pc.c
	timeout := s.timeout
	if dl, ok := ctx.Deadline(); ok {
		timeout = min(timeout, time.Until(dl))
	}
	if err := c.UpdateDeadline(timeout); err != nil {
		return "mail", err
	}
	if pc.pipelining {
		return pipelined(pc, env, raw)
	}
	if err := c.Mail("<" + env.From + ">"); err != nil {
		return "mail", err
	}
	for _, to := range env.To {
		if err := c.Rcpt("<" + to + ">"); err != nil {
			return "rcpt", err
		}
	}
	w, err := c.Data()
	if err != nil {
		return "data", err
	}
	if _, err := w.Write(raw); err != nil {
		w.Close()
		return "write", err
	}
	// After the final dot the relay decides; a lost reply here leaves the
	// outcome unknown (see outbox's note on the one duplicate window).
	if err := w.Close(); err != nil {
		var reply *textproto.Error
		if errors.As(err, &reply) {
			return "data", err
		}
		return "data-end", err
	}
	return "", nil
}

// pipelined is transact for a relay that offers PIPELINING (RFC 2920):
// MAIL, RCPT and DATA go out in one write and their replies are read
// afterwards, in order; the message and its final dot are a second write.
// On loopback, where a relay's reply costs no round trip, this halves the
// writes per message. DATA joins the group only with a single recipient:
// a refused RCPT then leaves no recipient, so the relay must refuse DATA
// (RFC 2920 3.1) and the connection stays in sync. With several
// recipients DATA waits for every RCPT reply, so one refusal fails the
// message as a whole before any content is sent, as in transact.
func pipelined(pc *pooledConn, env Envelope, raw []byte) (string, error) {
	// go-mail's Client.Mail and Client.Rcpt refuse these before writing.
	if strings.ContainsAny(env.From, "\r\n") {
		return "mail", errors.New("smtp: A line must not contain CR or LF")
	}
	for _, to := range env.To {
		if strings.ContainsAny(to, "\r\n") {
			return "rcpt", errors.New("smtp: A line must not contain CR or LF")
		}
	}
	t := pc.c.Text
	w := t.W
	w.WriteString("MAIL FROM:<")
	w.WriteString(env.From)
	w.WriteString(">")
	w.WriteString(pc.mailParams)
	w.WriteString("\r\n")
	for _, to := range env.To {
		w.WriteString("RCPT TO:<")
		w.WriteString(to)
		w.WriteString(">\r\n")
	}
	withData := len(env.To) == 1
	if withData {
		w.WriteString("DATA\r\n")
	}
	if err := w.Flush(); err != nil {
		return "mail", err
	}
	// Every reply is read, even after a refusal, so that the connection
	// stays in sync; the first failure is the one reported.
	var op string
	var first error
	fail := func(o string, err error) {
		if first == nil {
			op, first = o, err
		}
	}
	if _, _, err := t.ReadResponse(250); err != nil {
		if !isReply(err) {
			return "mail", err
		}
		fail("mail", err)
	}
	for range env.To {
		if _, _, err := t.ReadResponse(25); err != nil {
			if !isReply(err) {
				return "rcpt", err
			}
			fail("rcpt", err)
		}
	}
	if !withData {
		if first != nil {
			return op, first
		}
		if _, err := w.WriteString("DATA\r\n"); err != nil {
			return "data", err
		}
		if err := w.Flush(); err != nil {
			return "data", err
		}
		if _, _, err := t.ReadResponse(354); err != nil {
			return "data", err
		}
	} else {
		_, _, err := t.ReadResponse(354)
		if err != nil && !isReply(err) {
			return "data", err
		}
		if first != nil {
			if err == nil {
				// A relay that accepted DATA after refusing MAIL or the
				// only RCPT: the transaction cannot be aborted in sync,
				// so the connection is dropped and nothing is sent.
				_ = pc.c.Close()
			}
			return op, first
		}
		if err != nil {
			return "data", err
		}
	}
	if err := writeDot(w, raw); err != nil {
		return "write", err
	}
	// After the final dot the relay decides; a lost reply here leaves the
	// outcome unknown (see outbox's note on the one duplicate window).
	if _, _, err := t.ReadResponse(250); err != nil {
		if isReply(err) {
			return "data", err
		}
		return "data-end", err
	}
	return "", nil
}

// States of writeDot, as in net/textproto's dotWriter.
const (
	dotBegin = iota
	dotBeginLine
	dotData
	dotCR
)

// writeDot writes raw as DATA content followed by the final dot and
// flushes: exactly the bytes net/textproto's DotWriter would write (a
// leading "." doubled, RFC 5321 4.5.2; a bare LF sent as CRLF; a final CRLF
// added when missing), but in runs between line ends instead of one
// WriteByte per byte.
func writeDot(w *bufio.Writer, raw []byte) error {
	state := dotBegin
	for len(raw) > 0 {
		switch state {
		case dotBegin, dotBeginLine:
			if raw[0] == '.' {
				w.WriteByte('.')
			}
		case dotCR:
			state = dotData
			if raw[0] == '\n' {
				state = dotBeginLine
			}
			w.WriteByte(raw[0])
			raw = raw[1:]
			continue
		}
		state = dotData
		// The next CR or LF: two IndexByte scans of a line are cheaper
		// than one IndexAny.
		i := bytes.IndexByte(raw, '\n')
		line := raw
		if i >= 0 {
			line = raw[:i]
		}
		if j := bytes.IndexByte(line, '\r'); j >= 0 {
			i = j
		}
		if i < 0 {
			w.Write(raw)
			break
		}
		w.Write(raw[:i])
		if raw[i] == '\r' {
			state = dotCR
		} else {
			w.WriteByte('\r')
			state = dotBeginLine
		}
		w.WriteByte(raw[i])
		raw = raw[i+1:]
	}
	switch state {
	case dotBegin, dotData:
		w.WriteString("\r\n.\r\n")
	case dotCR:
		w.WriteString("\n.\r\n")
	case dotBeginLine:
		w.WriteString(".\r\n")
	}
	return w.Flush()
}

// isReply reports whether err is an SMTP reply from the relay (4yz/5yz),
// as opposed to a network failure.
func isReply(err error) bool {
	var reply *textproto.Error
	return errors.As(err, &reply)
}

// Close quits every idle connection; connections in use are closed when
// their message is done.
func (s *SMTP) Close() error {
	s.mu.Lock()
	idle := s.idle
	s.idle, s.closed = nil, true
	s.mu.Unlock()
	for _, pc := range idle {
		_ = pc.c.Quit()
	}
	return nil
}
