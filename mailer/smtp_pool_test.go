package mailer

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

// chainRaw is message i: its body names it, so that a delivery can be
// matched to its Send.
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

// waitFor polls cond for up to 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// heldPool starts a one-connection transport whose relay holds the first
// MAIL until release, and starts send 0 on it.
func heldPool(t *testing.T, relay *sink) (s *SMTP, release func(), first chan error) {
	t.Helper()
	hold := make(chan struct{})
	relay.mu.Lock()
	relay.reject = func(stage string, k int) error {
		if stage == "mail" && k == 1 {
			<-hold
		}
		return nil
	}
	relay.mu.Unlock()
	s, err := NewSMTP(SMTPConfig{Addr: relay.Addr, PoolSize: 1, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	first = make(chan error, 1)
	go func() { first <- s.Send(context.Background(), chainEnv(0), chainRaw(0)) }()
	waitFor(t, "the first MAIL", func() bool {
		relay.mu.Lock()
		defer relay.mu.Unlock()
		return relay.stages["mail"] == 1
	})
	closed := false
	release = func() {
		if !closed {
			closed = true
			close(hold)
		}
	}
	t.Cleanup(release)
	return s, release, first
}

// A Send whose ctx ends while it waits for a connection returns at once
// with the ctx error and is never sent; the one on the wire and the ones
// behind it still deliver.
func TestSMTPCancelWaiting(t *testing.T) {
	relay := newSink(t, "")
	s, release, first := heldPool(t, relay)
	ctx, cancel := context.WithCancel(context.Background())
	waiting := make(chan error, 1)
	go func() { waiting <- s.Send(ctx, chainEnv(1), chainRaw(1)) }()
	later := make(chan error, 1)
	go func() { later <- s.Send(context.Background(), chainEnv(2), chainRaw(2)) }()
	time.Sleep(20 * time.Millisecond)
	cancel()
	select {
	case err := <-waiting:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("waiting send: err = %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a cancelled waiting send did not return while the connection was busy")
	}
	release()
	for i, c := range []chan error{first, later} {
		if err := <-c; err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	checkDelivered(t, relay.wait(2), []int{0, 2})
}

// Close lets the transaction on the wire finish, then quits its
// connection; later sends fail.
func TestSMTPCloseWhileSending(t *testing.T) {
	relay := newSink(t, "")
	s, release, first := heldPool(t, relay)
	s.Close()
	release()
	if err := <-first; err != nil {
		t.Fatalf("send 0: %v", err)
	}
	if err := s.Send(context.Background(), chainEnv(1), chainRaw(1)); err == nil {
		t.Fatal("send after Close succeeded")
	}
	s.mu.Lock()
	idle := len(s.idle)
	s.mu.Unlock()
	if idle != 0 {
		t.Fatalf("%d idle connections after Close", idle)
	}
	checkDelivered(t, relay.messages(), []int{0})
}
