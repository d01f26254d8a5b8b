package decisionlog

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wardenauthz/warden/internal/testwait"
)

// flushSink counts lines and flushes.
type flushSink struct {
	countSink
	flushes atomic.Int64
}

func (f *flushSink) Flush() error { f.flushes.Add(1); return nil }

// TestBatchUnderSteadyLoad: records arriving faster than the batch
// interval are written in batches, not each with its own flush (a write
// system call for a file sink) and goroutine wake-up as before; none is
// lost.
func TestBatchUnderSteadyLoad(t *testing.T) {
	const batch, n = 50 * time.Millisecond, 200
	sink := &flushSink{}
	l := New(Options{Size: 8192, Sinks: []LineSink{sink}, Batch: batch})
	at := time.Now()
	for i := range n {
		l.Record(&Record{DecisionID: "d", Decision: "allow", LatencyUS: int64(i)})
		time.Sleep(100 * time.Microsecond)
	}
	elapsed := time.Since(at)
	if err := l.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := sink.lines.Load(); got != n {
		t.Fatalf("%d lines written, want %d", got, n)
	}
	// One flush at the first record, one an interval at most (twice for
	// slack), one at Close.
	if got, most := sink.flushes.Load(), 2*int64(elapsed/batch)+3; got > most {
		t.Errorf("%d flushes for %d records over %v, want at most %d (batches of %v)", got, n, elapsed, most, batch)
	}
}

// waitSleeping waits until l's writer waits out its interval.
func waitSleeping(t *testing.T, l *DecisionLog) {
	t.Helper()
	testwait.Until(t, 5*time.Second, "the writer waiting out its interval", l.sleeping.Load)
}

// waitingLog is a log of size records (limits lim) whose writer has
// written one record and then waits out an hour's interval; rec records
// another.
func waitingLog(t *testing.T, size int, lim RecordLimits) (l *DecisionLog, sink *flushSink, rec func()) {
	t.Helper()
	sink = &flushSink{}
	l = New(Options{Size: size, Sinks: []LineSink{sink}, Batch: time.Hour, Limits: lim})
	rec = func() { l.Record(&Record{DecisionID: "d", Decision: "deny", Reason: "a reason of some length"}) }
	rec()
	testwait.Until(t, 5*time.Second, "the first record written", func() bool { return sink.lines.Load() == 1 })
	waitSleeping(t, l)
	return l, sink, rec
}

// TestBatchWakes: a record to an idle log is written at once; records
// gathering while the writer waits wake it when they fill half the buffer
// in count (or, below, in bytes), so a small buffer drops no more than
// it would without batches; Close does not wait out the interval.
func TestBatchWakes(t *testing.T) {
	l, sink, rec := waitingLog(t, 8, RecordLimits{})
	for range 3 {
		rec()
	}
	time.Sleep(20 * time.Millisecond)
	if got := sink.lines.Load(); got != 1 {
		t.Fatalf("%d lines with 3 records gathering (under half the buffer of 8), want 1", got)
	}
	rec() // 4 of 8: half the buffer
	testwait.Until(t, 5*time.Second, "the writer woken by half a buffer", func() bool { return sink.lines.Load() == 5 })
	waitSleeping(t, l)
	rec()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := l.Close(ctx); err != nil {
		t.Fatalf("Close with the writer waiting an hour: %v", err)
	}
	if got := sink.lines.Load(); got != 6 {
		t.Errorf("%d lines after Close, want 6", got)
	}
}

func TestBatchWakesOnBytes(t *testing.T) {
	probe := &Record{DecisionID: "d", Decision: "deny", Reason: "a reason of some length"}
	p := New(Options{Size: 8, Batch: -1})
	p.Record(probe)
	if err := p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	cost := probe.cost
	// Half the buffer's bytes is two records; half its count is 500.
	l, sink, rec := waitingLog(t, 1000, RecordLimits{BufferBytes: 4 * cost})
	defer l.Close(context.Background())
	rec()
	time.Sleep(20 * time.Millisecond)
	if got := sink.lines.Load(); got != 1 {
		t.Fatalf("%d lines with one record's bytes gathering, want 1", got)
	}
	rec()
	testwait.Until(t, 5*time.Second, "the writer woken by half the buffer's bytes", func() bool { return sink.lines.Load() == 3 })
}

// TestSync: Sync returns once the records queued before it are written
// and flushed, the writer waiting out its interval or not (the admin API's
// queries call it: a decision made before a query is in its answer).
func TestSync(t *testing.T) {
	l, sink, rec := waitingLog(t, 8, RecordLimits{})
	rec()
	rec()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	flushes := sink.flushes.Load()
	if err := l.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if got := sink.lines.Load(); got != 3 {
		t.Errorf("%d lines after Sync, want 3", got)
	}
	if sink.flushes.Load() == flushes {
		t.Error("Sync returned before a flush")
	}
	if err := l.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := l.Sync(ctx); err != nil {
		t.Errorf("Sync after Close: %v", err)
	}
}
