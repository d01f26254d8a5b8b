// Package testlog tees what the test suite's Wardens log and record into
// the directory named by WARDEN_TEST_CAPTURE, so that one scan after the
// whole suite (internal/secretscan, run by `go tool task test`) can look
// at every log line and decision record for tokens and secrets. Without
// the variable it does nothing.
package testlog

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
)

// Env names the capture directory.
const Env = "WARDEN_TEST_CAPTURE"

var unsafe = regexp.MustCompile(`[^A-Za-z0-9_.-]+`)

// file is the capture file for t and kind ("slog", "records"...), opened
// for appending; nil without capture.
func file(t testing.TB, kind string) io.Writer {
	dir := os.Getenv(Env)
	if dir == "" {
		return nil
	}
	name := fmt.Sprintf("%s.%s.%d.log", unsafe.ReplaceAllString(t.Name(), "_"), kind, os.Getpid())
	f, err := os.OpenFile(filepath.Join(dir, name), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatalf("%s: %v", Env, err)
	}
	mu := &sync.Mutex{}
	t.Cleanup(func() { mu.Lock(); defer mu.Unlock(); f.Close() })
	return &lockedWriter{mu: mu, w: f}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// Writer tees w (decision records, a CLI's output) into the capture; w may
// be nil.
func Writer(t testing.TB, kind string, w io.Writer) io.Writer {
	c := file(t, kind)
	switch {
	case c == nil && w == nil:
		return io.Discard
	case c == nil:
		return w
	case w == nil:
		return c
	}
	return io.MultiWriter(w, c)
}

// Logger tees l (nil: none) into the capture as JSON at debug level, the
// most a Warden ever logs.
func Logger(t testing.TB, l *slog.Logger) *slog.Logger {
	c := file(t, "slog")
	if c == nil {
		if l == nil {
			return slog.New(slog.DiscardHandler)
		}
		return l
	}
	h := slog.Handler(slog.NewJSONHandler(c, &slog.HandlerOptions{Level: slog.LevelDebug}))
	if l != nil {
		h = slog.NewMultiHandler(l.Handler(), h)
	}
	return slog.New(h)
}

// Secret registers values that must never appear in any capture (admin
// tokens, cookies, passwords) with the scan.
func Secret(t testing.TB, secrets ...string) {
	w := file(t, "secrets")
	if w == nil {
		return
	}
	for _, s := range secrets {
		if strings.ContainsAny(s, "\n") || len(s) < 8 {
			t.Fatalf("testlog.Secret: %q must be one line of 8 bytes or more", s)
		}
		fmt.Fprintln(w, s)
	}
}

// Enabled reports whether the suite is being captured.
func Enabled() bool { return os.Getenv(Env) != "" }
