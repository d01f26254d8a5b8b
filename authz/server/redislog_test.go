package server

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
)

// TestRedisLoggerOneLinePerInterval: go-redis's repeated messages (a dial
// failing on every request while Redis is down) come out once per interval,
// with what they said.
func TestRedisLoggerOneLinePerInterval(t *testing.T) {
	var buf bytes.Buffer
	base := slog.New(slog.NewTextHandler(&buf, nil))
	l := redisLogger{slog.New(newRateLogged(base.Handler()))}
	for i := 0; i < 50; i++ {
		l.Printf(context.Background(), "redis: connection pool: failed to dial after %d attempts: %v", 5, "connection refused")
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 1 {
		t.Fatalf("%d lines, want 1:\n%s", len(lines), buf.String())
	}
	if !strings.Contains(lines[0], "failed to dial after 5 attempts: connection refused") || !strings.Contains(lines[0], "level=WARN") {
		t.Errorf("line: %s", lines[0])
	}
}
