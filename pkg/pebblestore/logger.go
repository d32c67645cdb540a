package pebblestore

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
)

// pebbleLogger adapts slog to pebble.Logger. Pebble's informational
// messages (WAL replay, file counts) go to Debug, its errors to Error.
type pebbleLogger struct{ l *slog.Logger }

func (p pebbleLogger) Infof(format string, args ...any) {
	p.logf(slog.LevelDebug, format, args...)
}

func (p pebbleLogger) Errorf(format string, args ...any) {
	p.logf(slog.LevelError, format, args...)
}

// Fatalf logs and panics: Pebble calls it on unrecoverable states (such as
// detected corruption) and expects it not to return.
func (p pebbleLogger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	p.l.Error(msg, "fatal", true)
	panic("pebblestore: pebble fatal: " + msg)
}

func (p pebbleLogger) logf(level slog.Level, format string, args ...any) {
	ctx := context.Background()
	if !p.l.Enabled(ctx, level) {
		return
	}
	p.l.Log(ctx, level, strings.TrimSpace(fmt.Sprintf(format, args...)))
}
