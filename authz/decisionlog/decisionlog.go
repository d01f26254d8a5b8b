package decisionlog

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// DecisionLog writes decision records to its sinks off the request path.
// Record never blocks: when the buffer is full (in records or in bytes) the
// record is dropped and counted. Each record is bounded (RecordLimits).
type DecisionLog struct {
	ch     chan *Record
	sinks  []LineSink
	done   chan struct{}
	once   sync.Once
	mu     sync.Mutex // guards close of ch against Record
	closed bool
	lim    RecordLimits
	bytes  atomic.Int64 // the buffered records' cost
	m      metrics
	// onError and keep are fixed by New, before the first record.
	onError func(error)
	keep    *Ring
	// closeOnce closes the sinks once; closeErr is what they returned.
	closeOnce sync.Once
	closeErr  error
	// batch is how long the writer lets records gather after a write
	// (BatchInterval); while it waits (sleeping), a Record that fills
	// half the buffer (wakeLen records or wakeBytes) wakes it at once.
	batch     time.Duration
	sleeping  atomic.Bool
	wake      chan struct{}
	wakeLen   int
	wakeBytes int64
	// scratch is encode's copy of the record being written (the log
	// goroutine's alone).
	scratch Record
}

// BatchInterval is how long the writer lets records gather after it has
// written what was queued, before it writes again. A record arriving to
// an idle log is written at once; under steady load the writer then wakes
// once an interval instead of once a record (a Check's record would
// otherwise cost a goroutine wake-up and a write system call of its own:
// about a tenth of Warden's CPU per Check at 5,000 Checks a second). Half
// a buffer of records (in count or bytes) wakes it early, so no buffer
// size drops more than it did.
const BatchInterval = 5 * time.Millisecond

// Options configure a DecisionLog. All of it is fixed by New, so the first
// record already goes through every hook.
type Options struct {
	// Size is the buffer's capacity in records.
	Size int
	// Limits bound each record and the buffer (zero fields:
	// DefaultRecordLimits').
	Limits RecordLimits
	// Sinks receive every record, in order; Close closes them.
	Sinks []LineSink
	// Registerer, when set, is given the log's metrics
	// (warden_decision_log_dropped_total,
	// warden_decision_log_write_errors_total).
	Registerer prometheus.Registerer
	// OnError, when set, is told of every failed sink write or flush (each
	// is counted as well).
	OnError func(error)
	// Keep, when set, also receives every record (the admin API's
	// in-memory view when no sink can be queried).
	Keep *Ring
	// Batch overrides BatchInterval (tests; negative: none, every record
	// written as it comes).
	Batch time.Duration
}

// metrics are the decision log's own metrics (SPEC §10).
type metrics struct {
	dropped     prometheus.Counter
	writeErrors prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) metrics {
	m := metrics{
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "warden_decision_log_dropped_total", Help: "Decision records dropped because the buffer was full.",
		}),
		writeErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "warden_decision_log_write_errors_total", Help: "Failed writes or flushes of a decision log sink.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.dropped, m.writeErrors)
	}
	return m
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
		err = errors.Join(err, c.Close())
	}
	return err
}

// New starts a log as o says. It registers its metrics with
// o.Registerer (it panics, as prometheus.MustRegister does, when they are
// registered there already).
func New(o Options) *DecisionLog {
	lim, d := o.Limits, DefaultRecordLimits
	if lim.MaxFieldBytes <= 0 {
		lim.MaxFieldBytes = d.MaxFieldBytes
	}
	if lim.MaxRecordBytes <= 0 {
		lim.MaxRecordBytes = d.MaxRecordBytes
	}
	if lim.BufferBytes <= 0 {
		lim.BufferBytes = d.BufferBytes
	}
	l := &DecisionLog{
		ch: make(chan *Record, o.Size), lim: lim, sinks: o.Sinks, done: make(chan struct{}),
		m: newMetrics(o.Registerer), onError: o.OnError, keep: o.Keep,
		batch: o.Batch, wake: make(chan struct{}, 1),
		wakeLen: max(1, o.Size/2), wakeBytes: int64(lim.BufferBytes / 2),
	}
	if l.batch == 0 {
		l.batch = BatchInterval
	}
	go l.run()
	return l
}

// Record bounds r's strings (so that it no longer holds the request's
// memory) and queues it; it drops r (and counts it) when the buffer is full
// in records or in bytes.
func (l *DecisionLog) Record(r *Record) {
	r.cost = recordOverhead + r.clip(l.lim.MaxFieldBytes, true, false)
	if r.Cedar != nil {
		r.cost += r.held
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed || l.bytes.Load()+int64(r.cost) > int64(l.lim.BufferBytes) {
		l.m.dropped.Inc()
		return
	}
	select {
	case l.ch <- r:
		if b := l.bytes.Add(int64(r.cost)); l.sleeping.Load() && l.full(b) {
			l.poke()
		}
	default:
		l.m.dropped.Inc()
	}
}

// Sync returns once the records queued before it have been written and
// flushed to the sinks (or ctx ends, or the log is closed: Close writes
// them). The admin API's queries call it, so that a decision made on this
// replica before a query is in its answer although records are written in
// batches (BatchInterval). A full buffer makes it wait its turn.
func (l *DecisionLog) Sync(ctx context.Context) error {
	m := &Record{synced: make(chan struct{})}
	for {
		l.mu.Lock()
		if l.closed {
			l.mu.Unlock()
			return nil
		}
		select {
		case l.ch <- m:
			l.mu.Unlock()
			l.poke()
			select {
			case <-m.synced:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		default:
			l.mu.Unlock()
		}
		l.poke()
		select {
		case <-time.After(time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// poke wakes a writer waiting out its interval.
func (l *DecisionLog) poke() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// full reports that half the buffer is taken (b: its bytes), so the
// writer should not wait out its batch interval.
func (l *DecisionLog) full(b int64) bool { return len(l.ch) >= l.wakeLen || b >= l.wakeBytes }

// Buffered is the records waiting in the buffer and their estimated bytes.
func (l *DecisionLog) Buffered() (records, bytes int) {
	return len(l.ch), int(l.bytes.Load())
}

// bounded is a copy of r within the limits, encoded into buf: its strings
// with credential-looking words redacted, its Cedar section bounded (or
// left out), and when the line is still over
// MaxRecordBytes, its strings cut shorter until it fits.
func (l *DecisionLog) bounded(buf []byte, r *Record) (*Record, []byte) {
	// r may still be read by Evaluate's caller: c is a copy, its token
	// and rate-limit sections too, in one allocation.
	s := &recordCopy{rec: *r}
	c := &s.rec
	c.held = 0
	if r.Token != nil {
		s.tok = *r.Token
		c.Token = &s.tok
	}
	if r.RateLimit != nil {
		s.rl = *r.RateLimit
		c.RateLimit = &s.rl
	}
	c.clip(l.lim.MaxFieldBytes, false, true)
	cedarSize := 0
	if r.Cedar != nil {
		var lossy bool
		c.Cedar, cedarSize, lossy = boundCedar(r.Cedar, l.lim.MaxFieldBytes, l.lim.MaxRecordBytes)
		c.Truncated = c.Truncated || c.Cedar == nil || lossy
	}
	buf, _ = appendJSON(buf[:0], c)
	if len(buf) > l.lim.MaxRecordBytes && c.Cedar != nil {
		c.Cedar, cedarSize, c.Truncated = nil, 0, true
		buf, _ = appendJSON(buf[:0], c)
	}
	// Escaping can make a string up to six times longer in JSON: cut the
	// strings shorter, down to 8 bytes, then the lists, until it fits (a
	// record of 8-byte strings and no lists is under 2 KiB; config keeps
	// max_record_bytes at 4 KiB or more).
	for max := l.lim.MaxFieldBytes / 2; len(buf) > l.lim.MaxRecordBytes; {
		switch {
		case max >= 8:
			c.clip(max, false, false)
			max /= 2
		case len(c.Policies) > 0 || len(c.Errors) > 0:
			c.Policies, c.Errors = c.Policies[:len(c.Policies)/2], c.Errors[:len(c.Errors)/2]
			if len(c.Errors) == 0 {
				c.Errors = nil
			}
		default:
			return l.finish(c, buf, cedarSize)
		}
		c.Truncated = true
		buf, _ = appendJSON(buf[:0], c)
	}
	return l.finish(c, buf, cedarSize)
}

func (l *DecisionLog) finish(c *Record, buf []byte, cedarSize int) (*Record, []byte) {
	c.cost = recordOverhead + len(buf) + cedarSize
	return c, buf
}

// recordCopy is a record's copy with its token and rate-limit sections.
type recordCopy struct {
	rec Record
	tok RecordToken
	rl  RecordRateLimit
}

func (l *DecisionLog) run() {
	defer close(l.done)
	var buf []byte
	var t *time.Timer
	n := 0
	for r := range l.ch { // an idle log waits here: the first record wakes it
		for r != nil {
			l.bytes.Add(-int64(r.cost))
			if r.synced != nil {
				l.flush()
				close(r.synced)
			} else {
				buf = l.write(buf, r)
				n++
			}
			var open bool
			if r, open = l.next(); r != nil {
				if n%256 == 0 {
					l.flush()
				}
				continue
			}
			// All written: flush, then let the next records gather.
			l.flush()
			if !open || l.batch <= 0 {
				break
			}
			if t == nil {
				t = time.NewTimer(l.batch)
			} else {
				t.Reset(l.batch)
			}
			l.sleeping.Store(true)
			if !l.full(l.bytes.Load()) {
				select {
				case <-t.C:
				case <-l.wake:
				}
			}
			l.sleeping.Store(false)
			r, _ = l.next() // nil: nothing came in an interval, so wait idle
		}
	}
	l.flush()
}

// next is the next queued record, nil when none is; open is false once
// the log is closed and drained.
func (l *DecisionLog) next() (r *Record, open bool) {
	select {
	case r, open = <-l.ch:
		return r, open
	default:
		return nil, true
	}
}

func (l *DecisionLog) flush() {
	for _, w := range l.sinks {
		l.fail(w.Flush())
	}
}

// write bounds and encodes r into buf, hands it to the Ring and writes it
// to every sink (the log goroutine's work for one record).
func (l *DecisionLog) write(buf []byte, r *Record) []byte {
	if l.keep != nil {
		var c *Record
		c, buf = l.bounded(buf, r)
		l.keep.Add(c)
	} else {
		buf = l.encode(buf, r)
	}
	for _, w := range l.sinks {
		l.fail(w.WriteLine(buf))
	}
	return buf
}

func (l *DecisionLog) fail(err error) {
	if err == nil {
		return
	}
	l.m.writeErrors.Inc()
	if l.onError != nil {
		l.onError(err)
	}
}

// Close stops accepting records, writes out the buffered ones and closes
// the sinks, or gives up when ctx ends (the sinks are then left open). It
// returns every sink's close error, joined.
func (l *DecisionLog) Close(ctx context.Context) error {
	l.once.Do(func() {
		l.mu.Lock()
		l.closed = true
		close(l.ch)
		l.mu.Unlock()
		l.poke() // a writer waiting out its interval writes what is left now
	})
	select {
	case <-l.done:
	case <-ctx.Done():
		// Say what is lost: the records still queued (and the one a
		// stalled sink holds).
		return fmt.Errorf("%w: %d decision records not written", ctx.Err(), len(l.ch))
	}
	l.closeOnce.Do(func() {
		var errs []error
		for _, s := range l.sinks {
			if err := s.Close(); err != nil {
				errs = append(errs, fmt.Errorf("decision log sink: %w", err))
			}
		}
		l.closeErr = errors.Join(errs...)
	})
	return l.closeErr
}
