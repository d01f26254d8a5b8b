package testwait_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/wardenauthz/warden/internal/testwait"
)

// fatalTB records a Fatalf instead of ending the test.
type fatalTB struct {
	testing.TB
	msg string
}

func (f *fatalTB) Helper() {}
func (f *fatalTB) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
}

func TestUntilHolds(t *testing.T) {
	n := 0
	testwait.Until(t, time.Minute, "never three", func() bool { n++; return n == 3 })
	if n != 3 {
		t.Errorf("cond called %d times, want 3 (it held on the third)", n)
	}
}

func TestUntilTimesOut(t *testing.T) {
	f := &fatalTB{TB: t}
	start := time.Now()
	testwait.Until(f, 30*time.Millisecond, "still false", func() bool { return false })
	if took := time.Since(start); took < 30*time.Millisecond {
		t.Errorf("gave up after %v, before its timeout", took)
	}
	if want := "after 30ms: still false"; f.msg != want {
		t.Errorf("failure: got %q, want %q", f.msg, want)
	}
}

func TestNoErrorReportsTheLastError(t *testing.T) {
	f := &fatalTB{TB: t}
	n := 0
	testwait.NoError(f, 30*time.Millisecond, func() error { n++; return fmt.Errorf("try %d", n) })
	if want := fmt.Sprintf("after 30ms: try %d", n); n < 2 || f.msg != want {
		t.Errorf("failure after %d tries: got %q, want %q", n, f.msg, want)
	}
}
