package decisionlog

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
)

type countSink struct{ lines atomic.Int64 }

func (c *countSink) WriteLine([]byte) error { c.lines.Add(1); return nil }
func (c *countSink) Flush() error           { return nil }
func (c *countSink) Close() error           { return nil }

// TestEveryRecordWrittenOrCounted: N concurrent records give exactly N lines,
// or exactly N lines plus counted drops when the buffer overflows.
func TestEveryRecordWrittenOrCounted(t *testing.T) {
	for _, size := range []int{100000, 8} {
		sink := &countSink{}
		var dropped atomic.Int64
		l := NewDecisionLog(size, RecordLimits{}, []LineSink{sink}, func() { dropped.Add(1) })
		const n = 20000
		var wg sync.WaitGroup
		for g := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range n / 8 {
					l.Record(&Record{DecisionID: "d", Decision: "deny", Node: string(rune('a' + g)), LatencyUS: int64(i)})
				}
			}()
		}
		wg.Wait()
		if err := l.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		if got := sink.lines.Load() + dropped.Load(); got != n {
			t.Errorf("buffer %d: %d written + %d dropped = %d, want %d", size, sink.lines.Load(), dropped.Load(), got, n)
		}
		if size == 100000 && dropped.Load() != 0 {
			t.Errorf("large buffer dropped %d", dropped.Load())
		}
	}
}

type failSink struct{ countSink }

func (f *failSink) WriteLine([]byte) error { return errors.New("disk full") }

// TestSinkErrorsReported: a failing sink is reported on every write, and
// the other sinks still get every record.
func TestSinkErrorsReported(t *testing.T) {
	good := &countSink{}
	var errs atomic.Int64
	l := NewDecisionLog(100, RecordLimits{}, []LineSink{&failSink{}, good}, nil)
	l.OnError = func(error) { errs.Add(1) }
	for range 10 {
		l.Record(&Record{DecisionID: "d"})
	}
	if err := l.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if errs.Load() != 10 || good.lines.Load() != 10 {
		t.Errorf("errors %d (want 10), good sink %d lines (want 10)", errs.Load(), good.lines.Load())
	}
}
