package guard

import (
	"log/slog"
	"sync"
	"time"
)

// Log sampling bounds. One client repeating one outcome gets sampleBurst
// lines per sampleWindow, then a summary line with the count of the lines
// left out; at most maxSampledKeys (client, code) pairs are tracked, and
// pairs beyond that share one more sampleBurst per sampleWindow.
const (
	sampleBurst    = 5
	sampleWindow   = time.Minute
	maxSampledKeys = 10_000
	maxLogAttr     = 200 // bytes of a free-text attribute (a rejection's reason)
)

// overflowKey names the pairs that found the sampler full in summaries.
var overflowKey = sampleKey{client: "(other clients)", code: "(any)"}

// logSampler decides which log lines of repeated outcomes are written. It
// keeps, per (client, code), the start of the current window, the lines
// written in it and the lines left out since the last summary. A pair is
// forgotten (and its summary due) once its window is over; the map is
// swept once per window, so it holds only pairs seen in the last two
// windows, and never more than maxSampledKeys.
type logSampler struct {
	mu       sync.Mutex
	seen     map[sampleKey]sampleCount
	overflow sampleCount
	swept    time.Time
}

type sampleKey struct{ client, code string }

type sampleCount struct {
	start      time.Time
	lines      int
	suppressed uint64
	level      slog.Level // the highest level left out, for the summary
}

// summary is a line saying how many lines of one pair were left out.
type summary struct {
	sampleKey
	count uint64
	level slog.Level
}

// admit reports whether a line for (client, code) at level is written at
// now, and appends to due the summaries to write before it.
func (s *logSampler) admit(client, code string, level slog.Level, now time.Time, due []summary) (bool, []summary) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if now.Sub(s.swept) >= sampleWindow {
		due = s.sweepLocked(now, due)
	}
	k := sampleKey{client, code}
	c, ok := s.seen[k]
	full := !ok && len(s.seen) >= maxSampledKeys
	if full {
		k, c = overflowKey, s.overflow
	} else if !ok {
		c.start = now
	}
	if now.Sub(c.start) >= sampleWindow {
		due = appendSummary(due, k, c)
		c = sampleCount{start: now}
	}
	written := c.lines < sampleBurst
	if written {
		c.lines++
	} else {
		c.suppressed++
		c.level = max(c.level, level)
	}
	if full {
		s.overflow = c
	} else {
		if s.seen == nil {
			s.seen = make(map[sampleKey]sampleCount)
		}
		s.seen[k] = c
	}
	return written, due
}

// sweepLocked forgets the pairs whose window is over, summarising those
// that had lines left out.
func (s *logSampler) sweepLocked(now time.Time, due []summary) []summary {
	s.swept = now
	for k, c := range s.seen {
		if now.Sub(c.start) >= sampleWindow {
			due = appendSummary(due, k, c)
			delete(s.seen, k)
		}
	}
	if now.Sub(s.overflow.start) >= sampleWindow {
		due = appendSummary(due, overflowKey, s.overflow)
		s.overflow = sampleCount{start: now}
	}
	return due
}

func appendSummary(due []summary, k sampleKey, c sampleCount) []summary {
	if c.suppressed == 0 {
		return due
	}
	return append(due, summary{sampleKey: k, count: c.suppressed, level: c.level})
}

// clip cuts s to at most maxLogAttr bytes, on a UTF-8 boundary, so one
// line's size is bounded whatever the cause of a rejection quotes.
func clip(s string) string {
	if len(s) <= maxLogAttr {
		return s
	}
	i := maxLogAttr
	for i > 0 && s[i]&0xC0 == 0x80 {
		i--
	}
	return s[:i] + "…"
}
