package guard_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/formguard/formguard/guard"
)

type logLine struct {
	Msg    string `json:"msg"`
	Client string `json:"client"`
	Code   string `json:"code"`
	Count  uint64 `json:"count"`
	Reason string `json:"reason"`
}

func readLines(t *testing.T, b *bytes.Buffer) []logLine {
	t.Helper()
	var out []logLine
	s := bufio.NewScanner(b)
	for s.Scan() {
		if len(s.Bytes()) > 1024 {
			t.Errorf("log line of %d bytes: %.200s", len(s.Bytes()), s.Bytes())
		}
		var l logLine
		if err := json.Unmarshal(s.Bytes(), &l); err != nil {
			t.Fatalf("%v: %s", err, s.Bytes())
		}
		out = append(out, l)
	}
	return out
}

// TestLogFloodIsSampled: a flood of refusals from one client costs a few
// lines and one summary with the exact count, and other clients still get
// their own lines (issue 14, item 5).
func TestLogFloodIsSampled(t *testing.T) {
	var buf bytes.Buffer
	g, c := newGuard(t, func(cfg *guard.Config) { cfg.Logger = slog.New(slog.NewJSONHandler(&buf, nil)) })
	const flood = 10_000
	for range flood {
		if _, err := g.CheckForm(nil, req{remote: "192.0.2.1:1", body: contact("phone", "1")}.build(), "contact"); !isCode(err, "unknown_field") {
			t.Fatal(err)
		}
		c.Add(time.Millisecond)
	}
	if _, err := g.CheckForm(nil, req{remote: "192.0.2.2:1", body: contact("phone", "1")}.build(), "contact"); !isCode(err, "unknown_field") {
		t.Fatal(err)
	}
	if _, err := g.CheckForm(nil, req{remote: "192.0.2.2:1", body: contact()}.build(), "contact"); err != nil {
		t.Fatal(err)
	}
	lines := readLines(t, &buf)
	if len(lines) != 5+2 {
		t.Fatalf("%d lines during the flood, want 5 of the flooding client and 2 of the other", len(lines))
	}
	flooder := lines[0].Client
	if lines[5].Client == flooder || lines[6].Client == flooder {
		t.Fatalf("the other client's lines are missing: %+v", lines[5:])
	}
	if got := g.Stats().LogSuppressed; got != flood-5 {
		t.Fatalf("LogSuppressed = %d, want %d", got, flood-5)
	}

	c.Add(time.Minute)
	if _, err := g.CheckForm(nil, req{remote: "192.0.2.1:1", body: contact("phone", "1")}.build(), "contact"); !isCode(err, "unknown_field") {
		t.Fatal(err)
	}
	lines = readLines(t, &buf)
	if len(lines) != 2 {
		t.Fatalf("after the window: %+v, want a summary and the next line", lines)
	}
	if s := lines[0]; s.Msg != "formguard decisions suppressed" || s.Client != flooder || s.Code != "unknown_field" || s.Count != flood-5 {
		t.Errorf("summary %+v, want client %s code unknown_field count %d", s, flooder, flood-5)
	}
	if l := lines[1]; l.Msg != "formguard decision" || l.Client != flooder {
		t.Errorf("line after the summary: %+v", l)
	}
}

// TestBanLinesAreSampled: a banned client posting honeypots gets a few
// "client banned" lines, not one per post.
func TestBanLinesAreSampled(t *testing.T) {
	var buf bytes.Buffer
	g, _ := newGuard(t, func(cfg *guard.Config) { cfg.Logger = slog.New(slog.NewJSONHandler(&buf, nil)) })
	for range 1000 {
		if _, err := g.CheckForm(nil, req{body: contact("_gotcha", "x")}.build(), "contact"); !isCode(err, "honeypot") {
			t.Fatal(err)
		}
	}
	n := 0
	for _, l := range readLines(t, &buf) {
		if strings.Contains(l.Msg, "banned") {
			n++
		}
	}
	if n == 0 || n > 5 {
		t.Fatalf("%d ban lines for 1000 offences of one client, want 1 to 5", n)
	}
}
