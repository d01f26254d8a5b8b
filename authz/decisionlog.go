package authz

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"sync"
)

// DecisionLog writes decision records to its sinks off the request path.
// Record never blocks: when the buffer is full the record is dropped and
// counted.
type DecisionLog struct {
	ch      chan *Record
	sinks   []*bufio.Writer
	closers []io.Closer
	dropped func()
	done    chan struct{}
	once    sync.Once
	mu      sync.Mutex // guards close of ch against Record
	closed  bool
}

// NewDecisionLog starts a log with a buffer of size records. Writers that
// are also io.Closers are closed by Close.
func NewDecisionLog(size int, sinks []io.Writer, dropped func()) *DecisionLog {
	if dropped == nil {
		dropped = func() {}
	}
	l := &DecisionLog{ch: make(chan *Record, size), dropped: dropped, done: make(chan struct{})}
	for _, s := range sinks {
		l.sinks = append(l.sinks, bufio.NewWriterSize(s, 64<<10))
		if c, ok := s.(io.Closer); ok {
			l.closers = append(l.closers, c)
		}
	}
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
	for r := range l.ch {
		var err error
		buf, err = appendJSON(buf[:0], r)
		if err != nil {
			continue
		}
		for _, w := range l.sinks {
			_, _ = w.Write(buf)
		}
		if len(l.ch) == 0 {
			for _, w := range l.sinks {
				_ = w.Flush()
			}
		}
	}
	for _, w := range l.sinks {
		_ = w.Flush()
	}
}

func appendJSON(buf []byte, r *Record) ([]byte, error) {
	b, err := json.Marshal(r)
	if err != nil {
		return buf, err
	}
	buf = append(buf, b...)
	return append(buf, '\n'), nil
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
	for _, c := range l.closers {
		_ = c.Close()
	}
	return nil
}
