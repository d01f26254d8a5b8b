// Package testclock is a settable clock for tests: code under test takes a
// `func() time.Time` (STYLE.md 7), and a test passes Clock.Now and moves
// time with Add instead of sleeping. It is safe for concurrent use.
package testclock

import (
	"sync/atomic"
	"time"
)

// Clock is a time that moves only when told.
type Clock struct{ ns atomic.Int64 }

// New returns a clock reading start.
func New(start time.Time) *Clock {
	c := &Clock{}
	c.ns.Store(start.UnixNano())
	return c
}

// Now is the clock's time; pass it where a `func() time.Time` is taken.
func (c *Clock) Now() time.Time { return time.Unix(0, c.ns.Load()) }

// Add moves the clock by d.
func (c *Clock) Add(d time.Duration) { c.ns.Add(int64(d)) }

// Set moves the clock to t.
func (c *Clock) Set(t time.Time) { c.ns.Store(t.UnixNano()) }
