// Package testwait waits, in tests, for what real I/O makes true (a server
// ready, a record written by another goroutine, a replica catching up):
// it polls until the condition holds and fails the test when the timeout
// passes first, so no wait is unbounded and none is a bare sleep. Where the
// code under test takes a clock, move the clock instead (internal/testclock).
package testwait

import (
	"testing"
	"time"
)

// Poll is how often a condition is looked at.
const Poll = 10 * time.Millisecond

// Until calls cond every Poll until it returns true, and fails the test
// with what if timeout passes first. Call it from the test's goroutine.
func Until(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	NoError(t, timeout, func() error {
		if cond() {
			return nil
		}
		return notYet(what)
	})
}

// NoError calls cond every Poll until it returns nil, and fails the test
// with its last error if timeout passes first. Call it from the test's
// goroutine.
func NoError(t testing.TB, timeout time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %v", timeout, err)
			return
		}
		time.Sleep(Poll)
	}
}

type notYet string

func (e notYet) Error() string { return string(e) }
