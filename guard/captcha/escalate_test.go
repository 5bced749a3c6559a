package captcha

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestEscalator(t *testing.T) {
	type step struct {
		advance  time.Duration
		offences int
		key      string
		want     int64
	}
	tests := []struct {
		name  string
		cfg   EscalatorConfig
		steps []step
	}{
		{"an unknown client gets factor 1", EscalatorConfig{}, []step{{key: "a", want: 1}}},
		{"each offence doubles the factor", EscalatorConfig{}, []step{
			{offences: 1, key: "a", want: 2},
			{offences: 2, key: "a", want: 8},
			{key: "b", want: 1},
		}},
		{"the factor is capped", EscalatorConfig{MaxFactor: 16}, []step{{offences: 100, key: "a", want: 16}}},
		{"offences expire a window after the first", EscalatorConfig{Window: time.Minute}, []step{
			{offences: 3, key: "a", want: 8},
			{advance: 59 * time.Second, key: "a", want: 8},
			{advance: time.Second, key: "a", want: 1},
		}},
		{"a full escalator stops tracking new keys", EscalatorConfig{MaxEntries: 1}, []step{
			{offences: 1, key: "a", want: 2},
			{offences: 5, key: "b", want: 1},
			{offences: 1, key: "a", want: 4},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newClock()
			tc.cfg.Now = c.Now
			e, err := NewEscalator(tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			for i, s := range tc.steps {
				c.Advance(s.advance)
				for range s.offences {
					e.Offence(s.key)
				}
				if got := e.Factor(s.key); got != s.want {
					t.Fatalf("step %d: Factor(%q) = %d, want %d", i, s.key, got, s.want)
				}
			}
		})
	}
	t.Run("negative settings are refused", func(t *testing.T) {
		if _, err := NewEscalator(EscalatorConfig{Window: -1}); !errors.Is(err, ErrConfig) {
			t.Fatal(err)
		}
	})
}

func TestEscalatorDrivesPoW(t *testing.T) {
	c := newClock()
	esc, err := NewEscalator(EscalatorConfig{Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	p, err := NewPoW(PoWConfig{Keys: [][]byte{keyA}, MaxNumber: 100, Escalate: esc.Factor, Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	esc.Offence("noisy")
	esc.Offence("noisy")
	for _, tc := range []struct {
		key  string
		want int64
	}{{"calm", 100}, {"noisy", 400}} {
		ch, err := p.Challenge("contact", tc.key)
		if err != nil {
			t.Fatal(err)
		}
		if ch.MaxNumber != tc.want {
			t.Errorf("%s: MaxNumber %d, want %d", tc.key, ch.MaxNumber, tc.want)
		}
		if err := p.Verify(context.Background(), Request{Form: "contact", Token: payload(t, ch, solve(t, ch))}); err != nil {
			t.Errorf("%s: %v", tc.key, err)
		}
	}
}
