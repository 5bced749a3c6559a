package captcha

import (
	"context"
	"errors"
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
