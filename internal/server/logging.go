package server

import (
	"context"
	"io"
	"log/slog"
	"os"
	"runtime"
	"time"

	"github.com/formguard/formguard/internal/config"
)

// NewLogger builds the service's logger: JSON, or text when format is
// "text", or "auto" and w is a terminal.
func NewLogger(c config.Log, w io.Writer) *slog.Logger {
	var level slog.Level
	switch c.Level {
	case "debug":
		level = slog.LevelDebug
	case "warn":
		level = slog.LevelWarn
	case "error":
		level = slog.LevelError
	default:
		level = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: level}
	text := c.Format == config.LogText
	if c.Format == config.LogAuto || c.Format == "" {
		text = isTerminal(w)
	}
	if text {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// logPC is the source position a handler with AddSource reports for the
// lines logAttrs writes: taken once, since walking the stack for every
// line on the request path costs more than formatting it.
var logPC = callerPC()

func callerPC() uintptr {
	var pcs [1]uintptr
	runtime.Callers(2, pcs[:])
	return pcs[0]
}

// logAttrs is l.LogAttrs for the request path: the record goes straight
// to the handler, with no stack walk.
func logAttrs(ctx context.Context, l *slog.Logger, level slog.Level, msg string, attrs ...slog.Attr) {
	h := l.Handler()
	if !h.Enabled(ctx, level) {
		return
	}
	r := slog.NewRecord(time.Now(), level, msg, logPC)
	r.AddAttrs(attrs...)
	_ = h.Handle(ctx, r)
}
