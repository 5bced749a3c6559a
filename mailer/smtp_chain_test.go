package mailer

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

// chainRaw is message i of a chain test: its body names it, so that a
// delivery can be matched to its Send.
func chainRaw(i int) []byte {
	return fmt.Appendf(nil, "From: <no-reply@example.test>\r\nTo: r%d@x.example\r\nSubject: %d\r\n\r\n.body %d\r\n", i, i, i)
}

func chainEnv(i int) Envelope {
	return Envelope{From: "bounces@example.test", To: []string{fmt.Sprintf("r%d@x.example", i)}}
}

// checkDelivered fails the test unless the relay received exactly the
// messages in want (by index), once each, with their own envelope and body.
func checkDelivered(t *testing.T, got []received, want []int) {
	t.Helper()
	seen := map[string]int{}
	for _, m := range got {
		if len(m.To) != 1 || m.From != "bounces@example.test" {
			t.Fatalf("received envelope %s -> %v", m.From, m.To)
		}
		seen[m.To[0]]++
		var i int
		if _, err := fmt.Sscanf(m.To[0], "r%d@x.example", &i); err != nil {
			t.Fatalf("unexpected recipient %q", m.To[0])
		}
		// The relay removes the dot stuffing of the leading ".body".
		if want := string(chainRaw(i)); string(m.Data) != want {
			t.Fatalf("message for %s: got %q, want %q", m.To[0], m.Data, want)
		}
	}
	for _, i := range want {
		to := fmt.Sprintf("r%d@x.example", i)
		if seen[to] != 1 {
			t.Fatalf("message %d delivered %d times", i, seen[to])
		}
		delete(seen, to)
	}
	if len(seen) != 0 {
		t.Fatalf("unexpected deliveries: %v", seen)
	}
}

// queued returns how many jobs wait in s's connection queues.
func queued(s *SMTP) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, pc := range s.active {
		n += len(pc.queue)
	}
	return n
}

// waitFor polls cond for up to 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// heldChain starts a one-connection transport, holds the relay at the
// first MAIL, and queues sends 1..n-1 behind send 0 in order, so that the
// connection then runs them as one chain. release lets the relay go on;
// wait returns every Send's error. reject decides the relay's answers
// after the hold (nil: accept all).
func heldChain(t *testing.T, relay *sink, n int, reject func(stage string, k int) error) (s *SMTP, release func(), wait func() []error) {
	t.Helper()
	return heldChainEnv(t, relay, n, chainEnv, reject)
}

// heldChainEnv is heldChain with send i's envelope from envOf.
func heldChainEnv(t *testing.T, relay *sink, n int, envOf func(int) Envelope, reject func(stage string, k int) error) (s *SMTP, release func(), wait func() []error) {
	t.Helper()
	hold := make(chan struct{})
	relay.mu.Lock()
	relay.reject = func(stage string, k int) error {
		if stage == "mail" && k == 1 {
			<-hold
		}
		if reject != nil {
			return reject(stage, k)
		}
		return nil
	}
	relay.mu.Unlock()
	s, err := NewSMTP(SMTPConfig{Addr: relay.Addr, PoolSize: 1, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.Send(context.Background(), envOf(i), chainRaw(i))
		}()
		if i == 0 {
			// Send 0 is on the wire once the relay holds its MAIL.
			waitFor(t, "the first MAIL", func() bool {
				relay.mu.Lock()
				defer relay.mu.Unlock()
				return relay.stages["mail"] == 1
			})
		} else {
			waitFor(t, fmt.Sprintf("send %d queued", i), func() bool { return queued(s) == i })
		}
	}
	var once sync.Once
	release = func() { once.Do(func() { close(hold) }) }
	t.Cleanup(release)
	return s, release, func() []error { wg.Wait(); return errs }
}

// Many goroutines sending at once share connections, and a message's
// commands ride on the previous message's content: about one client write
// (one relay read) per message instead of two.
func TestSMTPChainConcurrent(t *testing.T) {
	for _, tc := range []struct {
		name       string
		maxPerConn int
	}{{"default", 0}, {"MaxPerConn 7", 7}} {
		t.Run(tc.name, func(t *testing.T) {
			relay := newSink(t, "")
			s, err := NewSMTP(SMTPConfig{Addr: relay.Addr, PoolSize: 8, MaxPerConn: tc.maxPerConn, Timeout: 10 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			const senders, each = 8, 50
			var wg sync.WaitGroup
			errs := make(chan error, senders*each)
			for g := range senders {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for k := range each {
						i := g*each + k
						if err := s.Send(context.Background(), chainEnv(i), chainRaw(i)); err != nil {
							errs <- fmt.Errorf("send %d: %w", i, err)
						}
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			n := senders * each
			want := make([]int, n)
			for i := range want {
				want[i] = i
			}
			checkDelivered(t, relay.wait(n), want)
			conns, reads := relay.conns.Load(), relay.reads.Load()
			t.Logf("%d messages: %d connections, %d relay reads", n, conns, reads)
			// PoolSize, plus one per MaxPerConn rotation.
			if tc.maxPerConn == 0 && conns > int64(8+n/DefaultMaxPerConn) {
				t.Errorf("%d connections", conns)
			}
			// Without chaining each message is at least two client
			// writes; each connection adds EHLO, QUIT and end of file.
			if limit := n*3/2 + 3*int(conns); reads > int64(limit) {
				t.Errorf("%d relay reads for %d messages on %d connections (limit %d): messages were not chained", reads, n, conns, limit)
			}
		})
	}
}

// One connection runs a queued chain; the relay refuses the third
// message's RCPT in the middle of it. Only that message fails, as a
// permanent RCPT refusal; the connection is kept and the rest deliver.
func TestSMTPChainRefusalMidChain(t *testing.T) {
	relay := newSink(t, "")
	const n = 10
	_, release, wait := heldChain(t, relay, n, func(stage string, k int) error {
		if stage == "rcpt" && k == 3 {
			return &smtpError550
		}
		return nil
	})
	release()
	errs := wait()
	var want []int
	for i, err := range errs {
		if i == 2 {
			var d *DeliveryError
			if !errors.As(err, &d) || d.Op != "rcpt" || d.Code != 550 || IsTemporary(err) {
				t.Fatalf("send 2: err = %v, want a permanent 550 at rcpt", err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
		want = append(want, i)
	}
	checkDelivered(t, relay.wait(n-1), want)
	if c := relay.conns.Load(); c != 1 {
		t.Fatalf("%d connections, want 1", c)
	}
	// EHLO, send 0's commands, then one write per message (content and the
	// next commands), plus RSET and the commands written alone after the
	// refusal. Lock step would be two or more per message.
	if r := relay.reads.Load(); r > n+5 {
		t.Fatalf("%d relay reads for %d messages: not chained", r, n)
	}
}

// Messages with several recipients in a chain: DATA waits for every RCPT
// reply, so a refused RCPT fails the whole message before its content,
// and the chain goes on.
func TestSMTPChainMultiRecipient(t *testing.T) {
	relay := newSink(t, "")
	const n = 6
	envOf := func(i int) Envelope {
		env := chainEnv(i)
		if i == 2 || i == 4 {
			env.To = append(env.To, fmt.Sprintf("s%d@x.example", i), fmt.Sprintf("t%d@x.example", i))
		}
		return env
	}
	// RCPT order: 0, 1, then 2, s2, t2: refuse s2, the fourth.
	_, release, wait := heldChainEnv(t, relay, n, envOf, func(stage string, k int) error {
		if stage == "rcpt" && k == 4 {
			return &smtpError550
		}
		return nil
	})
	release()
	for i, err := range wait() {
		if i == 2 {
			var d *DeliveryError
			if !errors.As(err, &d) || d.Op != "rcpt" || d.Code != 550 {
				t.Fatalf("send 2: err = %v, want 550 at rcpt", err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	got := relay.wait(n - 1)
	if len(got) != n-1 {
		t.Fatalf("%d messages delivered, want %d", len(got), n-1)
	}
	for k, m := range got {
		i := k
		if k >= 2 {
			i++ // send 2 was refused
		}
		if want := envOf(i); fmt.Sprint(m.To) != fmt.Sprint(want.To) || string(m.Data) != string(chainRaw(i)) {
			t.Fatalf("delivery %d: %v %q, want send %d: %v", k, m.To, m.Data, i, want.To)
		}
	}
	if c := relay.conns.Load(); c != 1 {
		t.Fatalf("%d connections, want 1", c)
	}
}

// The relay drops the connection in the middle of a chain.
func TestSMTPChainRelayDrops(t *testing.T) {
	const n = 8
	t.Run("after a message's content", func(t *testing.T) {
		// Message 3's final reply is lost: its outcome is unknown
		// (data-end, never resent; here the relay did not keep it).
		// Message 4's commands went out on the same write: retried on a
		// new connection. The rest had nothing written: moved there.
		relay := newSink(t, "")
		_, release, wait := heldChain(t, relay, n, func(stage string, k int) error {
			if stage == "data" && k == 4 {
				return errDropConn
			}
			return nil
		})
		release()
		errs := wait()
		var want []int
		for i, err := range errs {
			if i == 3 {
				var d *DeliveryError
				if !errors.As(err, &d) || d.Op != "data-end" || !IsTemporary(err) {
					t.Fatalf("send 3: err = %v, want a temporary data-end failure", err)
				}
				continue
			}
			if err != nil {
				t.Fatalf("send %d: %v", i, err)
			}
			want = append(want, i)
		}
		checkDelivered(t, relay.wait(n-1), want)
		if c := relay.conns.Load(); c != 2 {
			t.Fatalf("%d connections, want 2", c)
		}
	})
	t.Run("at a chained MAIL", func(t *testing.T) {
		// The relay accepts message 3, then drops the connection on
		// message 4's MAIL, which came in the same write: message 4 is
		// retried on a new connection and nothing fails or repeats.
		relay := newSink(t, "")
		_, release, wait := heldChain(t, relay, n, func(stage string, k int) error {
			if stage == "mail" && k == 5 {
				return errDropConn
			}
			return nil
		})
		release()
		for i, err := range wait() {
			if err != nil {
				t.Fatalf("send %d: %v", i, err)
			}
		}
		want := make([]int, n)
		for i := range want {
			want[i] = i
		}
		checkDelivered(t, relay.wait(n), want)
		if c := relay.conns.Load(); c != 2 {
			t.Fatalf("%d connections, want 2", c)
		}
	})
}

// A Send whose ctx ends while it waits in a queue returns at once with
// the ctx error and is never sent; one whose commands are written runs to
// completion; the ones behind it still deliver.
func TestSMTPChainCancelQueued(t *testing.T) {
	relay := newSink(t, "")
	hold := make(chan struct{})
	defer func() {
		select {
		case <-hold:
		default:
			close(hold)
		}
	}()
	relay.reject = func(stage string, k int) error {
		if stage == "mail" && k == 1 {
			<-hold
		}
		return nil
	}
	s, err := NewSMTP(SMTPConfig{Addr: relay.Addr, PoolSize: 1, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx0, cancel0 := context.WithCancel(context.Background())
	ctx1, cancel1 := context.WithCancel(context.Background())
	defer cancel0()
	defer cancel1()
	errs := make([]chan error, 3)
	for i, ctx := range []context.Context{ctx0, ctx1, context.Background()} {
		errs[i] = make(chan error, 1)
		go func() { errs[i] <- s.Send(ctx, chainEnv(i), chainRaw(i)) }()
		if i == 0 {
			waitFor(t, "the first MAIL", func() bool {
				relay.mu.Lock()
				defer relay.mu.Unlock()
				return relay.stages["mail"] == 1
			})
		} else {
			waitFor(t, fmt.Sprintf("send %d queued", i), func() bool { return queued(s) == i })
		}
	}
	cancel1()
	select {
	case err := <-errs[1]:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("queued send: err = %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a cancelled queued send did not return while the connection was busy")
	}
	if q := queued(s); q != 1 {
		t.Fatalf("%d jobs queued after the cancellation, want 1", q)
	}
	// Send 0 is on the wire: cancelling it now does not stop it.
	cancel0()
	select {
	case err := <-errs[0]:
		t.Fatalf("send 0 returned %v while its transaction was in progress", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(hold)
	for _, i := range []int{0, 2} {
		if err := <-errs[i]; err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	checkDelivered(t, relay.wait(2), []int{0, 2})
}

// Close fails the queued jobs as Send after Close does, lets the
// transaction on the wire finish, and every serving goroutine ends.
func TestSMTPChainClose(t *testing.T) {
	relay := newSink(t, "")
	s, release, wait := heldChain(t, relay, 4, nil)
	s.Close()
	release()
	errs := wait()
	if errs[0] != nil {
		t.Fatalf("send 0: %v", errs[0])
	}
	closedErr := s.Send(context.Background(), chainEnv(9), chainRaw(9))
	if closedErr == nil {
		t.Fatal("send after Close succeeded")
	}
	for i, err := range errs[1:] {
		if err == nil || err.Error() != closedErr.Error() {
			t.Fatalf("queued send %d: err = %v, want %v", i+1, err, closedErr)
		}
	}
	waitFor(t, "the serving goroutine to end", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return len(s.active) == 0 && len(s.idle) == 0
	})
	checkDelivered(t, relay.messages(), []int{0})
}

// Without PIPELINING there is no chaining: one transaction at a time per
// connection, in lock step, and concurrent sends still all arrive.
func TestSMTPNoPipelining(t *testing.T) {
	relay := newSink(t, "")
	relay.noPipelining.Store(true)
	relay.reject = func(stage string, k int) error {
		if stage == "rcpt" && k == 5 {
			return &smtpError550
		}
		return nil
	}
	s, err := NewSMTP(SMTPConfig{Addr: relay.Addr, PoolSize: 3, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const n = 30
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.Send(context.Background(), chainEnv(i), chainRaw(i))
		}()
	}
	wg.Wait()
	var want []int
	refused := 0
	for i, err := range errs {
		if err != nil {
			if SMTPCode(err) != 550 {
				t.Fatalf("send %d: %v", i, err)
			}
			refused++
			continue
		}
		want = append(want, i)
	}
	if refused != 1 {
		t.Fatalf("%d refused, want 1", refused)
	}
	checkDelivered(t, relay.wait(n-1), want)
	s.mu.Lock()
	for _, pc := range append(append([]*pooledConn(nil), s.idle...), s.active...) {
		if pc.pipelining {
			t.Error("the relay's PIPELINING was not hidden")
		}
	}
	s.mu.Unlock()
	// Lock step: MAIL, RCPT, DATA and the content are four writes.
	if r := relay.reads.Load(); r < 4*(n-1) {
		t.Fatalf("%d relay reads for %d lock-step messages", r, n)
	}
	if c := relay.conns.Load(); c > 3 {
		t.Fatalf("%d connections for PoolSize 3", c)
	}
}
