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
