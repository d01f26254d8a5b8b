package server

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/credentials"
)

// Answers the client will not read. grpc-go writes a unary call's answer
// as its handler returns: the response HEADERS at once (HTTP/2 does not
// flow-control them), its DATA and the trailers when the client's stream
// and connection windows allow. A client that never opens its windows
// (SETTINGS_INITIAL_WINDOW_SIZE 0, no WINDOW_UPDATE) and answers pings
// leaves each answer queued in grpc-go's writer, with no time bound and
// outside max_streams (the stream's slot comes back with the handler).
//
// So each connection's HTTP/2 frames are followed in both directions,
// below grpc-go, from their 9-byte headers alone (payloads are skipped by
// counting): an answer is held from the response HEADERS without
// END_STREAM until the stream ends on the wire (trailers or DATA with
// END_STREAM, RST_STREAM either way) or the connection closes. Held
// answers count against max_streams and the connection's reserve (tap),
// and a connection with an answer held past stream_timeout (plus one
// sweep period, the time a streaming call's trailers may take after its
// deadline) is closed: grpc-go then drops the transport, and with it the
// queued buffers.

// frameScanner finds HTTP/2 frame headers in one direction of a
// connection, the bytes split across calls anywhere.
type frameScanner struct {
	preface int // bytes of the client's connection preface still to skip (read side)
	skip    int // payload bytes of the current frame still to skip
	n       int // bytes of hdr filled
	hdr     [9]byte
}

// frameHeader is what the tracker needs of a frame header.
type frameHeader struct {
	typ, flags uint8
	id         uint32
}

const (
	frameData         = 0x0
	frameHeaders      = 0x1
	frameRSTStream    = 0x3
	frameSettings     = 0x4
	framePing         = 0x6
	flagEndStream     = 0x1
	flagAck           = 0x1 // SETTINGS and PING
	clientPrefaceSize = 24  // "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
)

func parseFrameHeader(b []byte) (frameHeader, int) {
	n := int(b[0])<<16 | int(b[1])<<8 | int(b[2])
	id := (uint32(b[5])<<24 | uint32(b[6])<<16 | uint32(b[7])<<8 | uint32(b[8])) &^ (1 << 31)
	return frameHeader{typ: b[3], flags: b[4], id: id}, n
}

// next consumes p up to the end of the next frame header (returned, ok
// true) or all of p (ok false).
func (s *frameScanner) next(p []byte) (rest []byte, h frameHeader, ok bool) {
	if s.preface > 0 {
		k := min(s.preface, len(p))
		s.preface -= k
		p = p[k:]
	}
	if s.skip > 0 {
		k := min(s.skip, len(p))
		s.skip -= k
		return p[k:], h, false
	}
	if len(p) == 0 {
		return p, h, false
	}
	if s.n == 0 && len(p) >= len(s.hdr) {
		h, s.skip = parseFrameHeader(p)
		return p[len(s.hdr):], h, true
	}
	k := copy(s.hdr[s.n:], p)
	s.n += k
	if s.n < len(s.hdr) {
		return p[k:], h, false
	}
	s.n = 0
	h, s.skip = parseFrameHeader(s.hdr[:])
	return p[k:], h, true
}

// streamTracker is one connection's state: the answers held, and the
// streams the client reset before their answer began.
//
// The reset streams close a race: grpc-go reads a client's RST_STREAM
// after the handler may have queued its response HEADERS; the writer then
// writes them (and nothing more of that stream: the reset drops it). A
// RST_STREAM read for a stream with no answer yet is remembered in a ring
// of resetRing entries (the most recent ones: enough for every stream the
// connection may have open), and HEADERS written later for it do not
// start an answer. Only streams the client opened count (a RST_STREAM for
// a stream it opens later must not hide that stream's answer): grpc-go
// ignores a reset of an idle stream.
type streamTracker struct {
	mu      sync.Mutex
	held    []heldAnswer
	ring    []uint32 // reset streams without an answer, the latest resetRing
	ringAt  int
	maxHeld int
	closed  bool
}

type heldAnswer struct {
	id uint32
	at int64 // monoNow(), 0 while being applied
}

// startAnswer adds id to the held answers unless the client reset it (or
// it is held already). Under t.mu.
func (t *streamTracker) startAnswer(id uint32) {
	for _, r := range t.ring {
		if r == id {
			return
		}
	}
	for _, h := range t.held {
		if h.id == id {
			return
		}
	}
	t.held = append(t.held, heldAnswer{id: id})
}

// endAnswer removes id from the held answers; it reports whether it was
// held. Under t.mu.
func (t *streamTracker) endAnswer(id uint32) bool {
	for i, h := range t.held {
		if h.id == id {
			last := len(t.held) - 1
			t.held[i] = t.held[last]
			t.held = t.held[:last]
			return true
		}
	}
	return false
}

// resetByClient ends id's answer, or remembers that its answer must not
// start. Under t.mu.
func (t *streamTracker) resetByClient(id uint32, ringSize int) {
	if t.endAnswer(id) {
		return
	}
	for _, r := range t.ring {
		if r == id {
			return
		}
	}
	if len(t.ring) < ringSize {
		t.ring = append(t.ring, id)
		return
	}
	t.ring[t.ringAt] = id
	t.ringAt = (t.ringAt + 1) % len(t.ring)
}

// writeEvents are one Write's stream events, applied to the tracker once
// the whole buffer is read: an answer that starts and ends in the same
// Write (HEADERS, DATA and trailers together) changes nothing.
// An end cancels a start in the same Write; it is kept only when the
// stream may have started before (the connection holds answers: mayHold).
type writeEvents struct {
	starts, ends [16]uint32
	ns, ne       int
	mayHold      bool
}

func (e *writeEvents) add(h frameHeader) {
	if h.id == 0 {
		return
	}
	switch {
	case h.typ == frameHeaders && h.flags&flagEndStream == 0:
		for _, s := range e.starts[:e.ns] {
			if s == h.id {
				return
			}
		}
		e.starts[e.ns] = h.id
		e.ns++
	case h.typ == frameRSTStream, (h.typ == frameHeaders || h.typ == frameData) && h.flags&flagEndStream != 0:
		for i, s := range e.starts[:e.ns] {
			if s == h.id {
				e.ns--
				e.starts[i] = e.starts[e.ns]
				if !e.mayHold {
					return
				}
				break
			}
		}
		for _, s := range e.ends[:e.ne] {
			if s == h.id {
				return
			}
		}
		e.ends[e.ne] = h.id
		e.ne++
	}
}

func (e *writeEvents) full() bool { return e.ns == len(e.starts) || e.ne == len(e.ends) }

// h2conn is a server connection whose frames are followed (above TLS).
// grpc-go writes from one goroutine at a time (its loopy writer) and reads
// from one (its reader), so each direction's scanner needs no lock; the
// tracker, shared by both, is locked only when a Write or Read changes it.
type h2conn struct {
	net.Conn
	l   *streamLimit
	key any

	rd     frameScanner // the reader's
	opened uint32       // the highest stream the client opened (the reader's)
	wr     frameScanner // the writer's
	// registered with the listener (the writer's): at the first Write,
	// grpc-go's first flush, after which every failure closes this
	// connection (before it, a failed transport closes only the raw one).
	registered bool

	t         streamTracker
	heldCount atomic.Int32 // len(t.held), for the tap and the sweeper
	// writing is when the Write under way began (0: none). A client that
	// does not read its socket (its TCP window closed, whatever its HTTP/2
	// windows say) blocks grpc-go's writer once the kernel's buffer is
	// full (bounded by TCP_NOTSENT_LOWAT: tcpListener): the frames of that
	// Write, and every answer queued behind it, then wait on the client.
	writing atomic.Int64
	// wrote is when the last Write ended (monotonic ns; 0: none yet).
	wrote atomic.Int64
	swept atomic.Bool // closed by the sweeper (once)
	once  sync.Once

	// Calls whose handler returned an answer grpc-go has not written yet
	// (answered).
	answering atomic.Int32
	// Answers reset by the client whose bytes may still wait in grpc-go's
	// write queue (pend), until HEADERS of a stream above resetMark.
	pending   atomic.Int32
	resetMark atomic.Uint32
	pendAt    atomic.Int64 // when the latest pend was (monotonic ns)
	// The client's SETTINGS and PINGs read (the reader's), the count of
	// them read before the latest reset (ackMark), and the ACKs grpc-go
	// wrote (the writer's): grpc-go acknowledges each in order, queued
	// behind the cleanup of every stream reset before it, so the ACK of
	// one read after a reset gives the pending counts back as a later
	// stream's HEADERS do.
	acksAsked uint32
	ackMark   atomic.Uint32
	acksDone  uint32
}

// Between a unary handler's return (its slot given back) and grpc-go's
// write of the answer's HEADERS (its count as held), the call would count
// nowhere, and under a burst the tap would let more in than the limits
// (156 answers held over a bound of 95 in TestAbuseUnreadAnswers). So the
// slot of a call answered without error becomes an answer on its way
// (answered), counted as a held one, until an answer's HEADERS are
// written on the connection (answerWritten: the answers are not told
// apart, only counted), the client resets a stream with no answer out
// (clientReset: grpc-go then writes nothing more of it), or the
// connection closes. Nothing else ends the count: answers queued behind
// a slow socket must keep counting for as long as they wait (they used to
// expire after one or two sweeps, and a client reading 16 KB every 100 ms
// grew Warden's heap to 330 MB in 30 s, the session-10 outside attack).
// An answer never written for another reason (grpc-go failing to send it)
// keeps its count until its connection closes. A stream that writes
// HEADERS without such a call (a streaming call's first message) takes
// one off early: that call's count then misses the gap, as before.

// answered counts an answer on its way (under l.mu, c registered).
func (c *h2conn) answered() {
	c.answering.Add(1)
	c.l.answering.Add(1)
}

// answerWritten counts n answers' HEADERS written (or reset before),
// never below 0.
func (c *h2conn) answerWritten(n int) {
	for ; n > 0; n-- {
		if !decPositive(&c.answering) {
			return
		}
		c.l.answering.Add(-1)
	}
}

func decPositive(a *atomic.Int32) bool {
	for {
		v := a.Load()
		if v <= 0 {
			return false
		}
		if a.CompareAndSwap(v, v-1) {
			return true
		}
	}
}

// onTheWay is the connection's answers on their way.
func (c *h2conn) onTheWay() int { return int(c.answering.Load()) }

func (c *h2conn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.scanRead(p[:n])
	return n, err
}

// scanRead follows what the client sent: the streams it opened, those it
// reset.
func (c *h2conn) scanRead(b []byte) {
	for len(b) > 0 {
		var h frameHeader
		var ok bool
		if b, h, ok = c.rd.next(b); !ok {
			continue
		}
		if h.id == 0 {
			if (h.typ == frameSettings || h.typ == framePing) && h.flags&flagAck == 0 {
				c.acksAsked++
			}
			continue
		}
		switch h.typ {
		case frameHeaders:
			c.opened = max(c.opened, h.id)
		case frameRSTStream:
			if h.id <= c.opened {
				c.clientReset(h.id)
			}
		}
	}
}

func (c *h2conn) clientReset(id uint32) {
	c.t.mu.Lock()
	if c.t.closed {
		c.t.mu.Unlock()
		return
	}
	before := len(c.t.held)
	c.t.resetByClient(id, c.l.resetRing)
	held := len(c.t.held) < before
	c.counted(before)
	c.t.mu.Unlock()
	// The answer's bytes stay in grpc-go's write queue until its writer
	// reaches the stream's cleanup, queued behind what was queued before
	// the reset: behind a slow socket, long after. So the reset answer
	// keeps its count (pending) until a stream the client opened after
	// the reset writes HEADERS (its items come after the cleanup: the
	// cleanup has run). Given back at once, a client reading its socket
	// slowly and resetting each stream once answered had every answer
	// admitted and queued: 1.2 GB in 15 s (the session-10 outside attack).
	if held {
		c.pend()
		return
	}
	// A stream reset before its answer's HEADERS were written: if its
	// call had returned, its answer was counted on its way and will never
	// be written; its count becomes pending the same way. (Kept as on its
	// way, a client cancelling some of its Checks was refused the rest;
	// the reset of a stream still in its call moves another answer's
	// count instead: the counts err low, never high.)
	if decPositive(&c.answering) {
		c.l.answering.Add(-1)
		c.pend()
	}
}

// pend counts a reset answer as pending until a stream opened after the
// latest reset writes HEADERS (the reader's; c.opened is the highest
// stream the client has opened).
func (c *h2conn) pend() {
	c.resetMark.Store(c.opened)
	c.ackMark.Store(c.acksAsked)
	c.pendAt.Store(monoNow())
	c.pending.Add(1)
	c.l.pending.Add(1)
}

// unpendQuiet gives the pending counts back when gRPC's writer has been
// quiet (no Write under way, none ended) for quiet since the latest reset
// (the sweeper's). Its writer only waits on the socket: when it is not
// writing, it has run every cleanup queued (data held back by flow control
// waits in the stream's own list, which the cleanup drops), so nothing of
// the reset answers is left. Without this, a client that reset its held
// answers and opened no stream after them kept their counts until its
// connection closed (max_connection_idle, 5 minutes), holding the shared
// streams with none open (the session-11 outside attack: another client
// refused 87% of its Checks). A writer that keeps writing (a slow reader)
// keeps them counted, and one blocked past stream_timeout closes the
// connection.
func (c *h2conn) unpendQuiet(now int64, quiet time.Duration) {
	if c.writing.Load() != 0 || now-max(c.wrote.Load(), c.pendAt.Load()) < int64(quiet) {
		return
	}
	c.unpendAll()
}

// unpend gives the pending counts back (the writer's, for HEADERS of
// stream id).
func (c *h2conn) unpend(id uint32) {
	if id > c.resetMark.Load() {
		c.unpendAll()
	}
}

func (c *h2conn) unpendAll() {
	if n := c.pending.Swap(0); n > 0 {
		c.l.pending.Add(-int64(n))
	}
}

// counted gives the change in held answers since before to the counts
// (under c.t.mu).
func (c *h2conn) counted(before int) {
	if after := len(c.t.held); after != before {
		c.heldCount.Store(int32(after))
		c.l.held.Add(int64(after - before))
	}
}

func (c *h2conn) Write(p []byte) (int, error) {
	if !c.registered {
		c.register()
	}
	c.scanWrite(p)
	c.writing.Store(monoNow())
	n, err := c.Conn.Write(p)
	c.wrote.Store(monoNow())
	c.writing.Store(0)
	return n, err
}

// scanWrite follows what grpc-go writes (before it is written: an answer
// counts from when grpc-go hands it over, and ends as its last frame does).
// Only this goroutine raises the held count, so when it is 0 here, no
// stream has an answer from before and a start and end in p cancel out.
func (c *h2conn) scanWrite(p []byte) {
	e := writeEvents{mayHold: c.heldCount.Load() > 0}
	written := 0
	for b := p; len(b) > 0; {
		var h frameHeader
		var ok bool
		if b, h, ok = c.wr.next(b); !ok {
			continue
		}
		if h.typ == frameHeaders && h.id != 0 {
			if h.flags&flagEndStream == 0 {
				written++
			}
			if c.pending.Load() > 0 {
				c.unpend(h.id)
			}
		}
		if h.id == 0 && (h.typ == frameSettings || h.typ == framePing) && h.flags&flagAck != 0 {
			c.acksDone++
			if c.pending.Load() > 0 && c.acksDone > c.ackMark.Load() {
				c.unpendAll()
			}
		}
		e.add(h)
		if e.full() {
			c.apply(&e)
		}
	}
	if e.ns+e.ne > 0 {
		c.apply(&e)
	}
	// Held first, then no longer on the way: never counted nowhere.
	if written > 0 {
		c.answerWritten(written)
	}
}

// apply applies a Write's events to the tracker and the listener's
// count, and empties e. A connection past its bound of held answers (more
// than grpc-go lets it have open) is closed.
func (c *h2conn) apply(e *writeEvents) {
	c.t.mu.Lock()
	if c.t.closed {
		c.t.mu.Unlock()
		e.ns, e.ne = 0, 0
		return
	}
	before := len(c.t.held)
	for _, id := range e.ends[:e.ne] {
		c.t.endAnswer(id)
	}
	for _, id := range e.starts[:e.ns] {
		c.t.startAnswer(id)
	}
	after := len(c.t.held)
	if after > before {
		now := monoNow()
		for i := range c.t.held {
			if c.t.held[i].at == 0 {
				c.t.held[i].at = now
			}
		}
	}
	over := after > c.t.maxHeld
	c.counted(before)
	c.t.mu.Unlock()
	*e = writeEvents{mayHold: after > 0}
	if over {
		_ = c.Close()
	}
}

// oldest is when the longest-held answer began (0: none).
func (c *h2conn) oldest() int64 {
	c.t.mu.Lock()
	defer c.t.mu.Unlock()
	var o int64
	for _, h := range c.t.held {
		if h.at != 0 && (o == 0 || h.at < o) {
			o = h.at
		}
	}
	return o
}

// Close gives every held answer's count back, once.
func (c *h2conn) Close() error {
	c.once.Do(func() {
		c.t.mu.Lock()
		c.t.closed = true
		n := len(c.t.held)
		c.t.held = nil
		c.heldCount.Store(0)
		c.l.held.Add(-int64(n))
		c.t.mu.Unlock()
		c.l.unregister(c)
		// Unregistered, it is given no more answers on their way.
		if p := c.pending.Swap(0); p > 0 {
			c.l.pending.Add(-int64(p))
		}
		on := c.answering.Swap(0)
		c.l.answering.Add(-int64(on))
	})
	return c.Conn.Close()
}

// trackCreds wraps a listener's transport credentials (nil: plaintext):
// the connection grpc-go speaks HTTP/2 over, after the TLS handshake, is
// an h2conn.
type trackCreds struct {
	inner credentials.TransportCredentials
	l     *streamLimit
}

func (c trackCreds) ServerHandshake(raw net.Conn) (net.Conn, credentials.AuthInfo, error) {
	conn, info := raw, credentials.AuthInfo(nil)
	if c.inner != nil {
		var err error
		if conn, info, err = c.inner.ServerHandshake(raw); err != nil {
			return conn, info, err
		}
	}
	return c.l.track(conn), info, nil
}

func (c trackCreds) ClientHandshake(ctx context.Context, authority string, raw net.Conn) (net.Conn, credentials.AuthInfo, error) {
	if c.inner == nil {
		return raw, nil, nil
	}
	return c.inner.ClientHandshake(ctx, authority, raw)
}

func (c trackCreds) Info() credentials.ProtocolInfo {
	if c.inner == nil {
		return credentials.ProtocolInfo{SecurityProtocol: "insecure"}
	}
	return c.inner.Info()
}

func (c trackCreds) Clone() credentials.TransportCredentials {
	if c.inner == nil {
		return c
	}
	return trackCreds{inner: c.inner.Clone(), l: c.l}
}

func (c trackCreds) OverrideServerName(name string) error {
	if c.inner == nil {
		return nil
	}
	//lint:ignore SA1019 part of the interface
	return c.inner.OverrideServerName(name)
}

// track wraps conn for the listener.
func (l *streamLimit) track(conn net.Conn) *h2conn {
	c := &h2conn{Conn: conn, l: l, key: addrKey(conn.RemoteAddr())}
	c.rd.preface = clientPrefaceSize
	c.t.maxHeld = l.maxHeld
	return c
}

// register makes c known to the tap (by its connKey: the peer address
// grpc-go gives its streams; a TCP address's pointer is the connection's
// own) and to the sweeper, unless it is closed already.
func (c *h2conn) register() {
	c.registered = true
	l := c.l
	c.t.mu.Lock()
	defer c.t.mu.Unlock()
	if c.t.closed {
		return
	}
	l.mu.Lock()
	l.conns[c.key] = c
	if !l.sweeping && l.timeout > 0 {
		l.sweeping = true
		time.AfterFunc(l.sweepEvery(), l.sweep)
	}
	l.mu.Unlock()
}

func (l *streamLimit) unregister(c *h2conn) {
	l.mu.Lock()
	if l.conns[c.key] == c {
		delete(l.conns, c.key)
	}
	l.mu.Unlock()
}

// sweepEvery is the sweeper's period: a quarter of stream_timeout. An
// answer held longer than stream_timeout and one period is closed within
// stream_timeout and two periods.
func (l *streamLimit) sweepEvery() time.Duration { return l.timeout / 4 }

// sweepGrace is how long past stream_timeout an answer may wait, or a
// write be blocked: one sweep period (the time a streaming call's trailers
// may take after its deadline), at least 250 ms (at the shortest
// stream_timeout, 100 ms, a period is 25 ms).
func (l *streamLimit) sweepGrace() time.Duration { return max(l.sweepEvery(), 250*time.Millisecond) }

// monoNow is a monotonic clock in nanoseconds (since the process began
// using it): a wall clock stepped forward (NTP, a VM resumed) must not
// make every answer under way look held too long.
func monoNow() int64 { return int64(time.Since(monoBase)) }

var monoBase = time.Now()

// sweep closes the connections with an answer held, or a write blocked,
// longer than stream_timeout and one period, and gives back the pending
// counts of connections whose writer has been quiet (unpendQuiet); it
// runs every sweepEvery while the listener has connections.
func (l *streamLimit) sweep() {
	l.mu.Lock()
	if len(l.conns) == 0 {
		l.sweeping = false
		l.mu.Unlock()
		return
	}
	now := monoNow()
	limit := now - int64(l.timeout+l.sweepGrace())
	var held []*h2conn
	for _, c := range l.conns {
		if w := c.writing.Load(); c.heldCount.Load() > 0 || w != 0 && w < limit {
			held = append(held, c)
		}
		if c.pending.Load() > 0 {
			c.unpendQuiet(now, l.sweepGrace())
		}
	}
	l.mu.Unlock()
	for _, c := range held {
		if o, w := c.oldest(), c.writing.Load(); (o != 0 && o < limit || w != 0 && w < limit) && c.swept.CompareAndSwap(false, true) {
			// A TLS connection's Close may wait (up to 5 s) to send its
			// close_notify; the next connection's does not wait for it.
			// (swept: a later sweep, before Close unregisters it, does
			// not close and count it again.)
			go c.Close()
			if l.onUnread != nil {
				l.onUnread()
			}
		}
	}
	time.AfterFunc(l.sweepEvery(), l.sweep)
}
