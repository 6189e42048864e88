// Package logging builds the services' slog loggers: JSON lines with the
// keys Google Cloud Logging reads (severity, message, time, trace), so that
// levels and request traces show up in the console without a parser.
package logging

import (
	"context"
	"io"
	"log/slog"
	"strings"
)

// TraceKey is the attribute Cloud Logging uses to group a request's lines.
const TraceKey = "logging.googleapis.com/trace"

// New returns a JSON logger writing to w at level.
func New(w io.Writer, level slog.Level) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{
		Level: level,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) > 0 {
				return a
			}
			switch a.Key {
			case slog.MessageKey:
				a.Key = "message"
			case slog.LevelKey:
				a.Key = "severity"
				a.Value = slog.StringValue(severity(a.Value.Any().(slog.Level)))
			}
			return a
		},
	}))
}

// ParseLevel reads LOG_LEVEL-style names (debug, info, warn, error);
// anything else is info.
func ParseLevel(s string) slog.Level {
	var l slog.Level
	if err := l.UnmarshalText([]byte(strings.TrimSpace(s))); err != nil {
		return slog.LevelInfo
	}
	return l
}

func severity(l slog.Level) string {
	switch {
	case l >= slog.LevelError:
		return "ERROR"
	case l >= slog.LevelWarn:
		return "WARNING"
	case l >= slog.LevelInfo:
		return "INFO"
	default:
		return "DEBUG"
	}
}

// Trace turns an X-Cloud-Trace-Context header ("TRACE_ID/SPAN;o=1") into
// the value Cloud Logging expects, or "" when there is none or it is
// malformed.
func Trace(project, header string) string {
	id, _, _ := strings.Cut(header, "/")
	if len(id) != 32 || project == "" {
		return ""
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return ""
		}
	}
	return "projects/" + project + "/traces/" + id
}

type ctxKey struct{}

// WithLogger stores l in ctx, for request-scoped attributes such as the trace.
func WithLogger(ctx context.Context, l *slog.Logger) context.Context {
	return context.WithValue(ctx, ctxKey{}, l)
}

// From returns the logger stored in ctx, or def.
func From(ctx context.Context, def *slog.Logger) *slog.Logger {
	if l, ok := ctx.Value(ctxKey{}).(*slog.Logger); ok {
		return l
	}
	return def
}
