package mailer

import (
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// received is one message as the loopback relay saw it.
type received struct {
	From string
	To   []string
	Data []byte
}

// sink is a real SMTP server (emersion/go-smtp) on a loopback port.
type sink struct {
	t     testing.TB
	srv   *smtp.Server
	ln    net.Listener
	Addr  string
	conns atomic.Int64

	mu   sync.Mutex
	msgs []received
	// reject, when set, decides each step's answer: stage is "mail",
	// "rcpt" or "data"; a non-nil *smtp.SMTPError is sent to the client.
	reject func(stage string, n int) error
	// auth, when set, requires AUTH with these credentials.
	user, pass string
	got        chan received
	// discard counts messages instead of keeping them (benchmarks).
	discard bool
	count   int
	stages  map[string]int // calls per stage, for reject
}

func newSink(tb testing.TB, addr string) *sink {
	tb.Helper()
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	s := &sink{t: tb, got: make(chan received, 1000)}
	s.srv = smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		s.conns.Add(1)
		return &session{s: s, conn: c.Conn()}, nil
	}))
	s.srv.Domain = "relay.test"
	s.srv.AllowInsecureAuth = true
	s.srv.ReadTimeout = 10 * time.Second
	s.srv.WriteTimeout = 10 * time.Second
	s.srv.MaxMessageBytes = 1 << 20
	s.srv.MaxRecipients = 50
	s.srv.ErrorLog = nopLog{}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		tb.Fatal(err)
	}
	s.ln, s.Addr = ln, ln.Addr().String()
	go s.srv.Serve(s.ln)
	tb.Cleanup(s.Close)
	return s
}

// errDropConn, returned by reject, makes the relay close the connection
// instead of replying.
var errDropConn = errors.New("sink: drop the connection")

// errKeepThenDrop, returned by reject at the "data" stage, makes the relay
// keep the message and then close the connection before replying: the
// client's view of a 250 lost on the wire.
var errKeepThenDrop = errors.New("sink: keep the message, then drop the connection")

type nopLog struct{}

func (nopLog) Printf(string, ...any) {}
func (nopLog) Println(...any)        {}

func (s *sink) Close() {
	s.ln.Close() // Serve may not have registered the listener yet
	s.srv.Close()
}

func (s *sink) messages() []received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]received(nil), s.msgs...)
}

// wait returns once n messages have arrived in total, or fails the test.
func (s *sink) wait(n int) []received {
	s.t.Helper()
	deadline := time.After(15 * time.Second)
	for {
		if m := s.messages(); len(m) >= n {
			return m
		}
		select {
		case <-s.got:
		case <-deadline:
			s.t.Fatalf("sink got %d messages, want %d", len(s.messages()), n)
		}
	}
}

type session struct {
	s      *sink
	conn   net.Conn
	authed bool
	from   string
	to     []string
}

func (ss *session) check(stage string) error {
	ss.s.mu.Lock()
	f := ss.s.reject
	if ss.s.stages == nil {
		ss.s.stages = map[string]int{}
	}
	ss.s.stages[stage]++
	n := ss.s.stages[stage]
	ss.s.mu.Unlock()
	if f == nil {
		return nil
	}
	err := f(stage, n)
	if err == errDropConn {
		ss.conn.Close()
	}
	return err
}

func (ss *session) AuthMechanisms() []string {
	if ss.s.user == "" {
		return nil
	}
	return []string{sasl.Plain, sasl.Login}
}

func (ss *session) Auth(mech string) (sasl.Server, error) {
	ok := func(user, pass string) error {
		if user != ss.s.user || pass != ss.s.pass {
			return errors.New("bad credentials")
		}
		ss.authed = true
		return nil
	}
	switch mech {
	case sasl.Plain:
		return sasl.NewPlainServer(func(identity, user, pass string) error { return ok(user, pass) }), nil
	case sasl.Login:
		return &loginServer{check: ok}, nil
	}
	return nil, errors.New("unsupported mechanism")
}

// loginServer is the server side of the (obsolete but common) LOGIN
// mechanism, which go-sasl only ships a client for.
type loginServer struct {
	check func(user, pass string) error
	step  int
	user  string
}

func (l *loginServer) Next(resp []byte) ([]byte, bool, error) {
	switch l.step {
	case 0:
		l.step++
		if len(resp) > 0 { // initial response carries the user name
			l.user = string(resp)
			l.step++
			return []byte("Password:"), false, nil
		}
		return []byte("Username:"), false, nil
	case 1:
		l.user = string(resp)
		l.step++
		return []byte("Password:"), false, nil
	default:
		return nil, true, l.check(l.user, string(resp))
	}
}

func (ss *session) Mail(from string, _ *smtp.MailOptions) error {
	if ss.s.user != "" && !ss.authed {
		return &smtp.SMTPError{Code: 530, Message: "authentication required"}
	}
	if err := ss.check("mail"); err != nil {
		return err
	}
	ss.from = from
	return nil
}

func (ss *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if err := ss.check("rcpt"); err != nil {
		return err
	}
	ss.to = append(ss.to, to)
	return nil
}

func (ss *session) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	keepThenDrop := false
	if err := ss.check("data"); err == errKeepThenDrop {
		keepThenDrop = true
	} else if err != nil {
		return err
	}
	m := received{From: ss.from, To: ss.to, Data: b}
	if keepThenDrop {
		defer ss.conn.Close()
	}
	ss.s.mu.Lock()
	if ss.s.discard {
		ss.s.count++
	} else {
		ss.s.msgs = append(ss.s.msgs, m)
	}
	ss.s.mu.Unlock()
	select {
	case ss.s.got <- m:
	default: // nobody waiting; wait() re-reads msgs
	}
	return nil
}

func (ss *session) Reset()        { ss.from, ss.to = "", nil }
func (ss *session) Logout() error { return nil }

func header(t testing.TB, raw []byte, name string) []string {
	t.Helper()
	h, err := readHeader(raw)
	if err != nil {
		t.Fatalf("reading header: %v\n%s", err, raw)
	}
	return h.Values(name)
}
