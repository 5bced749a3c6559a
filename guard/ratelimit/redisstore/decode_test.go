package redisstore

import (
	"errors"
	"testing"
	"time"

	"github.com/formguard/formguard/guard/ratelimit"
)

func TestDecode(t *testing.T) {
	rules := []ratelimit.Rule{
		{Tier: ratelimit.TierForm, Key: "f"}, // zero limit: not sent to the script
		{Tier: ratelimit.TierIP, Key: "a", Limit: lim("5/h")},
		{Tier: ratelimit.TierSender, Key: "b", Limit: lim("1/h")},
	}
	idx := []int{1, 2}
	tests := []struct {
		name    string
		reply   any
		want    ratelimit.Decision
		wantErr bool
	}{
		{
			name:  "admitted: the tightest bucket is reported with its budget",
			reply: []any{int64(1), int64(-1), int64(0), int64(12 * 60e6), int64(3600e6)},
			want:  ratelimit.Decision{Allowed: true, Rule: -1, Tightest: 2, Remaining: 0, Reset: time.Hour},
		},
		{
			name:  "admitted: equal budgets report the longer reset",
			reply: []any{int64(1), int64(-1), int64(0), int64(3600e6), int64(3600e6 - 1)},
			want:  ratelimit.Decision{Allowed: true, Rule: -1, Tightest: 1, Remaining: 0, Reset: time.Hour},
		},
		{
			name:  "refused: script bucket positions map back to rule indexes",
			reply: []any{int64(0), int64(1), int64(30e6), int64(24 * 60e6), int64(3600e6 + 30e6)},
			want:  ratelimit.Decision{Rule: 2, Tightest: 2, RetryAfter: 30 * time.Second, Remaining: 0, Reset: time.Hour + 30*time.Second},
		},
		{
			name:  "banned",
			reply: []any{int64(2), int64(1), int64(90e6)},
			want:  ratelimit.Decision{Rule: 1, Tightest: 1, RetryAfter: 90 * time.Second, Reset: 90 * time.Second, Banned: true},
		},
		{name: "not an array", reply: "OK", wantErr: true},
		{name: "too short", reply: []any{int64(1)}, wantErr: true},
		{name: "not integers", reply: []any{int64(1), "x", int64(0), int64(0), int64(0)}, wantErr: true},
		{name: "wrong bucket count", reply: []any{int64(1), int64(-1), int64(0), int64(0)}, wantErr: true},
		{name: "unknown status", reply: []any{int64(7), int64(-1), int64(0), int64(0), int64(0)}, wantErr: true},
		{name: "refusing bucket out of range", reply: []any{int64(0), int64(5), int64(1), int64(0), int64(0)}, wantErr: true},
		{name: "ban index out of range", reply: []any{int64(2), int64(9), int64(1)}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decode(tt.reply, rules, idx)
			if tt.wantErr {
				if !errors.Is(err, ErrBadReply) {
					t.Fatalf("err = %v, want ErrBadReply", err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("decode = %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

// FuzzDecode checks that no script reply, however malformed (a script bug,
// a proxy in the way), makes decode panic or report an out-of-range rule.
func FuzzDecode(f *testing.F) {
	f.Add(int64(1), int64(-1), int64(0), int64(1), int64(2), 5)
	f.Add(int64(0), int64(1), int64(30), int64(0), int64(0), 5)
	f.Add(int64(2), int64(1), int64(90), int64(0), int64(0), 3)
	f.Add(int64(0), int64(-3), int64(-1), int64(-1<<62), int64(1<<62), 4)
	rules := []ratelimit.Rule{
		{Tier: ratelimit.TierForm, Key: "f"},
		{Tier: ratelimit.TierIP, Key: "a", Limit: lim("5/h")},
		{Tier: ratelimit.TierSender, Key: "b", Limit: lim("1/d")},
	}
	idx := []int{1, 2}
	f.Fuzz(func(t *testing.T, a, b, c, d1, d2 int64, n int) {
		reply := []any{a, b, c, d1, d2}
		if n >= 0 && n < len(reply) {
			reply = reply[:n]
		}
		got, err := decode(reply, rules, idx)
		if err != nil {
			return
		}
		for _, i := range []int{got.Rule, got.Tightest} {
			if i < -1 || i >= len(rules) {
				t.Fatalf("index %d out of range: %+v", i, got)
			}
		}
		if got.Allowed == (got.Rule >= 0) || got.Remaining < 0 {
			t.Fatalf("inconsistent decision %+v", got)
		}
	})
}
