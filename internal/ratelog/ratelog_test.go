package ratelog

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func lines(t *testing.T, b *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(b.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	b.Reset()
	return out
}

// One line per interval per message, the next one counting the suppressed;
// Info and below are never suppressed; derived loggers share the allowance.
func TestOneLinePerInterval(t *testing.T) {
	var buf bytes.Buffer
	c := &clock{time.Unix(1_800_000_000, 0)}
	log := slog.New(New(slog.NewJSONHandler(&buf, nil), slog.LevelWarn, 10*time.Second, c.now))
	sub := log.With("component", "store")
	for i := range 1000 {
		log.Warn("revocation check failed; denying", "i", i)
		sub.Warn("revocation check failed; denying", "i", i)
		log.Error("check failed; denying")
		log.Info("routine")
	}
	got := lines(t, &buf)
	if len(got) != 2+1000 {
		t.Fatalf("%d lines, want one warn, one error and the 1000 info lines", len(got))
	}
	c.t = c.t.Add(9 * time.Second)
	log.Warn("revocation check failed; denying")
	if got := lines(t, &buf); len(got) != 0 {
		t.Fatalf("inside the interval: %v", got)
	}
	c.t = c.t.Add(time.Second)
	log.Warn("revocation check failed; denying")
	got = lines(t, &buf)
	if len(got) != 1 || got[0][SuppressedKey] != float64(2000) {
		t.Fatalf("after the interval: %v, want one line with suppressed=2000", got)
	}
}

// Distinct messages beyond MaxKeys share one allowance: the tracked set
// stays bounded and a flood of new messages is limited too.
func TestKeysBounded(t *testing.T) {
	var buf bytes.Buffer
	c := &clock{time.Unix(1_800_000_000, 0)}
	h := New(slog.NewJSONHandler(&buf, nil), slog.LevelWarn, time.Minute, c.now)
	log := slog.New(h)
	for i := range 10 * MaxKeys {
		log.Warn("message " + strconv.Itoa(i))
	}
	if n := len(h.(*handler).s.keys); n > MaxKeys+1 {
		t.Errorf("%d keys tracked, bound %d", n, MaxKeys+1)
	}
	if got := lines(t, &buf); len(got) != MaxKeys+1 {
		t.Errorf("%d lines, want %d (one per tracked message and one shared)", len(got), MaxKeys+1)
	}
}
