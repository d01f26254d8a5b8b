package decisionlog

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wardenauthz/warden/internal/testwait"
)

type countSink struct{ lines atomic.Int64 }

func (c *countSink) WriteLine([]byte) error { c.lines.Add(1); return nil }
func (c *countSink) Flush() error           { return nil }
func (c *countSink) Close() error           { return nil }

// metric reads a counter the log registered on reg, by name.
func metric(t *testing.T, reg *prometheus.Registry, name string) int64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return int64(mf.GetMetric()[0].GetCounter().GetValue())
		}
	}
	t.Fatalf("metric %s not registered", name)
	return 0
}

// TestEveryRecordWrittenOrCounted: N concurrent records give exactly N lines,
// or exactly N lines plus counted drops when the buffer overflows.
func TestEveryRecordWrittenOrCounted(t *testing.T) {
	for _, size := range []int{100000, 8} {
		sink := &countSink{}
		reg := prometheus.NewRegistry()
		l := New(Options{Size: size, Sinks: []LineSink{sink}, Registerer: reg})
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
		dropped := metric(t, reg, "warden_decision_log_dropped_total")
		if got := sink.lines.Load() + dropped; got != n {
			t.Errorf("buffer %d: %d written + %d dropped = %d, want %d", size, sink.lines.Load(), dropped, got, n)
		}
		if size == 100000 && dropped != 0 {
			t.Errorf("large buffer dropped %d", dropped)
		}
	}
}

type failSink struct{ countSink }

func (f *failSink) WriteLine([]byte) error { return errors.New("disk full") }

// TestSinkErrorsReported: a failing sink is reported and counted on every
// write, from the first record on (the hook is given to New), and the
// other sinks still get every record.
func TestSinkErrorsReported(t *testing.T) {
	good := &countSink{}
	var errs atomic.Int64
	reg := prometheus.NewRegistry()
	ring := NewRing(100, 0)
	l := New(Options{Size: 100, Sinks: []LineSink{&failSink{}, good}, Registerer: reg,
		OnError: func(error) { errs.Add(1) }, Keep: ring})
	for range 10 {
		l.Record(&Record{DecisionID: "d"})
	}
	if err := l.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if errs.Load() != 10 || good.lines.Load() != 10 {
		t.Errorf("errors %d (want 10), good sink %d lines (want 10)", errs.Load(), good.lines.Load())
	}
	if n := metric(t, reg, "warden_decision_log_write_errors_total"); n != 10 {
		t.Errorf("warden_decision_log_write_errors_total = %d, want 10", n)
	}
	if n, _ := ring.Len(); n != 10 {
		t.Errorf("ring kept %d records, want 10", n)
	}
}

type closeFailSink struct {
	countSink
	err error
}

func (c *closeFailSink) Close() error { return c.err }

// TestCloseErrorsJoined: every sink is closed, and each one's close error
// is returned (joined), once, however often Close is called.
func TestCloseErrorsJoined(t *testing.T) {
	e1, e2 := errors.New("disk full"), errors.New("connection reset")
	a, b, good := &closeFailSink{err: e1}, &closeFailSink{err: e2}, &countSink{}
	l := New(Options{Size: 10, Sinks: []LineSink{a, good, b}})
	l.Record(&Record{DecisionID: "d"})
	for range 2 {
		err := l.Close(context.Background())
		if !errors.Is(err, e1) || !errors.Is(err, e2) {
			t.Errorf("Close = %v, want both sinks' errors", err)
		}
	}
	if good.lines.Load() != 1 {
		t.Errorf("good sink got %d lines, want 1", good.lines.Load())
	}
}

// TestWriterSinkCloseErrors: the writer sink reports its flush error and
// its writer's close error both.
func TestWriterSinkCloseErrors(t *testing.T) {
	w := &failWriter{}
	s := WriterSink(w)
	if err := s.WriteLine([]byte("x\n")); err != nil {
		t.Fatal(err) // buffered
	}
	err := s.Close()
	if !errors.Is(err, errWrite) || !errors.Is(err, errClose) {
		t.Errorf("Close = %v, want the write and the close error", err)
	}
}

var errWrite, errClose = errors.New("write failed"), errors.New("close failed")

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errWrite }
func (failWriter) Close() error              { return errClose }

// TestMetricsRegisteredOnce: the log registers its metrics on the registry
// it is given, under the names SPEC §10 lists; none without one.
func TestMetricsRegisteredOnce(t *testing.T) {
	reg := prometheus.NewRegistry()
	l := New(Options{Size: 1, Registerer: reg})
	defer l.Close(context.Background())
	for _, name := range []string{"warden_decision_log_dropped_total", "warden_decision_log_write_errors_total"} {
		if n := metric(t, reg, name); n != 0 {
			t.Errorf("%s = %d, want 0", name, n)
		}
	}
	// A second log registers nothing without a registry (no panic).
	l2 := New(Options{Size: 1})
	defer l2.Close(context.Background())
}

// stallSink blocks every write until release is closed.
type stallSink struct {
	countSink
	release chan struct{}
	entered atomic.Int64
}

func (s *stallSink) WriteLine(b []byte) error {
	s.entered.Add(1)
	<-s.release
	return s.countSink.WriteLine(b)
}

// TestCloseGivingUpSaysWhatIsLost: Close past its context with a stalled
// sink says how many records were not written (before: the context's
// error alone, the records lost untold).
func TestCloseGivingUpSaysWhatIsLost(t *testing.T) {
	s := &stallSink{release: make(chan struct{})}
	l := New(Options{Size: 16, Sinks: []LineSink{s}})
	for range 5 {
		l.Record(&Record{DecisionID: "d", Decision: "deny"})
	}
	testwait.Until(t, 5*time.Second, "the first record's write stalled", func() bool { return s.entered.Load() == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err := l.Close(ctx)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "4 decision records not written") {
		t.Errorf("Close: %v, want the deadline and 4 records not written (the fifth held by the stalled sink)", err)
	}
	close(s.release)
	if err := l.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := s.lines.Load(); n != 5 {
		t.Errorf("%d lines once the sink went on, want 5", n)
	}
}
