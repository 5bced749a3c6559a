package ratelimit

import (
	"context"
	"testing"
	"time"
)

func TestBanPolicyDuration(t *testing.T) {
	p, err := BanPolicy{}.WithDefaults()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		level int
		want  time.Duration
	}{
		{0, 0},
		{1, 15 * time.Minute},
		{2, 30 * time.Minute},
		{3, time.Hour},
		{6, 8 * time.Hour},
		{7, 16 * time.Hour},
		{8, 24 * time.Hour},
		{1000, 24 * time.Hour},
	}
	for _, tt := range tests {
		t.Run(time.Duration(tt.level).String(), func(t *testing.T) {
			if got := p.Duration(tt.level); got != tt.want {
				t.Errorf("Duration(%d) = %s, want %s", tt.level, got, tt.want)
			}
		})
	}
}

// offence is one step of a ban scenario: Penalize at offset at, expecting
// the ban then in force; or, with allow set, an Allow expecting banned-ness.
type offence struct {
	at     time.Duration
	allow  bool
	banned bool          // for allow steps
	want   time.Duration // ban in force (Penalize) or RetryAfter (Allow)
}

func TestMemoryBans(t *testing.T) {
	p := BanPolicy{Threshold: 3, Window: 10 * time.Minute, Base: time.Minute, Max: 4 * time.Minute}
	tests := []struct {
		name  string
		steps []offence
	}{
		{
			name: "offences below the threshold do not ban",
			steps: []offence{
				{at: 0}, {at: time.Second},
				{at: 2 * time.Second, allow: true},
			},
		},
		{
			name: "the threshold within the window bans for the base duration",
			steps: []offence{
				{at: 0}, {at: 0}, {at: 0, want: time.Minute},
				{at: 30 * time.Second, allow: true, banned: true, want: 30 * time.Second},
				{at: time.Minute, allow: true},
			},
		},
		{
			name: "offences spread over more than the window never ban",
			steps: []offence{
				{at: 0}, {at: 5 * time.Minute}, {at: 10 * time.Minute}, {at: 15 * time.Minute},
				{at: 16 * time.Minute, allow: true},
			},
		},
		{
			name: "repeat bans double up to the cap",
			steps: []offence{
				{at: 0}, {at: 0}, {at: 0, want: time.Minute},
				{at: time.Minute}, {at: time.Minute}, {at: time.Minute, want: 2 * time.Minute},
				{at: 3 * time.Minute}, {at: 3 * time.Minute}, {at: 3 * time.Minute, want: 4 * time.Minute},
				{at: 7 * time.Minute}, {at: 7 * time.Minute}, {at: 7 * time.Minute, want: 4 * time.Minute},
				{at: 8 * time.Minute, allow: true, banned: true, want: 3 * time.Minute},
			},
		},
		{
			name: "offences while banned report the ban in force",
			steps: []offence{
				{at: 0}, {at: 0}, {at: 0, want: time.Minute},
				{at: 10 * time.Second, want: 50 * time.Second},
			},
		},
		{
			name: "a clean stretch as long as the cap resets escalation",
			steps: []offence{
				{at: 0}, {at: 0}, {at: 0, want: time.Minute},
				{at: 5 * time.Minute}, {at: 5 * time.Minute}, {at: 5 * time.Minute, want: time.Minute},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newClock()
			start := clk.Now()
			m := newTestMemory(t, MemoryConfig{Now: clk.Now, Ban: p})
			rules := []Rule{
				{Tier: TierIP, Key: "bad", Limit: lim("1000/h")},
				{Tier: TierGlobal, Key: "all", Limit: lim("1000/h")},
			}
			used := 0
			for i, s := range tt.steps {
				clk.Set(start.Add(s.at))
				if !s.allow {
					got, err := m.Penalize(context.Background(), "bad")
					if err != nil || got != s.want {
						t.Fatalf("step %d: Penalize = %s, %v; want %s", i, got, err, s.want)
					}
					continue
				}
				d, err := m.Allow(context.Background(), rules)
				if err != nil {
					t.Fatal(err)
				}
				if d.Banned != s.banned || d.Allowed == s.banned || (s.banned && (d.RetryAfter != s.want || d.Rule != 0)) {
					t.Fatalf("step %d: Allow = %+v; want banned=%v retry=%s", i, d, s.banned, s.want)
				}
				if d.Allowed {
					used++
				}
			}
			// A banned request consumed nothing.
			d, err := m.Allow(context.Background(), rules[1:])
			if err != nil || d.Remaining != 1000-used-1 {
				t.Errorf("global remaining = %d (%v), want %d", d.Remaining, err, 1000-used-1)
			}
		})
	}
}

func TestMemoryBanIgnoresOtherTiers(t *testing.T) {
	clk := newClock()
	m := newTestMemory(t, MemoryConfig{Now: clk.Now, Ban: BanPolicy{Threshold: 1}})
	if got, _ := m.Penalize(context.Background(), "k"); got != DefaultBanBase {
		t.Fatalf("Penalize = %s", got)
	}
	// The same key under a non-IP tier is not banned (bans are per client).
	d, err := m.Allow(context.Background(), []Rule{{Tier: TierSender, Key: "k", Limit: lim("1/h")}})
	if err != nil || !d.Allowed {
		t.Fatalf("%+v %v", d, err)
	}
	// A zero-limit IP rule still carries the ban.
	d, err = m.Allow(context.Background(), []Rule{{Tier: TierIP, Key: "k"}})
	if err != nil || !d.Banned || d.RetryAfter != DefaultBanBase {
		t.Fatalf("%+v %v", d, err)
	}
}

func TestMemorySweepBans(t *testing.T) {
	clk := newClock()
	start := clk.Now()
	p := BanPolicy{Threshold: 1, Window: time.Minute, Base: time.Minute, Max: time.Hour}
	m := newTestMemory(t, MemoryConfig{Now: clk.Now, Ban: p})
	if _, err := m.Penalize(context.Background(), "k"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		at   time.Duration
		want int
	}{{30 * time.Second, 0}, {time.Hour, 0}, {time.Hour + time.Minute, 1}} {
		if got := m.Sweep(start.Add(c.at)); got != c.want {
			t.Errorf("Sweep at %s removed %d, want %d", c.at, got, c.want)
		}
	}
}
