package attack

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-smtp"
)

// MaxSinkMessage bounds one message the sink accepts; the service's
// messages are a few KiB, so anything near this is itself suspicious.
const MaxSinkMessage = 1 << 20

// Received is one message as the sink saw it: the envelope and the raw
// DATA, byte for byte.
type Received struct {
	MailFrom string
	RcptTo   []string
	Data     []byte
	At       time.Time
}

// Sink is a loopback SMTP server that keeps every message it accepts. It
// can be told to answer 451 (temporary failure, RFC 5321 4.2.2) to every
// transaction while TempFail is set, to test the outbox's retries.
type Sink struct {
	Addr string // 127.0.0.1:PORT

	srv      *smtp.Server
	ln       net.Listener
	tempFail atomic.Bool
	refused  atomic.Int64 // transactions answered 451

	mu   sync.Mutex
	msgs []Received
	wake chan struct{}
}

// StartSink listens on a free loopback port and serves until Close.
func StartSink() (*Sink, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("attack: sink: %w", err)
	}
	s := &Sink{Addr: ln.Addr().String(), ln: ln, wake: make(chan struct{})}
	srv := smtp.NewServer(s)
	srv.Domain = "sink.test"
	srv.ReadTimeout = 30 * time.Second
	srv.WriteTimeout = 30 * time.Second
	srv.MaxMessageBytes = MaxSinkMessage
	srv.MaxRecipients = 100
	// Connections the service drops when it is killed are expected.
	srv.ErrorLog = log.New(io.Discard, "", 0)
	s.srv = srv
	go func() { _ = srv.Serve(ln) }()
	return s, nil
}

// Close stops the server.
func (s *Sink) Close() error { return s.srv.Close() }

// SetTempFail makes every transaction fail with 451 (true) or succeed.
func (s *Sink) SetTempFail(on bool) { s.tempFail.Store(on) }

// Refused is how many transactions were answered 451.
func (s *Sink) Refused() int64 { return s.refused.Load() }

// Messages returns a copy of what was received so far.
func (s *Sink) Messages() []Received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Received(nil), s.msgs...)
}

// Len is the number of messages received so far.
func (s *Sink) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.msgs)
}

// WaitQuiet waits until at least want messages arrived and then no new
// message arrived for quiet, or until timeout. It reports whether want
// was reached. It waits on arrivals, not on a fixed sleep.
func (s *Sink) WaitQuiet(want int, quiet, timeout time.Duration) bool {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		n, wake := len(s.msgs), s.wake
		s.mu.Unlock()
		t := time.NewTimer(quiet)
		select {
		case <-wake:
			t.Stop()
			continue
		case <-t.C:
			if n >= want {
				return true
			}
		case <-deadline.C:
			t.Stop()
			return n >= want
		}
	}
}

// NewSession implements smtp.Backend.
func (s *Sink) NewSession(*smtp.Conn) (smtp.Session, error) { return &sinkSession{s: s}, nil }

type sinkSession struct {
	s    *Sink
	from string
	to   []string
}

var errTempFail = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "sink: try again later"}

func (x *sinkSession) Reset()        { x.from, x.to = "", nil }
func (x *sinkSession) Logout() error { return nil }

func (x *sinkSession) Mail(from string, _ *smtp.MailOptions) error {
	if x.s.tempFail.Load() {
		x.s.refused.Add(1)
		return errTempFail
	}
	x.from = from
	return nil
}

func (x *sinkSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	x.to = append(x.to, to)
	return nil
}

func (x *sinkSession) Data(r io.Reader) error {
	var b bytes.Buffer
	if _, err := io.Copy(&b, io.LimitReader(r, MaxSinkMessage+1)); err != nil {
		return err
	}
	if b.Len() > MaxSinkMessage {
		return errors.New("sink: message too large")
	}
	if x.s.tempFail.Load() {
		x.s.refused.Add(1)
		return errTempFail
	}
	x.s.mu.Lock()
	x.s.msgs = append(x.s.msgs, Received{MailFrom: x.from, RcptTo: append([]string(nil), x.to...), Data: b.Bytes(), At: time.Now()})
	close(x.s.wake)
	x.s.wake = make(chan struct{})
	x.s.mu.Unlock()
	return nil
}
