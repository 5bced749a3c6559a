package mailer

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"net/textproto"
	"strings"
	"sync"
	"time"

	mail "github.com/wneessen/go-mail"
	"github.com/wneessen/go-mail/smtp"
)

// SMTP is a Transport to one relay through a go-mail Client, keeping a
// small pool of authenticated connections: each message is one MAIL, RCPT,
// DATA exchange on a warm connection instead of connect, EHLO, STARTTLS and
// AUTH every time. With a relay that offers PIPELINING (RFC 2920), MAIL,
// RCPT and DATA go out in one write and the content with its final dot in
// a second. A pooled connection that turns out to be dead before a
// message's content was sent is replaced and the message retried once on a
// fresh connection.
type SMTP struct {
	client               *mail.Client
	timeout, idleTimeout time.Duration
	maxPerConn           int
	now                  func() time.Time
	slots                chan struct{} // one per connection in use (PoolSize)

	mu     sync.Mutex
	idle   []*pooledConn // most recently used last
	closed bool
}

type pooledConn struct {
	c    *smtp.Client
	used time.Time // when it went idle (IdleTimeout)
	sent int       // transactions started on it (MaxPerConn)
	// pipelining is set when the relay advertised PIPELINING; mailParams
	// are the MAIL FROM parameters go-mail's Client.Mail would add for
	// this relay's extensions (BODY=8BITMIME, SMTPUTF8).
	pipelining bool
	mailParams string
}

// outOfSync marks a refusal after which the relay accepted DATA anyway:
// the transaction cannot be aborted in step, so the connection is dropped.
type outOfSync struct{ error }

func (e outOfSync) Unwrap() error { return e.error }

var _ Transport = (*SMTP)(nil)

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
	if op, err := checkEnvelope(env); err != nil {
		return classify(op, err)
	}
	select {
	case s.slots <- struct{}{}:
	case <-ctx.Done():
		return classify("dial", ctx.Err())
	}
	defer func() { <-s.slots }()
	if err := ctx.Err(); err != nil {
		return classify("dial", err)
	}
	pc, err := s.get(false)
	if err != nil {
		return err
	}
	reused := pc.sent > 0
	op, err := s.transact(ctx, pc, env, raw)
	if err != nil && !isReply(err) {
		_ = pc.c.Close()
		if !reused || (op != "mail" && op != "rcpt") {
			return classify(op, err)
		}
		// MAIL or RCPT failed on a reused connection: the relay had
		// dropped it and nothing was committed. One retry, on a fresh one.
		if pc, err = s.get(true); err != nil {
			return err
		}
		if op, err = s.transact(ctx, pc, env, raw); err != nil && !isReply(err) {
			_ = pc.c.Close()
			return classify(op, err)
		}
	}
	if err != nil {
		// The relay answered: the connection is in sync. Abort the
		// transaction (RFC 5321 4.1.1.5) and keep the connection.
		if errors.As(err, new(outOfSync)) || pc.c.Reset() != nil {
			_ = pc.c.Close()
			return classify(op, err)
		}
		err = classify(op, err)
	}
	s.put(pc)
	return err
}

// get returns an idle connection that is not stale, or (fresh, or with
// none idle) a new one.
func (s *SMTP) get(fresh bool) (*pooledConn, error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, errClosed()
	}
	now := s.now()
	for !fresh && len(s.idle) > 0 {
		pc := s.idle[len(s.idle)-1]
		s.idle = s.idle[:len(s.idle)-1]
		if now.Sub(pc.used) < s.idleTimeout {
			s.mu.Unlock()
			return pc, nil
		}
		_ = pc.c.Close() // stale: drop without a QUIT round trip
	}
	s.mu.Unlock()
	// The dial is bounded by Timeout, not by the caller's ctx: go-mail's
	// dial honours its own timeout.
	c, err := s.client.DialToSMTPClientWithContext(context.Background())
	if err != nil {
		return nil, dialError(err)
	}
	pc := &pooledConn{c: c}
	pc.pipelining, _ = c.Extension("PIPELINING")
	if ok, _ := c.Extension("8BITMIME"); ok {
		pc.mailParams += " BODY=8BITMIME"
	}
	if ok, _ := c.Extension("SMTPUTF8"); ok {
		pc.mailParams += " SMTPUTF8"
	}
	return pc, nil
}

// put returns pc to the idle list, or quits it once MaxPerConn
// transactions ran on it or the transport is closed.
func (s *SMTP) put(pc *pooledConn) {
	s.mu.Lock()
	keep := !s.closed && pc.sent < s.maxPerConn
	if keep {
		pc.used = s.now()
		s.idle = append(s.idle, pc)
	}
	s.mu.Unlock()
	if !keep {
		pc.quit()
	}
}

// quit ends a connection politely, or closes it when the relay does not
// answer QUIT (go-mail's Quit leaves the socket open then).
func (pc *pooledConn) quit() {
	if pc.c.Quit() != nil {
		_ = pc.c.Close()
	}
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

// transact runs one MAIL/RCPT/DATA exchange in lock step, bounded by
// Timeout or by ctx's deadline if that is sooner, and names the failing
// step.
func (s *SMTP) transact(ctx context.Context, pc *pooledConn, env Envelope, raw []byte) (string, error) {
	pc.sent++
	timeout := s.timeout
	if dl, ok := ctx.Deadline(); ok {
		timeout = min(timeout, time.Until(dl))
	}
	c := pc.c
	if err := c.UpdateDeadline(timeout); err != nil {
		return "mail", err
	}
	if pc.pipelining {
		return pipelined(c.Text, pc.mailParams, env, raw)
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
		if isReply(err) {
			return "data", err
		}
		return "data-end", err
	}
	return "", nil
}

// pipelined runs one transaction on a PIPELINING relay: MAIL, RCPT and
// DATA in one write, their replies in order, then the content and final
// dot in a second write. Every reply is read, so the connection stays in
// step.
func pipelined(t *textproto.Conn, mailParams string, env Envelope, raw []byte) (string, error) {
	writeCommands(t.W, mailParams, env)
	if err := t.W.Flush(); err != nil {
		return "mail", err
	}
	if op, open, err := readCommands(t, env); err != nil {
		if open {
			return op, outOfSync{err}
		}
		return op, err
	}
	writeContent(t.W, raw)
	if err := t.W.Flush(); err != nil {
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

// Close quits every idle connection; connections in use are quit when
// their transaction is done.
func (s *SMTP) Close() error {
	s.mu.Lock()
	idle := s.idle
	s.idle, s.closed = nil, true
	s.mu.Unlock()
	for _, pc := range idle {
		pc.quit()
	}
	return nil
}
