package ratelimit

import (
	"context"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
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

// BenchmarkMemoryFull fills a store of DefaultMaxKeys with distinct keys,
// as a flood from many addresses does, and reports the live heap per key
// after GC (B/key) and the process's resident set (RSS-MB). "offences" is
// the honeypot flood (one Penalize per address), "buckets" a flood of
// first posts (one single-rule Allow per address). Run with -benchtime=1x:
// one fill is the measurement.
func BenchmarkMemoryFull(b *testing.B) {
	for _, kind := range []string{"buckets", "offences"} {
		b.Run(kind, func(b *testing.B) {
			for b.Loop() {
				fillReport(b, kind)
			}
		})
	}
}

func fillReport(b *testing.B, kind string) {
	heap := func() uint64 {
		runtime.GC()
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	base := heap()
	m, err := NewMemory(MemoryConfig{Now: func() time.Time { return now }, SweepInterval: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	ctx := context.Background()
	rules := []Rule{{Tier: TierIP, Limit: Limit{Count: 5, Period: time.Hour}}}
	var buf []byte
	for i := range DefaultMaxKeys {
		buf = strconv.AppendInt(buf[:0], int64(i), 36)
		if kind == "offences" {
			_, err = m.Penalize(ctx, string(buf))
		} else {
			rules[0].Key = string(buf)
			_, err = m.Allow(ctx, rules)
		}
		if err != nil {
			b.Fatal(err)
		}
	}
	held := m.Len()
	b.ReportMetric(float64(heap()-base)/float64(held), "B/key")
	b.ReportMetric(float64(rssBytes())/1e6, "RSS-MB")
	b.ReportMetric(float64(held), "keys")
}

// rssBytes is the resident set of this process (Linux), 0 elsewhere.
func rssBytes() int64 {
	s, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(s))
	if len(f) < 2 {
		return 0
	}
	pages, _ := strconv.ParseInt(f[1], 10, 64)
	return pages * int64(os.Getpagesize())
}

// BenchmarkMemoryEvicting is the steady state of a flood from distinct
// addresses: every decision is a new key in a full store, so each one
// evicts.
func BenchmarkMemoryEvicting(b *testing.B) {
	m, err := NewMemory(MemoryConfig{MaxKeys: 1 << 16})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = m.Close() })
	ctx := context.Background()
	rules := []Rule{{Tier: TierIP, Limit: Limit{Count: 5, Period: time.Hour}}}
	keys := make([]string, 1<<18)
	for i := range keys {
		keys[i] = strconv.Itoa(i)
	}
	for i := range 1 << 16 {
		rules[0].Key = keys[i]
		if _, err := m.Allow(ctx, rules); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	i := 1 << 16
	for b.Loop() {
		rules[0].Key = keys[i%len(keys)]
		if _, err := m.Allow(ctx, rules); err != nil {
			b.Fatal(err)
		}
		i++
	}
	if m.Evictions() == 0 {
		b.Fatal("nothing evicted")
	}
}
