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
	// PoolSize caps open connections; idle ones are reused across
	// messages, and with PIPELINING several Send calls share one (see
	// SMTP). Zero value: DefaultPoolSize.
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

// SMTP is a Transport to one relay through a go-mail Client, keeping a
// small pool of authenticated connections: each message is one MAIL, RCPT,
// DATA exchange on a warm connection instead of connect, EHLO, STARTTLS and
// AUTH every time.
//
// Send hands its message to a connection as a job. A connection in use has
// one goroutine (serve) that runs its conversation and a short queue of
// jobs waiting for it. With a relay that offers PIPELINING (RFC 2920),
// messages from different Send calls are chained on one connection: the
// write that carries one message's content and final dot also carries the
// next queued message's MAIL, RCPT and DATA (RFC 2920 3.1 lets the content
// start a group), so in steady state a message costs one round trip and
// one write instead of two. A pooled connection that turns out to be dead
// before a message's content was sent is replaced and the message retried
// once on a fresh connection; jobs queued on it and not yet written go to
// another connection.
type SMTP struct {
	client               *mail.Client
	timeout, idleTimeout time.Duration
	maxPerConn, size     int
	now                  func() time.Time

	mu     sync.Mutex
	idle   []*pooledConn // no goroutine; most recently used last
	active []*pooledConn // a goroutine runs serve for each (dialling too)
	closed bool
}

type pooledConn struct {
	c    *smtp.Client // nil while dialling
	used time.Time    // when it went idle (IdleTimeout)
	// sent counts the transactions started on the connection (MaxPerConn);
	// queue holds the jobs handed to it whose commands are not written
	// yet, in order. Both under SMTP.mu.
	sent  int
	queue []*job
	// pipelining is set when the relay advertised PIPELINING (RFC 2920);
	// mailParams are the MAIL FROM parameters go-mail's Client.Mail would
	// add for this relay's extensions.
	pipelining bool
	mailParams string
}

// job is one Send: waiting in a connection's queue, then in a transaction.
type job struct {
	ctx context.Context
	env Envelope
	raw []byte
	// res receives the outcome, exactly once (capacity 1, so the serving
	// goroutine never blocks on a Send that has gone).
	res chan error
	// pc is the connection whose queue holds the job; nil once a serving
	// goroutine took it (under SMTP.mu).
	pc *pooledConn
	// reused: its commands went out on a connection that had carried a
	// transaction before. retried: it already had its one retry after a
	// dead connection.
	reused, retried bool
}

// init records what the relay advertised in its EHLO reply. Under SMTP.mu:
// dispatch reads pipelining.
func (pc *pooledConn) init(c *smtp.Client) {
	pc.c = c
	pc.pipelining, _ = c.Extension("PIPELINING")
	// As go-mail's Client.Mail: BODY=8BITMIME and SMTPUTF8 when offered
	// (the Mailer sets neither SkipSMTPUTF8 nor DSN options).
	if ok, _ := c.Extension("8BITMIME"); ok {
		pc.mailParams += " BODY=8BITMIME"
	}
	if ok, _ := c.Extension("SMTPUTF8"); ok {
		pc.mailParams += " SMTPUTF8"
	}
}

// push appends j to pc's queue. Under SMTP.mu.
func (pc *pooledConn) push(j *job) {
	pc.queue = append(pc.queue, j)
	j.pc = pc
}

// remove takes j, whose Send gave up, out of pc's queue. Under SMTP.mu.
func (pc *pooledConn) remove(j *job) {
	for i, q := range pc.queue {
		if q == j {
			pc.queue = append(pc.queue[:i], pc.queue[i+1:]...)
			break
		}
	}
	j.pc = nil
}

// takeQueue empties pc's queue and returns what it held. Under SMTP.mu.
func (pc *pooledConn) takeQueue() []*job {
	q := pc.queue
	pc.queue = nil
	for _, j := range q {
		j.pc = nil
	}
	return q
}

// quit ends a connection politely, or closes it when the relay does not
// answer QUIT (go-mail's Quit leaves the socket open then).
func (pc *pooledConn) quit() {
	if pc.c.Quit() != nil {
		_ = pc.c.Close()
	}
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
	s.size = cfg.PoolSize
	if s.size == 0 {
		s.size = DefaultPoolSize
	}

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

// dialError is a failure to get a connection. Connection-time refusals
// (greeting, STARTTLS, AUTH 535) are configuration or relay problems, not
// verdicts on a message: keep it queued (MaxAge bounds the wait).
func dialError(err error) error {
	d := classify("dial", err)
	d.temporary = true
	return d
}

func errClosed() error { return dialError(errors.New("mailer: SMTP transport is closed")) }

// Send implements Transport.
func (s *SMTP) Send(ctx context.Context, env Envelope, raw []byte) error {
	if err := ctx.Err(); err != nil {
		return classify("dial", err)
	}
	j := &job{ctx: ctx, env: env, raw: raw, res: make(chan error, 1)}
	if err := s.dispatch(j, false); err != nil {
		return err
	}
	select {
	case err := <-j.res:
		return err
	case <-ctx.Done():
	}
	s.mu.Lock()
	if pc := j.pc; pc != nil {
		// Still waiting: nothing of it was written.
		pc.remove(j)
		s.mu.Unlock()
		return classify("dial", ctx.Err())
	}
	s.mu.Unlock()
	// Its commands are written, so it runs to completion under Timeout
	// (or, between two connections, the next one's take fails it).
	return <-j.res
}

// dispatch hands j to a connection. In order of preference:
//
//  1. behind a busy PIPELINING connection that has no job waiting yet:
//     j's commands ride on the write of the current message's content
//     (unless that has gone out already), so j costs one round trip, and
//     no new connection is needed;
//  2. an idle connection (not for fresh: a job moved off a connection that
//     died, where idle ones are suspect too);
//  3. a new connection, while fewer than PoolSize are open;
//  4. the shortest queue.
//
// So a new connection is dialled only when every connection in use
// already has a job waiting, and messages are chained most of the time
// even when many goroutines send at once.
func (s *SMTP) dispatch(j *job, fresh bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errClosed()
	}
	for _, pc := range s.active {
		if len(pc.queue) == 0 && pc.pipelining && pc.sent < s.maxPerConn {
			pc.push(j)
			return nil
		}
	}
	if !fresh {
		now := s.now()
		for len(s.idle) > 0 {
			pc := s.idle[len(s.idle)-1]
			s.idle = s.idle[:len(s.idle)-1]
			if now.Sub(pc.used) < s.idleTimeout {
				s.start(pc, j)
				return nil
			}
			_ = pc.c.Close() // stale: drop without a QUIT round trip
		}
	} else if len(s.idle) > 0 && len(s.active)+len(s.idle) >= s.size {
		// Room for a fresh connection: drop the least recently used idle
		// one, the likeliest to be dead as well.
		_ = s.idle[0].c.Close()
		s.idle = append(s.idle[:0], s.idle[1:]...)
	}
	if len(s.active)+len(s.idle) < s.size {
		s.start(&pooledConn{}, j)
		return nil
	}
	best := s.active[0]
	for _, pc := range s.active[1:] {
		if len(pc.queue) < len(best.queue) {
			best = pc
		}
	}
	best.push(j)
	return nil
}

// start gives pc its first job and a serving goroutine. Under s.mu.
func (s *SMTP) start(pc *pooledConn, j *job) {
	pc.push(j)
	s.active = append(s.active, pc)
	go s.serve(pc)
}

// requeue dispatches a job again after its connection failed or was
// retired; one whose Send has given up is not worth a new connection.
func (s *SMTP) requeue(j *job, fresh bool) {
	if err := j.ctx.Err(); err != nil {
		j.res <- classify("dial", err)
		return
	}
	if err := s.dispatch(j, fresh); err != nil {
		j.res <- err
	}
}

// removeActive takes pc off the active list. Under s.mu.
func (s *SMTP) removeActive(pc *pooledConn) {
	for i, a := range s.active {
		if a == pc {
			last := len(s.active) - 1
			s.active[i] = s.active[last]
			s.active[last] = nil
			s.active = s.active[:last]
			return
		}
	}
}

// serve runs pc's conversation, dialling first for a new connection, until
// its queue is empty.
func (s *SMTP) serve(pc *pooledConn) {
	if pc.c == nil && !s.dial(pc) {
		return
	}
	if pc.pipelining {
		s.serveChained(pc)
	} else {
		s.serveSerial(pc)
	}
}

// dial connects pc. The connection is for whichever jobs queue on it, so a
// job's ctx ending takes that job out of the queue but does not abort the
// dial (go-mail bounds it by Timeout). If it fails, every job waiting for
// it fails with the dial error: nothing was sent, and each would otherwise
// wait for a dial of its own to the same relay.
func (s *SMTP) dial(pc *pooledConn) bool {
	c, err := s.client.DialToSMTPClientWithContext(context.Background())
	s.mu.Lock()
	if err == nil {
		pc.init(c)
		s.mu.Unlock()
		return true
	}
	s.removeActive(pc)
	q := pc.takeQueue()
	s.mu.Unlock()
	for _, j := range q {
		j.res <- dialError(err)
	}
	return false
}

// take pops the first job of pc's queue that may start on it and counts
// it against MaxPerConn; nil if there is none or MaxPerConn is reached.
// Jobs whose ctx has ended or whose envelope cannot be sent fail here,
// before anything of them is written. Under s.mu.
func (s *SMTP) take(pc *pooledConn) *job {
	for len(pc.queue) > 0 && pc.sent < s.maxPerConn {
		j := pc.queue[0]
		pc.queue[0] = nil
		pc.queue = pc.queue[1:]
		j.pc = nil
		if err := j.ctx.Err(); err != nil {
			j.res <- classify("dial", err)
			continue
		}
		if op, err := checkEnvelope(j.env); err != nil {
			j.res <- classify(op, err)
			continue
		}
		j.reused = pc.sent > 0
		pc.sent++
		return j
	}
	return nil
}

// next sends done's outcome (if done is set) and returns the next job to
// start on pc. With none, pc leaves the active list before done's Send
// returns (so a caller that sends again finds it idle, not busy): back to
// the idle list, or quit when MaxPerConn is reached or the transport is
// closed; jobs left in the queue then go to another connection.
func (s *SMTP) next(pc *pooledConn, done *job, err error) *job {
	var rest []*job
	s.mu.Lock()
	j := s.take(pc)
	keep := true
	if j == nil {
		s.removeActive(pc)
		rest = pc.takeQueue()
		keep = !s.closed && pc.sent < s.maxPerConn
		if keep {
			pc.used = s.now()
			s.idle = append(s.idle, pc)
		}
	}
	s.mu.Unlock()
	if done != nil {
		done.res <- err
	}
	if !keep {
		pc.quit()
	}
	for _, r := range rest {
		s.requeue(r, false)
	}
	return j
}

// lost drops pc after a network error (or a reply that leaves it out of
// sync). j, if set, is the job whose outcome the error decides: it fails
// with op, except that MAIL or RCPT that went out on a reused connection
// means the relay had dropped it and nothing was committed, so j is
// retried once on a fresh connection. Jobs still queued on pc had nothing
// written and go to another connection.
func (s *SMTP) lost(pc *pooledConn, j *job, op string, err error) {
	_ = pc.c.Close()
	s.mu.Lock()
	s.removeActive(pc)
	rest := pc.takeQueue()
	s.mu.Unlock()
	if j != nil {
		if j.reused && !j.retried && (op == "mail" || op == "rcpt") {
			j.retried = true
			s.requeue(j, true)
		} else {
			j.res <- classify(op, err)
		}
	}
	for _, r := range rest {
		s.requeue(r, true)
	}
}

// deadline bounds j's exchanges by Timeout, or by j's ctx deadline if that
// is sooner.
func (s *SMTP) deadline(pc *pooledConn, j *job) error {
	timeout := s.timeout
	if dl, ok := j.ctx.Deadline(); ok {
		timeout = min(timeout, time.Until(dl))
	}
	return pc.c.UpdateDeadline(timeout)
}

// serveSerial runs pc's jobs one at a time, in lock step: the relay does
// not offer PIPELINING.
func (s *SMTP) serveSerial(pc *pooledConn) {
	var done *job
	var res error
	for {
		j := s.next(pc, done, res)
		if j == nil {
			return
		}
		op, err := s.transact(pc, j)
		if err != nil && !isReply(err) {
			s.lost(pc, j, op, err)
			return
		}
		done, res = j, nil
		if err != nil {
			res = classify(op, err)
			// The relay answered: the connection is in sync. Abort the
			// transaction (RFC 5321 4.1.1.5) and keep the connection.
			if pc.c.Reset() != nil {
				j.res <- res
				s.lost(pc, nil, "", nil)
				return
			}
		}
	}
}

// serveChained runs pc's jobs on a PIPELINING relay (RFC 2920). A job's
// MAIL, RCPT and DATA go out in one write, either alone or after the
// previous job's content and final dot; their replies are read in order;
// then its content and final dot go out together with the next queued
// job's commands, and the reply to the dot is followed by that job's
// replies. Every reply is read, so the connection stays in sync.
func (s *SMTP) serveChained(pc *pooledConn) {
	t := pc.c.Text
	w := t.W
	var cur *job     // the job in progress
	written := false // cur's commands went out with the previous content
	var done *job    // the last job, whose outcome next sends
	var res error
	for {
		if !written {
			if cur = s.next(pc, done, res); cur == nil {
				return
			}
			if err := s.deadline(pc, cur); err != nil {
				s.lost(pc, cur, "mail", err)
				return
			}
			writeCommands(w, pc.mailParams, cur.env)
			if err := w.Flush(); err != nil {
				s.lost(pc, cur, "mail", err)
				return
			}
		} else if err := s.deadline(pc, cur); err != nil {
			s.lost(pc, cur, "mail", err)
			return
		}
		done, written = cur, false
		op, open, err := readCommands(t, cur.env)
		if err != nil {
			if !isReply(err) {
				s.lost(pc, cur, op, err)
				return
			}
			res = classify(op, err)
			// The relay answered: abort the transaction (RFC 5321
			// 4.1.1.5) and keep the connection. A relay that accepted
			// DATA after refusing MAIL or the only RCPT cannot be
			// aborted in sync: the connection is dropped with nothing
			// sent.
			if open || pc.c.Reset() != nil {
				cur.res <- res
				s.lost(pc, nil, "", nil)
				return
			}
			continue
		}
		next := s.chain(pc)
		writeContent(w, cur.raw)
		if next != nil {
			writeCommands(w, pc.mailParams, next.env)
		}
		if err := w.Flush(); err != nil {
			// Part of the content may have gone out: not retried, as
			// before chaining. next's commands may have too, on a
			// connection that had carried cur: it gets its one retry.
			cur.res <- classify("write", err)
			s.lost(pc, next, "mail", err)
			return
		}
		// After the final dot the relay decides; a lost reply here leaves
		// the outcome unknown (see outbox's note on the one duplicate
		// window): cur is never resent. The transaction is over either
		// way (RFC 5321 4.1.1.4), so next's MAIL needs no RSET first.
		_, _, err = t.ReadResponse(250)
		if err != nil && !isReply(err) {
			cur.res <- classify("data-end", err)
			s.lost(pc, next, "mail", err)
			return
		}
		res = nil
		if err != nil {
			res = classify("data", err)
		}
		if next != nil {
			cur.res <- res
			cur, done, written = next, nil, true
		}
	}
}

// chain takes the job whose commands follow pc's current content, if one
// is waiting.
func (s *SMTP) chain(pc *pooledConn) *job {
	s.mu.Lock()
	j := s.take(pc)
	s.mu.Unlock()
	return j
}

// checkEnvelope refuses what go-mail's Client.Mail and Client.Rcpt refuse
// before writing: a command line must not be split.
func checkEnvelope(env Envelope) (string, error) {
	if strings.ContainsAny(env.From, "\r\n") {
		return "mail", errors.New("smtp: A line must not contain CR or LF")
	}
	for _, to := range env.To {
		if strings.ContainsAny(to, "\r\n") {
			return "rcpt", errors.New("smtp: A line must not contain CR or LF")
		}
	}
	return "", nil
}

// transact runs one MAIL/RCPT/DATA exchange in lock step and names the
// failing step.
func (s *SMTP) transact(pc *pooledConn, j *job) (string, error) {
	c, env, raw := pc.c, j.env, j.raw
	if err := s.deadline(pc, j); err != nil {
		return "mail", err
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

// writeCommands buffers MAIL, RCPT and, with exactly one recipient, DATA
// for env; DATA must end a group (RFC 2920 3.1). DATA joins the group only
// with a single recipient: a refused RCPT then leaves no recipient, so the
// relay must refuse DATA and the connection stays in sync. With several
// recipients DATA waits for every RCPT reply (readCommands), so one
// refusal fails the message as a whole before any content is sent, as in
// transact.
func writeCommands(w *bufio.Writer, mailParams string, env Envelope) {
	w.WriteString("MAIL FROM:<")
	w.WriteString(env.From)
	w.WriteString(">")
	w.WriteString(mailParams)
	w.WriteString("\r\n")
	for _, to := range env.To {
		w.WriteString("RCPT TO:<")
		w.WriteString(to)
		w.WriteString(">\r\n")
	}
	if len(env.To) == 1 {
		w.WriteString("DATA\r\n")
	}
}

// readCommands reads the replies to what writeCommands wrote for env, in
// order, even after a refusal; the first failure is the one reported. With
// several recipients it then sends DATA and reads its reply. A nil error
// means the relay waits for the content. open reports a relay that
// accepted DATA although it refused MAIL or the only RCPT.
func readCommands(t *textproto.Conn, env Envelope) (op string, open bool, err error) {
	var first error
	fail := func(o string, err error) {
		if first == nil {
			op, first = o, err
		}
	}
	if _, _, err := t.ReadResponse(250); err != nil {
		if !isReply(err) {
			return "mail", false, err
		}
		fail("mail", err)
	}
	for range env.To {
		if _, _, err := t.ReadResponse(25); err != nil {
			if !isReply(err) {
				return "rcpt", false, err
			}
			fail("rcpt", err)
		}
	}
	if len(env.To) != 1 {
		if first != nil {
			return op, false, first
		}
		if _, err := t.W.WriteString("DATA\r\n"); err != nil {
			return "data", false, err
		}
		if err := t.W.Flush(); err != nil {
			return "data", false, err
		}
		if _, _, err := t.ReadResponse(354); err != nil {
			return "data", false, err
		}
		return "", false, nil
	}
	_, _, err = t.ReadResponse(354)
	if err != nil && !isReply(err) {
		return "data", false, err
	}
	if first != nil {
		return op, err == nil, first
	}
	if err != nil {
		return "data", false, err
	}
	return "", false, nil
}

// States of writeContent, as in net/textproto's dotWriter.
const (
	dotBegin = iota
	dotBeginLine
	dotData
	dotCR
)

// writeContent buffers raw as DATA content followed by the final dot:
// exactly the bytes net/textproto's DotWriter would write (a leading "."
// doubled, RFC 5321 4.5.2; a bare LF sent as CRLF; a final CRLF added when
// missing), but in runs between line ends instead of one WriteByte per
// byte. Write errors stay in w and surface at the next Flush.
func writeContent(w *bufio.Writer, raw []byte) {
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
}

// isReply reports whether err is an SMTP reply from the relay (4yz/5yz),
// as opposed to a network failure.
func isReply(err error) bool {
	var reply *textproto.Error
	return errors.As(err, &reply)
}

// Close quits every idle connection and fails the jobs still waiting in a
// queue (nothing of them was written) as Send after Close does;
// connections in use are quit when the transactions already written are
// done, and their goroutines end.
func (s *SMTP) Close() error {
	s.mu.Lock()
	idle := s.idle
	s.idle, s.closed = nil, true
	var queued []*job
	for _, pc := range s.active {
		queued = append(queued, pc.takeQueue()...)
	}
	s.mu.Unlock()
	for _, j := range queued {
		j.res <- errClosed()
	}
	for _, pc := range idle {
		pc.quit()
	}
	return nil
}
