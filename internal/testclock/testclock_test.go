package testclock_test

import (
	"testing"
	"time"

	"github.com/wardenauthz/warden/internal/testclock"
)

func TestClock(t *testing.T) {
	t0 := time.Date(2026, 6, 2, 14, 30, 0, 0, time.UTC)
	c := testclock.New(t0)
	if got := c.Now(); !got.Equal(t0) {
		t.Errorf("New: got %v, want %v", got, t0)
	}
	c.Add(90 * time.Second)
	if got, want := c.Now(), t0.Add(90*time.Second); !got.Equal(want) {
		t.Errorf("Add: got %v, want %v", got, want)
	}
	c.Set(t0)
	if got := c.Now(); !got.Equal(t0) {
		t.Errorf("Set: got %v, want %v", got, t0)
	}
}
