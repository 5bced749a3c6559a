package mailer

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

const helperEnv = "FORMGUARD_MAILER_HELPER_SPOOL"

// TestHelperQueueThenHang is not a test on its own: run by
// TestKilledProcessLosesNothing in a child process, it queues messages,
// reports it, and hangs until it is killed with SIGKILL.
func TestHelperQueueThenHang(t *testing.T) {
	spool := os.Getenv(helperEnv)
	if spool == "" {
		t.Skip("helper process only")
	}
	// The relay is unreachable; nothing can be delivered before the kill.
	tr := TransportFunc(func(context.Context, Envelope, []byte) error { return fmt.Errorf("unreachable") })
	f := newFixture(t, spool, tr, loadKey(t, "ed25519.pem"), nil)
	for i := range 5 {
		if err := f.m.Deliver(context.Background(), contact(fmt.Sprintf("sub-%d", i))); err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
	}
	fmt.Println("queued")
	select {} // wait for SIGKILL
}

func TestKilledProcessLosesNothing(t *testing.T) {
	if os.Getenv(helperEnv) != "" {
		t.Skip("in helper")
	}
	spool := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperQueueThenHang$", "-test.count=1")
	cmd.Env = append(os.Environ(), helperEnv+"="+spool)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line := make(chan string, 1)
	go func() {
		s := bufio.NewScanner(out)
		for s.Scan() {
			if l := s.Text(); l == "queued" || strings.HasPrefix(l, "error:") {
				line <- l
				return
			}
		}
		line <- "exited"
	}()
	select {
	case l := <-line:
		if l != "queued" {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("helper: %s", l)
		}
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatal("helper never queued")
	}
	if err := cmd.Process.Kill(); err != nil { // SIGKILL: no cleanup runs
		t.Fatal(err)
	}
	cmd.Wait()

	relay := newSink(t, "")
	key := loadKey(t, "ed25519.pem")
	f := newFixture(t, spool, smtpTo(t, relay.Addr), key, nil)
	if st, _ := f.m.Stats(context.Background()); st.Depth != 5 {
		t.Fatalf("after kill -9 the spool holds %d messages, want 5", st.Depth)
	}
	f.m.Flush(context.Background())
	got := relay.wait(5)
	seen := map[string]bool{}
	for _, r := range got {
		verifyDKIM(t, r.Data, key.Public())
		seen[header(t, r.Data, "Message-Id")[0]] = true
	}
	f.clock.Add(time.Hour)
	f.m.Flush(context.Background())
	if len(seen) != 5 || len(relay.messages()) != 5 {
		t.Fatalf("delivered %d messages (%d distinct), want 5 once each", len(relay.messages()), len(seen))
	}
}
