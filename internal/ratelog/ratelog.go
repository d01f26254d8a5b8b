// Package ratelog rate-limits repeated log lines: an slog.Handler that
// writes a message (at Warn or above) at most once per interval, and adds
// to the next line of that message how many it suppressed in between. A
// failing dependency (Redis stopped) then costs one line per interval, not
// one per request; the metrics still count every failure.
package ratelog

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// MaxKeys bounds the messages tracked apart; further ones share one
// allowance per level (messages are constants, so this is a safety net).
const MaxKeys = 256

// SuppressedKey is the attribute that counts the lines suppressed since the
// last one of the same message.
const SuppressedKey = "suppressed"

// New wraps next: records at min level or above with the same level and
// message are written at most once per interval. now is the clock (nil:
// time.Now).
func New(next slog.Handler, min slog.Level, interval time.Duration, now func() time.Time) slog.Handler {
	if now == nil {
		now = time.Now
	}
	return &handler{next: next, s: &state{min: min, interval: interval, now: now, keys: map[key]*entry{}}}
}

type key struct {
	level slog.Level
	msg   string
}

type entry struct {
	last       time.Time
	suppressed int
}

// state is shared by a handler and those derived from it (WithAttrs,
// WithGroup): a message is one message whatever its logger's attributes.
type state struct {
	min      slog.Level
	interval time.Duration
	now      func() time.Time
	mu       sync.Mutex
	keys     map[key]*entry
}

type handler struct {
	next slog.Handler
	s    *state
}

func (h *handler) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

func (h *handler) WithAttrs(as []slog.Attr) slog.Handler {
	return &handler{next: h.next.WithAttrs(as), s: h.s}
}

func (h *handler) WithGroup(name string) slog.Handler {
	return &handler{next: h.next.WithGroup(name), s: h.s}
}

func (h *handler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level < h.s.min {
		return h.next.Handle(ctx, r)
	}
	n, ok := h.s.admit(key{r.Level, r.Message})
	if !ok {
		return nil
	}
	if n > 0 {
		r = r.Clone()
		r.AddAttrs(slog.Int(SuppressedKey, n))
	}
	return h.next.Handle(ctx, r)
}

// admit reports whether a line of k is written now, and how many were
// suppressed before it.
func (s *state) admit(k key) (int, bool) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.keys[k]
	if e == nil {
		if len(s.keys) >= MaxKeys {
			k.msg = "" // the shared allowance
			e = s.keys[k]
		}
		if e == nil {
			e = &entry{}
			s.keys[k] = e
			e.last = now
			return 0, true
		}
	}
	if now.Sub(e.last) < s.interval {
		e.suppressed++
		return 0, false
	}
	n := e.suppressed
	e.last, e.suppressed = now, 0
	return n, true
}
