package guard

import (
	"context"
	"log/slog"
	"runtime"
	"time"
)

func (g *Guard) logBan(ctx context.Context, clientKey string, ban time.Duration, err error) {
	if err != nil {
		g.stats.penaltyErrors.Add(1)
		g.logLine(ctx, slog.LevelWarn, "formguard ban store error", slog.String("client", clientKey), slog.Any("err", err))
	} else if ban > 0 {
		g.logLine(ctx, slog.LevelInfo, "formguard client banned", slog.String("client", clientKey), slog.String("for", ban.String()))
	}
}

// decisionPC is the source position a handler with AddSource reports for
// the guard's log lines: taken once here, since runtime.Callers on every
// line would cost more than formatting the line.
var decisionPC = callerPC()

func callerPC() uintptr {
	var pcs [1]uintptr
	runtime.Callers(2, pcs[:])
	return pcs[0]
}

// logDecision writes the one log line of a decision. The record is handed
// to the handler directly: the attributes fit the record's inline space
// (one more for a rejection's reason) and no call stack is walked.
func (g *Guard) logDecision(ctx context.Context, form, clientKey string, sub *Submission, err *Error) {
	h := g.log.Handler()
	if !h.Enabled(ctx, slog.LevelInfo) {
		return
	}
	r := slog.NewRecord(time.Now(), slog.LevelInfo, "formguard decision", decisionPC)
	if err == nil {
		r.AddAttrs(slog.String("form", form), slog.String("outcome", "accepted"), slog.String("id", sub.ID),
			slog.String("client", clientKey), slog.Int("recipients", len(sub.Recipients)))
	} else {
		r.AddAttrs(slog.String("form", truncate(form, 64)), slog.String("outcome", "rejected"),
			slog.String("code", err.Code), slog.Int("status", err.Status), slog.String("client", clientKey))
		if err.Cause != nil {
			r.AddAttrs(slog.String("reason", err.Cause.Error()))
		}
	}
	_ = h.Handle(ctx, r)
}

// logLine is Logger.LogAttrs without the call stack walk (see decisionPC).
func (g *Guard) logLine(ctx context.Context, level slog.Level, msg string, attrs ...slog.Attr) {
	h := g.log.Handler()
	if !h.Enabled(ctx, level) {
		return
	}
	r := slog.NewRecord(time.Now(), level, msg, decisionPC)
	r.AddAttrs(attrs...)
	_ = h.Handle(ctx, r)
}
