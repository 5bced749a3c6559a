package mailer

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

// TestSMTPRandomFaults sends many messages from many goroutines over
// a few shared connections while the relay refuses (4xx, 5xx) or drops the
// connection at random steps, and holds every Send to what the relay
// actually kept: a success was delivered exactly once; a refusal, or a
// failure before the content went out, was not delivered; an unknown
// outcome (data-end, write: the relay may have kept it, and here sometimes
// does) was delivered at most once; nothing was delivered twice; and every
// Send returned. Several seeds, so that faults hit different steps.
func TestSMTPRandomFaults(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3, 4} {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) {
			const n, senders = 240, 16
			relay := newSink(t, "")
			var mu sync.Mutex
			rng := rand.New(rand.NewPCG(seed, 99))
			var faults [4]int // refused 4xx, refused 5xx, dropped, kept then dropped
			relay.mu.Lock()
			relay.reject = func(stage string, _ int) error {
				mu.Lock()
				defer mu.Unlock()
				switch x := rng.IntN(100); {
				case x < 6:
					faults[0]++
					return &smtpError451
				case x < 9:
					faults[1]++
					return &smtpError550
				case x < 12:
					faults[2]++
					return errDropConn
				case x < 15 && stage == "data":
					// The 250 is lost: the client must not send the
					// message again on its own.
					faults[3]++
					return errKeepThenDrop
				}
				return nil
			}
			relay.mu.Unlock()
			s, err := NewSMTP(SMTPConfig{Addr: relay.Addr, PoolSize: 3, Timeout: 10 * time.Second, MaxPerConn: 25})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()

			errs := make([]error, n)
			next := make(chan int)
			var wg sync.WaitGroup
			for range senders {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range next {
						errs[i] = s.Send(context.Background(), chainEnv(i), chainRaw(i))
					}
				}()
			}
			for i := range n {
				next <- i
			}
			close(next)
			done := make(chan struct{})
			go func() { wg.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(60 * time.Second):
				t.Fatal("some Send calls never returned")
			}

			relay.mu.Lock()
			got := append([]received(nil), relay.msgs...)
			relay.mu.Unlock()
			times := map[int]int{}
			for _, m := range got {
				var i int
				if len(m.To) != 1 {
					t.Fatalf("received envelope %v", m.To)
				}
				if _, err := fmt.Sscanf(m.To[0], "r%d@x.example", &i); err != nil {
					t.Fatalf("unexpected recipient %q", m.To[0])
				}
				if string(m.Data) != string(chainRaw(i)) {
					t.Fatalf("message for %s arrived as %q", m.To[0], m.Data)
				}
				times[i]++
			}
			var ok, refused, unknown, failedEarly int
			for i, err := range errs {
				var d *DeliveryError
				switch {
				case err == nil:
					ok++
					if times[i] != 1 {
						t.Errorf("send %d succeeded but was delivered %d times", i, times[i])
					}
				case !errors.As(err, &d):
					t.Errorf("send %d: untyped error %v", i, err)
				case d.Op == "data-end" || d.Op == "write":
					unknown++
					if times[i] > 1 {
						t.Errorf("send %d (%s) delivered %d times", i, d.Op, times[i])
					}
				case d.Code != 0:
					refused++
					if times[i] != 0 {
						t.Errorf("send %d refused (%v) but delivered %d times", i, err, times[i])
					}
				default: // a network failure before the content
					failedEarly++
					if times[i] != 0 {
						t.Errorf("send %d failed at %s (%v) but delivered %d times", i, d.Op, err, times[i])
					}
				}
			}
			t.Logf("relay faults (451, 550, drop, kept then dropped): %v; sends: %d ok, %d refused, %d unknown outcome, %d failed before content; %d connections",
				faults, ok, refused, unknown, failedEarly, relay.conns.Load())
			if faults[0] == 0 || faults[1] == 0 || faults[2] == 0 || faults[3] == 0 || ok == 0 || refused == 0 || unknown == 0 {
				t.Fatalf("the run did not exercise every outcome: faults %v, ok %d, refused %d", faults, ok, refused)
			}
		})
	}
}
