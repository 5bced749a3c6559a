package server

import (
	"io"
	"log/slog"
	"os"

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
