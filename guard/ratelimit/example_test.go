package ratelimit_test

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/formguard/formguard/guard/ratelimit"
)

func ExampleNewMemory() {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	store, err := ratelimit.NewMemory(ratelimit.MemoryConfig{Now: func() time.Time { return now }})
	if err != nil {
		panic(err)
	}
	defer store.Close()

	perIP, _ := ratelimit.ParseLimit("2/h")
	perSender, _ := ratelimit.ParseLimit("1/h")
	rules := []ratelimit.Rule{
		{Tier: ratelimit.TierIP, Key: "hashed-ip", Limit: perIP},
		{Tier: ratelimit.TierSender, Key: "hashed-sender", Limit: perSender},
	}
	for range 2 {
		d, err := store.Allow(context.Background(), rules)
		if err != nil {
			panic(err) // fail closed: treat as a refusal
		}
		fmt.Println(d.Allowed, rules[d.Tightest].Tier, d.RetryAfter)
	}
	// Output:
	// true sender 0s
	// false sender 1h0m0s
}

func ExampleSetHeaders() {
	rules := []ratelimit.Rule{{Tier: ratelimit.TierIP, Key: "k", Limit: ratelimit.Limit{Count: 5, Period: time.Hour}}}
	h := http.Header{}
	ratelimit.SetHeaders(h, rules, ratelimit.Decision{Rule: 0, Tightest: 0, RetryAfter: 30 * time.Second})
	fmt.Println(h.Get("Retry-After"))
	fmt.Println(h.Get("RateLimit-Policy"))
	fmt.Println(h.Get("RateLimit"))
	// Output:
	// 30
	// "ip";q=5;w=3600
	// "ip";r=0;t=30
}

func ExampleParseLimit() {
	l, err := ratelimit.ParseLimit("30/10m")
	fmt.Println(l.Count, l.Period, l.Interval(), err)
	// Output: 30 10m0s 20s <nil>
}

func ExampleMemory_Penalize() {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	store, err := ratelimit.NewMemory(ratelimit.MemoryConfig{
		Now: func() time.Time { return now },
		Ban: ratelimit.BanPolicy{Threshold: 2}, // Base 15m, Max 24h by default
	})
	if err != nil {
		panic(err)
	}
	defer store.Close()

	ctx := context.Background()
	for range 2 { // e.g. two failed CAPTCHAs
		ban, _ := store.Penalize(ctx, "hashed-ip")
		fmt.Println("ban:", ban)
	}
	d, _ := store.Allow(ctx, []ratelimit.Rule{{Tier: ratelimit.TierIP, Key: "hashed-ip", Limit: ratelimit.Limit{Count: 5, Period: time.Hour}}})
	fmt.Println(d.Allowed, d.Banned, d.RetryAfter)
	// Output:
	// ban: 0s
	// ban: 15m0s
	// false true 15m0s
}
