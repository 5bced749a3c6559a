package attack

import (
	"os/exec"
	"testing"
)

// The availability scenarios at their short sizes. They shrink
// the stores with limits.memory_keys and limits.replay_entries, so that a
// short flood fills them.

func TestFloodReplayFill(t *testing.T) { runFault(t, FaultReplayFill, options(t)) }

func TestFloodReplayFillRedis(t *testing.T) { runFault(t, FaultReplayFill, redisOptions(t)) }

func TestFloodCaptchaBudget(t *testing.T) { runFault(t, FaultCaptchaBudget, options(t)) }

func TestFloodLimiterFull(t *testing.T) { runFault(t, FaultLimiterFull, options(t)) }

func TestFloodOffenceFlood(t *testing.T) { runFault(t, FaultOffenceFlood, redisOptions(t)) }

func TestFloodLogFlood(t *testing.T) { runFault(t, FaultLogFlood, options(t)) }

func redisOptions(t *testing.T) Options {
	t.Helper()
	opt := options(t)
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Skip("redis-server not installed (make deps installs it)")
	}
	opt.Redis = true
	return opt
}

// TestFloodJudge shows every bound able to fail: figures that pass, then
// each pushed past one bound fails exactly that check.
func TestFloodJudge(t *testing.T) {
	good := floodFigures{Short: true, Redis: true, AttackSecs: 10, Target: 1000, Sent: 1000, Answered: 1000, Clients: 1,
		During: 100, DuringOK: 100, After: 30, AfterOK: 30, LegitAll: 140,
		RSS0: 20 << 20, RSSPeak: 30 << 20, Keys0: 30, KeysPeak: 900,
		LogLines: 100*logLinesPerAccept + 500, LogBytes: 100*logBytesPerAccept + 200<<10}
	for _, c := range judge(good) {
		if !c.OK {
			t.Fatalf("passing figures fail %q: %s", c.Name, c.Detail)
		}
	}
	many := good
	many.Many, many.Clients, many.Sent, many.Answered, many.Target = true, 100_000, 100_000, 100_000, 100_000
	many.KeysPeak, many.LogLines, many.LogBytes = 150_000, 100_100, 40<<20
	for _, c := range judge(many) {
		if !c.OK {
			t.Fatalf("passing many-client figures fail %q: %s", c.Name, c.Detail)
		}
	}
	for _, tc := range []struct {
		check string
		base  floodFigures
		mut   func(f *floodFigures)
	}{
		{"the attack reached the service", good, func(f *floodFigures) { f.Answered = 800 }},
		{"legitimate visitors accepted during the attack", good, func(f *floodFigures) { f.DuringOK = 98 }},
		{"legitimate visitors accepted during the attack", good, func(f *floodFigures) {
			f.During, f.DuringOK = 3, 3
			f.LogLines, f.LogBytes = 3*logLinesPerAccept+500, 3*logBytesPerAccept+200<<10
		}},
		{"legitimate visitors accepted after the attack", good, func(f *floodFigures) { f.AfterOK = 29 }},
		{"service memory bounded", good, func(f *floodFigures) { f.RSSPeak = f.RSS0 + RSSGrowthShort + 1<<20 }},
		{"service memory bounded", good, func(f *floodFigures) { f.Short, f.RSSPeak = false, f.RSS0+RSSGrowthFull+1<<20 }},
		{"Redis keys bounded", good, func(f *floodFigures) { f.KeysPeak = 100_000 }},
		{"Redis keys bounded", many, func(f *floodFigures) { f.KeysPeak = 300_000 }},
		{"log volume bounded", good, func(f *floodFigures) { f.LogLines += 2000 }},
		{"log volume bounded", good, func(f *floodFigures) { f.LogBytes += 1 << 20 }},
		{"log volume bounded", many, func(f *floodFigures) { f.LogLines += 20_000 }},
		{"log volume bounded", many, func(f *floodFigures) { f.LogBytes += 20 << 20 }},
	} {
		f := tc.base
		tc.mut(&f)
		for _, c := range judge(f) {
			if (c.Name == tc.check) == c.OK {
				t.Errorf("%s: check %q OK=%v: %s", tc.check, c.Name, c.OK, c.Detail)
			}
		}
	}
}
