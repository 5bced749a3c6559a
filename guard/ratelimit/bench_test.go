package ratelimit

import (
	"context"
	"strconv"
	"testing"
)

func benchMemory(b *testing.B) *Memory {
	m, err := NewMemory(MemoryConfig{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = m.Close() })
	return m
}

// BenchmarkMemoryHotKey is one client hammering one key (mostly refused
// after the first second, which is the attack case).
func BenchmarkMemoryHotKey(b *testing.B) {
	m := benchMemory(b)
	rules := []Rule{{Tier: TierIP, Key: "hot", Limit: Limit{Count: 1_000_000, Period: 1}}}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.Allow(ctx, rules); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMemoryManyKeys cycles through 100k distinct keys.
func BenchmarkMemoryManyKeys(b *testing.B) {
	m := benchMemory(b)
	const n = 100_000
	keys := make([][]Rule, n)
	for i := range keys {
		keys[i] = []Rule{{Tier: TierIP, Key: "k" + strconv.Itoa(i), Limit: Limit{Count: 5, Period: 3600e9}}}
	}
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := m.Allow(ctx, keys[i%n]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkMemoryFiveTier is a full guard decision: ip, sender,
// recipient, form and global in one call.
func BenchmarkMemoryFiveTier(b *testing.B) {
	m := benchMemory(b)
	l := Limit{Count: 1_000_000_000, Period: 1}
	rules := []Rule{
		{Tier: TierIP, Key: "ip", Limit: l},
		{Tier: TierSender, Key: "snd", Limit: l},
		{Tier: TierRecipient, Key: "rcpt", Limit: l},
		{Tier: TierForm, Key: "contact", Limit: l},
		{Tier: TierGlobal, Key: "all", Limit: l},
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.Allow(ctx, rules); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMemoryParallel is the hot path under contention on 5 tiers
// sharing the global key.
func BenchmarkMemoryParallel(b *testing.B) {
	m := benchMemory(b)
	l := Limit{Count: 1_000_000_000, Period: 1}
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			k := strconv.Itoa(i % 1024)
			rules := []Rule{
				{Tier: TierIP, Key: k, Limit: l},
				{Tier: TierGlobal, Key: "all", Limit: l},
			}
			if _, err := m.Allow(ctx, rules); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
}
