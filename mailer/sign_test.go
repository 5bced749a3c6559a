package mailer

import (
	"bytes"
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/formguard/formguard/mailer/outbox"
)

// queued returns the messages in f's spool without disturbing them: they
// are claimed and made due again at once (Attempts is not counted by
// Claim).
func (f *fixture) queued(t *testing.T) []*outbox.Message {
	t.Helper()
	ctx := context.Background()
	msgs, err := f.q.Claim(ctx, f.clock.Now().Add(24*time.Hour), 100)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		if err := f.q.Retry(ctx, m, f.clock.Now()); err != nil {
			t.Fatal(err)
		}
	}
	return msgs
}

// sigTime returns the t= tag of raw's DKIM-Signature.
func sigTime(t *testing.T, raw []byte) time.Time {
	t.Helper()
	sigs := header(t, raw, "Dkim-Signature")
	if len(sigs) != 1 {
		t.Fatalf("%d DKIM signatures", len(sigs))
	}
	sec, err := strconv.ParseInt(dkimTags(sigs[0])["t"], 10, 64)
	if err != nil {
		t.Fatalf("t= in %q: %v", sigs[0], err)
	}
	return time.Unix(sec, 0).UTC()
}

// Deliver queues the message unsigned and sealed; the worker signs it when
// it sends it (t= is the send time, not the queue time), for both key
// types and both canonicalizations, and a retry is signed afresh.
func TestWorkerSignsAtSendTime(t *testing.T) {
	for _, keyName := range []string{"rsa2048.pkcs8.pem", "ed25519.pem"} {
		for _, canon := range []Canonicalization{Relaxed, Simple} {
			t.Run(keyName+"/"+string(canon), func(t *testing.T) {
				relay := newSink(t, "")
				relay.reject = func(stage string, n int) error {
					if stage == "data" && n == 1 {
						return &smtpError451
					}
					return nil
				}
				key := loadKey(t, keyName)
				f := newFixture(t, "", smtpTo(t, relay.Addr), key, func(c *Config) { c.DKIM.Canonicalization = canon })
				ctx := context.Background()
				if err := f.m.Deliver(ctx, contact("sub-1")); err != nil {
					t.Fatal(err)
				}
				q := f.queued(t)
				if len(q) != 1 {
					t.Fatalf("queued %d", len(q))
				}
				if bytes.Contains(bytes.ToLower(q[0].Raw), []byte("dkim-signature")) {
					t.Fatalf("queued message is already signed:\n%s", q[0].Raw)
				}
				if q[0].Seal == "" {
					t.Fatal("queued message has no seal")
				}

				f.clock.Add(time.Hour) // the first attempt: 451
				f.m.Flush(ctx)
				if o := f.outcomes(); o[outbox.Retried] != 1 {
					t.Fatalf("outcomes = %v", o)
				}
				if q := f.queued(t); len(q) != 1 || bytes.Contains(bytes.ToLower(q[0].Raw), []byte("dkim-signature")) {
					t.Fatal("a retried message must go back to the queue unsigned")
				}
				f.clock.Add(time.Hour) // the second attempt: delivered
				f.m.Flush(ctx)
				r := relay.wait(1)[0]
				verifyDKIM(t, r.Data, key.Public())
				if got, want := sigTime(t, r.Data), t0.Add(2*time.Hour); !got.Equal(want) {
					t.Fatalf("t= %v, want the send time %v", got, want)
				}
			})
		}
	}
}

// The worker signs only unsigned messages that carry a valid seal: bytes
// written into the outbox by anyone without the key are dead-lettered
// (RuleSeal) before any connection is made, instead of being signed as
// the site.
func TestWorkerRefusesUnsealedMessages(t *testing.T) {
	relay := newSink(t, "")
	key := loadKey(t, "ed25519.pem")
	f := newFixture(t, "", smtpTo(t, relay.Addr), key, nil)
	other := newFixture(t, "", TransportFunc(nil), loadKey(t, "rsa2048.pkcs8.pem"), nil)
	ctx := context.Background()
	unsigned := func(m *Mailer, id string) *outbox.Message {
		msgs, err := m.compose(contact(id), false)
		if err != nil {
			t.Fatal(err)
		}
		return msgs[0]
	}
	noSeal := unsigned(f.m, "sub-1")
	noSeal.Seal = ""
	altered := unsigned(f.m, "sub-2")
	altered.Raw = bytes.Replace(altered.Raw, []byte("Hi there."), []byte("Pay here."), 1)
	rerouted := unsigned(f.m, "sub-3")
	rerouted.To = []string{"victim@x.example"}
	foreign := unsigned(other.m, "sub-4") // sealed with another key
	garbage := unsigned(f.m, "sub-5")
	garbage.Seal = "!!"
	if err := f.q.Enqueue(ctx, noSeal, altered, rerouted, foreign, garbage); err != nil {
		t.Fatal(err)
	}
	f.m.Flush(ctx)
	if c := relay.conns.Load(); c != 0 {
		t.Fatalf("%d connections for unsealed messages", c)
	}
	dl, _ := f.q.DeadLetters()
	if len(dl) != 5 {
		t.Fatalf("dead letters = %d, want 5", len(dl))
	}
	for _, m := range dl {
		if !strings.Contains(m.LastError, "policy "+RuleSeal) {
			t.Errorf("%s: reason = %q", m.Ref, m.LastError)
		}
	}

	// The same message with its seal intact is signed and sent.
	good := unsigned(f.m, "sub-6")
	if err := f.q.Enqueue(ctx, good); err != nil {
		t.Fatal(err)
	}
	f.m.Flush(ctx)
	verifyDKIM(t, relay.wait(1)[0].Data, key.Public())
}

// A hand-built message that carries a DKIM-Signature field of its own is
// refused at DeliverMsg: the worker would otherwise send it unsigned by us
// (it never signs twice), or with two signatures.
func TestDeliverMsgRefusesPresignedMessage(t *testing.T) {
	f := newFixture(t, "", TransportFunc(func(context.Context, Envelope, []byte) error { return nil }), loadKey(t, "ed25519.pem"), nil)
	m := handBuilt()
	m.SetGenHeader("DKIM-Signature", "v=1; a=ed25519-sha256; d=example.test; s=s1; h=from; bh=x; b=y")
	err := f.m.DeliverMsg(context.Background(), m)
	var pe *PolicyError
	if !errors.As(err, &pe) || pe.Rule != RuleDKIM {
		t.Fatalf("err = %v, want rule %s", err, RuleDKIM)
	}
	if st, _ := f.m.Stats(context.Background()); st.Depth != 0 {
		t.Fatalf("queued %d", st.Depth)
	}
}

// Deliver still refuses a misaligned message with its typed error before
// queueing, although signing moved to the worker: here the Policy is for
// another domain than the one the Mailer builds messages on.
func TestDeliverChecksPolicyBeforeQueueing(t *testing.T) {
	f := newFixture(t, "", TransportFunc(nil), loadKey(t, "ed25519.pem"), nil)
	f.m.policy = &Policy{Domain: "other.test", Selector: "s1"}
	err := f.m.Deliver(context.Background(), contact("sub-1"))
	var pe *PolicyError
	if !errors.Is(err, ErrPolicy) || !errors.As(err, &pe) || pe.Rule != RuleEnvelopeFrom {
		t.Fatalf("err = %v, want rule %s", err, RuleEnvelopeFrom)
	}
	if st, _ := f.m.Stats(context.Background()); st.Depth != 0 {
		t.Fatalf("a refused message was queued: %d", st.Depth)
	}
}

// With MaxPending, Deliver waits while that many queued messages wait for
// a worker, and gives up with ErrBacklog (nothing queued) when its context
// ends first; a message a worker took frees its place at once.
func TestMaxPendingBoundsBacklog(t *testing.T) {
	sending := make(chan struct{}, 10)
	unblock := make(chan struct{})
	tr := TransportFunc(func(ctx context.Context, _ Envelope, _ []byte) error {
		sending <- struct{}{}
		<-unblock
		return nil
	})
	f := newFixture(t, "", tr, loadKey(t, "ed25519.pem"), func(c *Config) { c.MaxPending, c.Workers = 2, 1 })
	ctx := context.Background()
	cancelled, cancel := context.WithCancel(ctx)
	cancel()

	// Before Start nothing would free a place: no bound (this would hang).
	idle := newFixture(t, "", tr, loadKey(t, "ed25519.pem"), func(c *Config) { c.MaxPending = 2 })
	for i := range 3 {
		if err := idle.m.Deliver(ctx, contact("early-"+strconv.Itoa(i))); err != nil {
			t.Fatalf("before Start: %v", err)
		}
	}
	f.m.Start(ctx)
	if err := f.m.Deliver(ctx, contact("sub-1")); err != nil {
		t.Fatal(err)
	}
	<-sending // the worker took sub-1: its place is free again
	for _, id := range []string{"sub-2", "sub-3"} {
		if err := f.m.Deliver(ctx, contact(id)); err != nil {
			t.Fatal(err)
		}
	}
	err := f.m.Deliver(cancelled, contact("sub-4"))
	if !errors.Is(err, ErrBacklog) || !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want ErrBacklog", err)
	}
	if st, _ := f.m.Stats(ctx); st.Depth != 3 {
		t.Fatalf("depth %d, want 3 (sub-4 must not be queued)", st.Depth)
	}
	close(unblock) // deliveries resume; Deliver waits for a place, then queues
	if err := f.m.Deliver(ctx, contact("sub-5")); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		<-sending
	}
}
