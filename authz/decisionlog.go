package authz

import (
	"bufio"
	"context"
	"io"
	"sync"
)

// DecisionLog writes decision records to its sinks off the request path.
// Record never blocks: when the buffer is full the record is dropped and
// counted.
type DecisionLog struct {
	ch      chan *Record
	sinks   []LineSink
	dropped func()
	done    chan struct{}
	once    sync.Once
	mu      sync.Mutex // guards close of ch against Record
	closed  bool
	// OnError, when set before the first Record, is told of every failed
	// sink write or flush.
	OnError func(error)
	// Keep, when set before the first Record, also receives every record
	// (the admin API's in-memory view when no sink can be queried).
	Keep *Ring
}

// LineSink receives whole JSON lines (newline included), then Flush at the
// end of each burst, and Close once.
type LineSink interface {
	WriteLine(line []byte) error
	Flush() error
	Close() error
}

// WriterSink adapts an io.Writer (closed by Close when it is an io.Closer).
func WriterSink(w io.Writer) LineSink {
	return &writerSink{w: w, b: bufio.NewWriterSize(w, 64<<10)}
}

type writerSink struct {
	w io.Writer
	b *bufio.Writer
}

func (s *writerSink) WriteLine(line []byte) error { _, err := s.b.Write(line); return err }
func (s *writerSink) Flush() error                { return s.b.Flush() }
func (s *writerSink) Close() error {
	err := s.b.Flush()
	if c, ok := s.w.(io.Closer); ok {
		if cerr := c.Close(); err == nil {
			err = cerr
		}
	}
	return err
}

// NewDecisionLog starts a log with a buffer of size records.
func NewDecisionLog(size int, sinks []LineSink, dropped func()) *DecisionLog {
	if dropped == nil {
		dropped = func() {}
	}
	l := &DecisionLog{ch: make(chan *Record, size), sinks: sinks, dropped: dropped, done: make(chan struct{})}
	go l.run()
	return l
}

// Record queues r; it drops r (and counts it) when the buffer is full.
func (l *DecisionLog) Record(r *Record) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		l.dropped()
		return
	}
	select {
	case l.ch <- r:
	default:
		l.dropped()
	}
}

func (l *DecisionLog) run() {
	defer close(l.done)
	var buf []byte
	n := 0
	for r := range l.ch {
		if l.Keep != nil {
			l.Keep.Add(r)
		}
		var err error
		buf, err = appendJSON(buf[:0], r)
		if err != nil {
			continue
		}
		for _, w := range l.sinks {
			l.fail(w.WriteLine(buf))
		}
		if n++; len(l.ch) == 0 || n%256 == 0 {
			for _, w := range l.sinks {
				l.fail(w.Flush())
			}
		}
	}
	for _, w := range l.sinks {
		l.fail(w.Flush())
	}
}

func (l *DecisionLog) fail(err error) {
	if err != nil && l.OnError != nil {
		l.OnError(err)
	}
}

// Close stops accepting records, writes out the buffered ones and closes
// the sinks, or gives up when ctx ends.
func (l *DecisionLog) Close(ctx context.Context) error {
	l.once.Do(func() {
		l.mu.Lock()
		l.closed = true
		close(l.ch)
		l.mu.Unlock()
	})
	select {
	case <-l.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	for _, s := range l.sinks {
		_ = s.Close()
	}
	return nil
}
