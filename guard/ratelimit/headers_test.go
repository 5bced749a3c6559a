package ratelimit

import (
	"net/http"
	"testing"
	"time"
)

func TestSetHeaders(t *testing.T) {
	ip := Rule{Tier: TierIP, Key: "k", Limit: lim("5/h")}
	snd := Rule{Tier: TierSender, Key: "s", Limit: lim("30/10m")}
	tests := []struct {
		name  string
		rules []Rule
		d     Decision
		want  map[string]string // "" value: header must be absent
	}{
		{
			name:  "an admitted request reports the tightest rule and no Retry-After",
			rules: []Rule{ip, snd},
			d:     Decision{Allowed: true, Rule: -1, Tightest: 0, Remaining: 3, Reset: 24 * time.Minute},
			want: map[string]string{
				"RateLimit-Policy": `"ip";q=5;w=3600`,
				"RateLimit":        `"ip";r=3;t=1440`,
				"Retry-After":      "",
			},
		},
		{
			name:  "a refused request reports the refusing rule and when to retry",
			rules: []Rule{ip, snd},
			d:     Decision{Rule: 1, Tightest: 1, RetryAfter: 19*time.Second + time.Millisecond, Reset: 10 * time.Minute},
			want: map[string]string{
				"RateLimit-Policy": `"sender";q=30;w=600`,
				"RateLimit":        `"sender";r=0;t=20`,
				"Retry-After":      "20",
			},
		},
		{
			name:  "a sub-second wait still says one second",
			rules: []Rule{ip},
			d:     Decision{Rule: 0, Tightest: 0, RetryAfter: time.Nanosecond},
			want:  map[string]string{"Retry-After": "1", "RateLimit": `"ip";r=0;t=1`},
		},
		{
			name:  "a ban reports the banned IP tier",
			rules: []Rule{ip},
			d:     Decision{Rule: 0, Tightest: 0, Banned: true, RetryAfter: 15 * time.Minute, Reset: 15 * time.Minute},
			want:  map[string]string{"Retry-After": "900", "RateLimit": `"ip";r=0;t=900`},
		},
		{
			name:  "no applicable rule writes no RateLimit fields",
			rules: []Rule{{Tier: TierForm, Key: "f"}},
			d:     Decision{Allowed: true, Rule: -1, Tightest: -1},
			want:  map[string]string{"RateLimit": "", "RateLimit-Policy": "", "Retry-After": ""},
		},
		{
			name:  "an out of range index from a foreign store falls back to Rule",
			rules: []Rule{ip},
			d:     Decision{Rule: 0, Tightest: 7, RetryAfter: 2 * time.Second},
			want:  map[string]string{"RateLimit": `"ip";r=0;t=2`, "Retry-After": "2"},
		},
		{
			name:  "tier names are serialised as safe structured-field strings",
			rules: []Rule{{Tier: "a\"b\\c\r\n", Key: "k", Limit: lim("1/s")}},
			d:     Decision{Allowed: true, Rule: -1, Tightest: 0},
			want:  map[string]string{"RateLimit-Policy": `"a\"b\\c??";q=1;w=1`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			SetHeaders(h, tt.rules, tt.d)
			for k, v := range tt.want {
				if got := h.Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
		})
	}
}

func TestSetHeadersReplacesAndUsesCanonicalKeys(t *testing.T) {
	// The fields are stored under their canonical keys, so Get, Set and Del
	// by the documented names see them, and a second call (or a handler's
	// own Set) replaces a value instead of adding a second field.
	ip := Rule{Tier: TierIP, Key: "k", Limit: lim("5/h")}
	h := http.Header{}
	h.Set(HeaderRateLimit, "stale")
	SetHeaders(h, []Rule{ip}, Decision{Rule: 0, Tightest: 0, RetryAfter: 90 * time.Second})
	SetHeaders(h, []Rule{ip}, Decision{Rule: 0, Tightest: 0, RetryAfter: 30 * time.Second})
	for name, want := range map[string]string{
		HeaderRetryAfter:      "30",
		HeaderRateLimit:       `"ip";r=0;t=30`,
		HeaderRateLimitPolicy: `"ip";q=5;w=3600`,
	} {
		if got := h.Values(name); len(got) != 1 || got[0] != want {
			t.Errorf("%s = %q, want exactly [%q]", name, got, want)
		}
	}
	if len(h) != 3 {
		t.Errorf("header has %d fields, want 3: %v", len(h), h)
	}
	h.Del(HeaderRateLimit)
	if h.Get(HeaderRateLimit) != "" {
		t.Errorf("Del(%q) left %v", HeaderRateLimit, h)
	}
}

func TestSetHeadersAllocations(t *testing.T) {
	ip := Rule{Tier: TierIP, Key: "k", Limit: lim("5/h")}
	rules := []Rule{ip}
	refused := Decision{Rule: 0, Tightest: 0, RetryAfter: 1234 * time.Second, Reset: time.Hour}
	h := http.Header{}
	allocs := testing.AllocsPerRun(100, func() { SetHeaders(h, rules, refused) })
	// One string for every value, one array for the value slices.
	if allocs > 2 {
		t.Errorf("SetHeaders allocates %.0f times per call, want at most 2", allocs)
	}
}

// BenchmarkSetHeaders is the per-response cost: a refusal writes all three
// fields, an admission two.
func BenchmarkSetHeaders(b *testing.B) {
	rules := []Rule{
		{Tier: TierIP, Key: "k", Limit: lim("5/h")},
		{Tier: TierSender, Key: "s", Limit: lim("30/10m")},
	}
	for _, bc := range []struct {
		name string
		d    Decision
	}{
		{"refused", Decision{Rule: 1, Tightest: 1, RetryAfter: 1234 * time.Second, Reset: 10 * time.Minute}},
		{"admitted", Decision{Allowed: true, Rule: -1, Tightest: 0, Remaining: 3, Reset: 24 * time.Minute}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			h := http.Header{}
			b.ReportAllocs()
			for b.Loop() {
				SetHeaders(h, rules, bc.d)
			}
		})
	}
}
