package server

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/wardenauthz/warden/internal/ratelog"
)

// LogRedisTo sends go-redis's own messages (a failed dial, a pool event) to
// log as warnings, each message at most once per RepeatedLogInterval with a
// suppressed count, as Warden's own per-request warnings are: during a
// Redis outage go-redis would otherwise print a line per failed dial.
// go-redis's logger is process-wide, so the serve command calls this once,
// before any Redis client exists.
func LogRedisTo(log *slog.Logger) {
	redis.SetLogger(redisLogger{slog.New(newRateLogged(log.Handler()))})
}

// newRateLogged is next with warnings once per RepeatedLogInterval.
func newRateLogged(next slog.Handler) slog.Handler {
	return ratelog.New(next, slog.LevelWarn, RepeatedLogInterval, nil)
}

type redisLogger struct{ l *slog.Logger }

// Printf keys the line by go-redis's format string (a constant of its
// source, so the keys are few) and carries the formatted text as detail.
func (r redisLogger) Printf(ctx context.Context, format string, v ...any) {
	r.l.WarnContext(ctx, "redis client: "+strings.TrimPrefix(format, "redis: "), "detail", fmt.Sprintf(format, v...))
}
