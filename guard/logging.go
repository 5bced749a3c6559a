package guard

import (
	"context"
	"github.com/formguard/formguard/post"
	"log/slog"
	"runtime"
	"time"
)

// Codes the ban lines are sampled under, next to the decisions' own codes.
const (
	codeBanStoreError = "ban_store_error"
	codeClientBanned  = "client_banned"
)

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
//
// Rejections are sampled per client and code (see logSampler): a flood
// from one client costs a few lines a minute and a summary with the count,
// not a line per request. Accepts are not sampled: each is a message on
// its way out, and the limits already bound them per client.
func (g *Guard) logDecision(ctx context.Context, form, clientKey string, sub *post.Submission, err *Error) {
	h := g.log.Handler()
	if !h.Enabled(ctx, slog.LevelInfo) {
		return
	}
	if err != nil && !g.sampled(ctx, h, clientKey, err.Code, slog.LevelInfo) {
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
			r.AddAttrs(slog.String("reason", clip(err.Cause.Error())))
		}
	}
	_ = h.Handle(ctx, r)
}

// sampled asks the sampler whether a line for (clientKey, code) is
// written, writing the summaries due first and counting a line left out.
func (g *Guard) sampled(ctx context.Context, h slog.Handler, clientKey, code string, level slog.Level) bool {
	var buf [4]summary
	ok, due := g.logs.admit(clientKey, code, level, g.now(), buf[:0])
	for _, s := range due {
		if !h.Enabled(ctx, s.level) {
			continue
		}
		r := slog.NewRecord(time.Now(), s.level, "formguard decisions suppressed", decisionPC)
		r.AddAttrs(slog.String("client", s.client), slog.String("code", s.code), slog.Uint64("count", s.count))
		_ = h.Handle(ctx, r)
	}
	if !ok {
		g.stats.logSuppressed.Add(1)
	}
	return ok
}

func (g *Guard) logBan(ctx context.Context, clientKey string, ban time.Duration, err error) {
	if err != nil {
		g.stats.penaltyErrors.Add(1)
		g.logSampled(ctx, slog.LevelWarn, "formguard ban store error", clientKey, codeBanStoreError, slog.String("err", clip(err.Error())))
	} else if ban > 0 {
		g.logSampled(ctx, slog.LevelInfo, "formguard client banned", clientKey, codeClientBanned, slog.Int64("for_ms", ban.Milliseconds()))
	}
}

// logSampled writes a line sampled under (clientKey, code), without the
// call stack walk of Logger.LogAttrs (see decisionPC).
func (g *Guard) logSampled(ctx context.Context, level slog.Level, msg, clientKey, code string, attr slog.Attr) {
	h := g.log.Handler()
	if !h.Enabled(ctx, level) || !g.sampled(ctx, h, clientKey, code, level) {
		return
	}
	r := slog.NewRecord(time.Now(), level, msg, decisionPC)
	r.AddAttrs(slog.String("client", clientKey), attr)
	_ = h.Handle(ctx, r)
}
