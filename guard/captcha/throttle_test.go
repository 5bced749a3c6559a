package captcha

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/time/rate"
)

// countingVerifier accepts every token and counts the calls that reached it.
type countingVerifier struct{ calls atomic.Int64 }

func (c *countingVerifier) Field() string { return "cf-turnstile-response" }

func (c *countingVerifier) Verify(_ context.Context, req Request) error {
	c.calls.Add(1)
	if req.Token == "" {
		return ErrMissing
	}
	return nil
}

func TestThrottle(t *testing.T) {
	ctx := context.Background()
	inner := &countingVerifier{}
	// One verification a minute, burst 2: the third must fail at once
	// (its wait would be ~a minute, far past maxWait) without a call.
	lim := rate.NewLimiter(rate.Every(time.Minute), 2)
	v := Throttle(inner, lim, 20*time.Millisecond)
	if v.Field() != inner.Field() {
		t.Fatalf("Field = %q, want the wrapped verifier's %q", v.Field(), inner.Field())
	}
	for i := range 2 {
		if err := v.Verify(ctx, Request{Token: "t"}); err != nil {
			t.Fatalf("call %d within the burst: %v", i, err)
		}
	}
	start := time.Now()
	err := v.Verify(ctx, Request{Token: "t"})
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("over the cap: err = %v, want ErrUnavailable", err)
	}
	if waited := time.Since(start); waited > 2*time.Second {
		t.Fatalf("over the cap waited %s; it must fail without sleeping out the wait", waited)
	}
	if n := inner.calls.Load(); n != 2 {
		t.Fatalf("%d calls reached the provider, want 2 (the refused one must not)", n)
	}
	// A missing token is refused by the provider verifier itself, with no
	// network call, so it neither waits nor spends the budget.
	if err := v.Verify(ctx, Request{}); !errors.Is(err, ErrMissing) {
		t.Fatalf("missing token: err = %v, want ErrMissing", err)
	}
	// A shared limiter caps verifiers together.
	other := Throttle(&countingVerifier{}, lim, 20*time.Millisecond)
	if err := other.Verify(ctx, Request{Token: "t"}); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("second verifier on the spent limiter: err = %v, want ErrUnavailable", err)
	}
}

func TestThrottleWaitsForItsTurn(t *testing.T) {
	inner := &countingVerifier{}
	// 50 a second, burst 1: the second call waits about 20 ms, within
	// maxWait, and is then verified.
	v := Throttle(inner, rate.NewLimiter(50, 1), time.Second)
	for i := range 2 {
		if err := v.Verify(context.Background(), Request{Token: "t"}); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	if n := inner.calls.Load(); n != 2 {
		t.Fatalf("%d calls, want 2", n)
	}
}

func TestThrottleCancelledContext(t *testing.T) {
	inner := &countingVerifier{}
	lim := rate.NewLimiter(rate.Every(time.Hour), 1)
	v := Throttle(inner, lim, time.Minute)
	_ = v.Verify(context.Background(), Request{Token: "t"}) // spend the burst
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := v.Verify(ctx, Request{Token: "t"}); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("cancelled request: err = %v, want ErrUnavailable", err)
	}
	if n := inner.calls.Load(); n != 1 {
		t.Fatalf("%d calls, want 1", n)
	}
}

// TestThrottleClientShare: one client hammering gets its share (burst/8)
// and no more, each refusal at once and without spending the shared
// budget; other clients are verified with what is left. Fixed clock, and
// a shared budget that refills too slowly to matter.
func TestThrottleClientShare(t *testing.T) {
	ctx := context.Background()
	inner := &countingVerifier{}
	lim := rate.NewLimiter(rate.Every(time.Hour), 16) // each client: burst 2
	v := Throttle(inner, lim, 20*time.Millisecond)
	now := testNow
	abuser := Request{Token: "t", ClientKey: "abuser", Now: now}
	verified := 0
	start := time.Now()
	for range 50 {
		if err := v.Verify(ctx, abuser); err == nil {
			verified++
		} else if !errors.Is(err, ErrUnavailable) {
			t.Fatalf("abuser: %v, want ErrUnavailable", err)
		}
	}
	if verified != 2 {
		t.Fatalf("one client was verified %d times, want its share of 2", verified)
	}
	if took := time.Since(start); took > time.Second {
		t.Fatalf("48 refusals took %s: a client over its share must fail at once", took)
	}
	if left := lim.Tokens(); left < 13.9 || left > 14.1 {
		t.Fatalf("shared budget left %.2f, want 14: refusals over the share must not spend it", left)
	}
	for i := range 14 {
		req := Request{Token: "t", ClientKey: fmt.Sprint("visitor", i), Now: now}
		if err := v.Verify(ctx, req); err != nil {
			t.Fatalf("visitor %d: %v", i, err)
		}
	}
	if n := inner.calls.Load(); n != 16 {
		t.Fatalf("%d calls reached the provider, want 16 (2 + 14)", n)
	}
	// The share refills at rate/8 on the request's clock: one more call
	// after 8 h (one shared token an hour, divided by 8).
	lim.SetLimit(rate.Inf) // the shared budget is not what refuses it
	abuser.Now = now.Add(8 * time.Hour)
	if err := v.Verify(ctx, abuser); err != nil {
		t.Fatalf("abuser after its share refilled: %v", err)
	}
	if err := v.Verify(ctx, abuser); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("abuser again: %v, want ErrUnavailable", err)
	}
}

// TestThrottleAbuserCannotStarveVisitors is issue 14's item 2: one client
// at 64 connections verifying junk tokens as fast as it can, with the
// default budget (20/s, burst 20); 20 visitors from other addresses are
// all verified meanwhile.
func TestThrottleAbuserCannotStarveVisitors(t *testing.T) {
	ctx := context.Background()
	inner := &countingVerifier{}
	v := Throttle(inner, rate.NewLimiter(20, 20), time.Second)
	stop := make(chan struct{})
	var abuserVerified atomic.Int64
	var wg sync.WaitGroup
	for range 64 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if v.Verify(ctx, Request{Token: "junk", ClientKey: "abuser"}) == nil {
					abuserVerified.Add(1)
				}
			}
		})
	}
	time.Sleep(50 * time.Millisecond) // the abuser is at it first
	start := time.Now()
	var failed atomic.Int64
	var visitors sync.WaitGroup
	for i := range 20 {
		visitors.Go(func() {
			if err := v.Verify(ctx, Request{Token: "t", ClientKey: fmt.Sprint("visitor", i)}); err != nil {
				failed.Add(1)
				t.Errorf("visitor %d: %v", i, err)
			}
		})
	}
	visitors.Wait()
	elapsed := time.Since(start) + 50*time.Millisecond
	close(stop)
	wg.Wait()
	if failed.Load() != 0 {
		t.Fatalf("%d of 20 visitors refused", failed.Load())
	}
	// Its share: burst 2 plus 2.5/s, whatever its connections.
	if max := 2 + int64(2.5*elapsed.Seconds()) + 1; abuserVerified.Load() > max {
		t.Fatalf("the abuser was verified %d times in %s, more than its share %d", abuserVerified.Load(), elapsed, max)
	}
}

// TestThrottleClientsBounded: the shares remembered stay within
// MaxThrottleClients, the oldest forgotten first.
func TestThrottleClientsBounded(t *testing.T) {
	ctx := context.Background()
	v := Throttle(&countingVerifier{}, rate.NewLimiter(rate.Inf, 1), 0).(*throttled)
	for i := range MaxThrottleClients + 100 {
		if err := v.Verify(ctx, Request{Token: "t", ClientKey: fmt.Sprint("c", i), Now: testNow}); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(v.clients); n != MaxThrottleClients {
		t.Fatalf("%d clients remembered, want %d", n, MaxThrottleClients)
	}
	if _, ok := v.clients["c0"]; ok {
		t.Error("the oldest client was kept")
	}
	if _, ok := v.clients[fmt.Sprint("c", MaxThrottleClients+99)]; !ok {
		t.Error("the newest client was forgotten")
	}
}
