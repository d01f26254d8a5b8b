package server

import (
	"bytes"
	"io"
	"net"
	"slices"
	"testing"

	"golang.org/x/net/http2"

	"github.com/wardenauthz/warden/authz/config"
)

// testConn is an h2conn over one end of a pipe (nothing is written to
// it: the tests feed scanRead and scanWrite), on a listener of its own.
func testConn(t testing.TB, ring, maxHeld int) *h2conn {
	l := newStreamLimit(config.GRPC{MaxStreams: 8, MaxConcurrentStreams: 8, ConnectionReserve: 1, MaxBufferedBytes: 1 << 30}, 1<<16, nil, nil)
	l.resetRing, l.maxHeld = ring, maxHeld
	a, b := net.Pipe()
	t.Cleanup(func() { a.Close(); b.Close() })
	c := l.track(a)
	c.register()
	t.Cleanup(func() { c.Close() })
	return c
}

// frames are HTTP/2 frames written by x/net/http2's Framer.
type frames struct {
	buf bytes.Buffer
	fr  *http2.Framer
}

func newFrames() *frames {
	f := &frames{}
	f.fr = http2.NewFramer(&f.buf, nil)
	f.fr.AllowIllegalWrites = true
	return f
}

func (f *frames) headers(id uint32, end bool) *frames {
	_ = f.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: []byte{0x88}, EndStream: end, EndHeaders: true})
	return f
}

func (f *frames) data(id uint32, n int, end bool) *frames {
	_ = f.fr.WriteData(id, end, make([]byte, n))
	return f
}

func (f *frames) rst(id uint32) *frames { _ = f.fr.WriteRSTStream(id, http2.ErrCodeCancel); return f }

func (f *frames) bytes() []byte { b := bytes.Clone(f.buf.Bytes()); f.buf.Reset(); return b }

func clientBytes(f *frames) []byte { return append([]byte(http2.ClientPreface), f.bytes()...) }

func heldIDs(c *h2conn) []uint32 {
	c.t.mu.Lock()
	defer c.t.mu.Unlock()
	var ids []uint32
	for _, h := range c.t.held {
		ids = append(ids, h.id)
	}
	slices.Sort(ids)
	return ids
}

// TestTrackerAnswers: an answer is held from its HEADERS to its end
// (trailers, DATA with END_STREAM, RST_STREAM either way), counted on the
// connection and the listener, and given back on close; a reset the
// client sent before the answer's HEADERS were written keeps them from
// counting (grpc-go writes nothing more of that stream), unless the
// stream was not open then (a reset of an idle stream is ignored by
// grpc-go: it must not hide that stream's later answer).
func TestTrackerAnswers(t *testing.T) {
	c := testConn(t, 4, 100)
	in, out := newFrames(), newFrames()
	c.scanRead(clientBytes(in.headers(1, false).headers(3, false).headers(5, false).headers(7, false).headers(9, false)))
	c.scanWrite(out.headers(1, false).headers(3, false).headers(5, false).headers(7, false).bytes())
	if got := heldIDs(c); !slices.Equal(got, []uint32{1, 3, 5, 7}) || c.l.held.Load() != 4 || c.heldCount.Load() != 4 {
		t.Fatalf("held %v (%d on the listener, %d counted): want 1 3 5 7", got, c.l.held.Load(), c.heldCount.Load())
	}
	c.scanWrite(out.data(1, 10, false).headers(1, true).data(3, 0, true).rst(5).bytes())
	c.scanRead(in.rst(7).bytes())
	if got := heldIDs(c); len(got) != 0 || c.l.held.Load() != 0 {
		t.Fatalf("held %v after every end: want none", got)
	}
	// Reset, then the HEADERS grpc-go had queued: not held.
	c.scanRead(in.rst(9).bytes())
	c.scanWrite(out.headers(9, false).bytes())
	// A reset of a stream not yet open, then the stream: held.
	c.scanRead(in.rst(11).headers(11, false).bytes())
	c.scanWrite(out.headers(11, false).bytes())
	if got := heldIDs(c); !slices.Equal(got, []uint32{11}) {
		t.Fatalf("held %v: want 11 alone", got)
	}
	c.Close()
	if c.l.held.Load() != 0 || len(c.l.conns) != 0 {
		t.Fatalf("after close: %d held, %d connections", c.l.held.Load(), len(c.l.conns))
	}
	c.scanWrite(out.headers(13, false).bytes())
	if c.l.held.Load() != 0 {
		t.Fatal("a closed connection counts an answer")
	}
}

// TestTrackerBound: more held answers than a connection may have open
// (max_concurrent_streams and slack) close it; a Write with more stream
// events than one batch holds is applied in parts.
func TestTrackerBound(t *testing.T) {
	c := testConn(t, 4, 40)
	out := newFrames()
	for id := uint32(1); id < 2*40; id += 2 {
		out.headers(id, false)
	}
	c.scanWrite(out.bytes())
	if n := c.heldCount.Load(); n != 40 || c.t.closed {
		t.Fatalf("40 held: %d counted, closed %v", n, c.t.closed)
	}
	for id := uint32(1); id < 2*40; id += 2 {
		out.headers(id, true)
	}
	out.headers(101, false).headers(103, false)
	c.scanWrite(out.bytes())
	if got := heldIDs(c); !slices.Equal(got, []uint32{101, 103}) {
		t.Fatalf("held %v: want 101 103", got)
	}
	for id := uint32(201); id < 201+2*40; id += 2 {
		out.headers(id, false)
	}
	c.scanWrite(out.bytes())
	if !c.t.closed || c.l.held.Load() != 0 {
		t.Fatalf("42 held over a bound of 40: closed %v, %d held on the listener", c.t.closed, c.l.held.Load())
	}
}

// TestTrackerAllocs: a Check's answer costs no allocation, written in
// one Write or split (its HEADERS first), nor does the client's request.
func TestTrackerAllocs(t *testing.T) {
	c := testConn(t, 64, 100)
	in, out := newFrames(), newFrames()
	c.scanRead([]byte(http2.ClientPreface))
	id := uint32(1)
	whole := testing.AllocsPerRun(1000, func() {
		c.scanRead(in.headers(id, false).data(id, 300, true).bytes())
		c.scanWrite(out.headers(id, false).data(id, 400, false).headers(id, true).bytes())
		id += 2
	})
	split := testing.AllocsPerRun(1000, func() {
		c.scanRead(in.headers(id, false).data(id, 300, true).bytes())
		c.scanWrite(out.headers(id, false).bytes())
		c.scanWrite(out.data(id, 400, false).headers(id, true).bytes())
		id += 2
	})
	// What the test's frame builders allocate (the bytes' clones).
	builders := testing.AllocsPerRun(1000, func() {
		in.headers(id, false).data(id, 300, true).bytes()
		out.headers(id, false).data(id, 400, false).headers(id, true).bytes()
	})
	if whole > builders || split > builders+1 {
		t.Errorf("allocations per Check: %v in one Write, %v split, the test's own %v", whole, split, builders)
	}
	if c.heldCount.Load() != 0 {
		t.Errorf("%d held after complete answers", c.heldCount.Load())
	}
}

func BenchmarkTrackerAnswer(b *testing.B) {
	c := testConn(b, 64, 100)
	in, out := newFrames(), newFrames()
	c.scanRead([]byte(http2.ClientPreface))
	req := in.headers(1, false).data(1, 300, true).bytes()
	head := out.headers(1, false).bytes()
	rest := out.data(1, 400, false).headers(1, true).bytes()
	b.ReportAllocs()
	for b.Loop() {
		c.scanRead(req)
		c.l.mu.Lock()
		c.answered()
		c.l.mu.Unlock()
		c.scanWrite(head)
		c.scanWrite(rest)
	}
}

// FuzzFrameTracker: random frame sequences in both directions (every
// frame type, flags, padding, CONTINUATION, unknown types, stream 0),
// written by x/net/http2's Framer and fed to the tracker split at random
// boundaries and interleaved; after every piece, the held answers and
// whether the connection was closed match a model that reads the same
// bytes with http2.ReadFrameHeader and applies the rules one frame at a
// time.
func FuzzFrameTracker(f *testing.F) {
	f.Add([]byte{0x02, 1, 0, 4, 1, 0x03, 1, 0, 4, 1, 0x01, 1, 0, 0, 1})
	f.Add([]byte{0x03, 3, 2, 40, 0, 0x07, 3, 0, 0, 1, 0x02, 3, 0, 9, 3, 0x00, 3, 1, 200, 7})
	f.Add([]byte{0x05, 5, 0, 3, 1, 0x04, 5, 1, 1, 0, 0x06, 5, 0, 0, 1, 0x08, 5, 0, 0, 1, 0x02, 5, 0, 2, 255})
	f.Add(bytes.Repeat([]byte{0x03, 1, 0, 0, 0, 0x02, 1, 0, 0, 0, 0x07, 1, 0, 0, 1}, 4))
	f.Fuzz(func(t *testing.T, prog []byte) {
		const ring, maxHeld = 3, 6
		if len(prog) > 1000 {
			t.Skip("long programs add nothing but minimization time")
		}
		type piece struct {
			in         bool
			start, end int
		}
		dirs := [2]*frames{newFrames(), newFrames()} // out, in
		dirs[1].buf.WriteString(http2.ClientPreface)
		var pieces []piece
		flushed := [2]int{}
		next := func() byte {
			if len(prog) == 0 {
				return 0
			}
			b := prog[0]
			prog = prog[1:]
			return b
		}
		for len(prog) > 0 && len(pieces) < 400 {
			op := next()
			dir := int(op & 1)
			fr := dirs[dir].fr
			id := uint32(next() & 63)
			flags := next()
			end, endHeaders, pad := flags&1 != 0, flags&2 == 0, make([]byte, flags>>3)
			payload := make([]byte, int(next())*3)
			switch (op >> 1) % 12 {
			case 0:
				_ = fr.WriteDataPadded(id, end, payload, pad)
			case 1:
				_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: payload, EndStream: end, EndHeaders: endHeaders, PadLength: uint8(len(pad))})
			case 2:
				_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: payload, EndStream: end, PadLength: uint8(len(pad)),
					Priority: http2.PriorityParam{StreamDep: 3, Weight: 9}})
				_ = fr.WriteContinuation(id, false, payload)
				_ = fr.WriteContinuation(id, true, payload)
			case 3:
				_ = fr.WriteRSTStream(id, http2.ErrCode(flags))
			case 4:
				_ = fr.WritePing(end, [8]byte{flags})
			case 5:
				_ = fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: uint32(flags)})
			case 6:
				_ = fr.WriteWindowUpdate(id, uint32(flags)+1)
			case 7:
				_ = fr.WriteGoAway(id, http2.ErrCodeNo, payload)
			case 8:
				_ = fr.WritePriority(id, http2.PriorityParam{StreamDep: id + 2, Weight: flags})
			case 9:
				_ = fr.WritePushPromise(http2.PushPromiseParam{StreamID: id, PromiseID: id + 1, BlockFragment: payload, EndHeaders: endHeaders, PadLength: uint8(len(pad))})
			case 10:
				_ = fr.WriteRawFrame(http2.FrameType(0x0a+flags%200), http2.Flags(flags), id, payload)
			case 11:
				_ = fr.WriteSettingsAck()
			}
			// Cut what this direction has into pieces (or keep it for
			// later: a frame header may span ops).
			for cut := next(); cut&1 == 1 && flushed[dir] < dirs[dir].buf.Len(); cut = next() {
				n := min(1+int(cut>>1)%40, dirs[dir].buf.Len()-flushed[dir])
				pieces = append(pieces, piece{in: dir == 1, start: flushed[dir], end: flushed[dir] + n})
				flushed[dir] += n
			}
		}
		for dir := range dirs {
			if flushed[dir] < dirs[dir].buf.Len() {
				pieces = append(pieces, piece{in: dir == 1, start: flushed[dir], end: dirs[dir].buf.Len()})
			}
		}

		// The model: every frame header and where it ends, per direction.
		type hdr struct {
			end int
			h   http2.FrameHeader
		}
		var heads [2][]hdr
		for dir := range dirs {
			all := dirs[dir].buf.Bytes()
			r := bytes.NewReader(all)
			if dir == 1 {
				_, _ = r.Seek(int64(len(http2.ClientPreface)), io.SeekStart)
			}
			for {
				h, err := http2.ReadFrameHeader(r)
				if err != nil {
					break
				}
				heads[dir] = append(heads[dir], hdr{end: len(all) - r.Len(), h: h})
				if _, err := r.Seek(int64(h.Length), io.SeekCurrent); err != nil {
					t.Fatal(err)
				}
			}
		}
		held := map[uint32]bool{}
		var reset []uint32
		var opened uint32
		closed := false
		model := func(dir int, p piece) {
			for _, f := range heads[dir] {
				if f.end <= p.start || f.end > p.end || closed || f.h.StreamID == 0 {
					continue
				}
				id, typ, es := f.h.StreamID, f.h.Type, f.h.Flags&http2.FlagHeadersEndStream != 0
				switch {
				case dir == 1 && typ == http2.FrameHeaders:
					opened = max(opened, id)
				case dir == 1 && typ == http2.FrameRSTStream && id <= opened:
					if held[id] {
						delete(held, id)
					} else if !slices.Contains(reset, id) {
						if len(reset) == ring {
							reset = reset[1:]
						}
						reset = append(reset, id)
					}
				case dir == 0 && typ == http2.FrameHeaders && !es:
					if !slices.Contains(reset, id) {
						held[id] = true
					}
				case dir == 0 && (typ == http2.FrameRSTStream || (typ == http2.FrameHeaders || typ == http2.FrameData) && es):
					delete(held, id)
				}
			}
			if dir == 0 && len(held) > maxHeld {
				closed, held = true, map[uint32]bool{}
			}
		}

		c := testConn(t, ring, maxHeld)
		for i, p := range pieces {
			dir := 0
			if p.in {
				dir = 1
				c.scanRead(dirs[1].buf.Bytes()[p.start:p.end])
			} else {
				c.scanWrite(dirs[0].buf.Bytes()[p.start:p.end])
			}
			model(dir, p)
			var want []uint32
			for id := range held {
				want = append(want, id)
			}
			slices.Sort(want)
			got := heldIDs(c)
			if !slices.Equal(got, want) || c.t.closed != closed || int(c.heldCount.Load()) != len(want) || c.l.held.Load() != int64(len(want)) {
				t.Fatalf("piece %d (%+v): held %v (counted %d, listener %d), closed %v; the model: %v, closed %v",
					i, p, got, c.heldCount.Load(), c.l.held.Load(), c.t.closed, want, closed)
			}
		}
	})
}

// TestTrackerRegistration: a connection is known to its listener from its
// first Write until it closes, and never after (a close before the first
// Write leaves nothing behind).
func TestTrackerRegistration(t *testing.T) {
	l := newStreamLimit(config.GRPC{MaxStreams: 8, MaxConcurrentStreams: 8, ConnectionReserve: 1, MaxBufferedBytes: 1 << 30}, 1<<16, nil, nil)
	a, b := net.Pipe()
	defer b.Close()
	c := l.track(a)
	go func() { _, _ = io.Copy(io.Discard, b) }()
	if len(l.conns) != 0 {
		t.Fatal("registered before its first Write")
	}
	if _, err := c.Write(newFrames().headers(1, false).bytes()); err != nil {
		t.Fatal(err)
	}
	if l.conns[c.key] != c || c.heldCount.Load() != 1 {
		t.Fatalf("after the first Write: registered %v, %d held", l.conns[c.key] == c, c.heldCount.Load())
	}
	c.Close()
	if len(l.conns) != 0 || l.held.Load() != 0 {
		t.Fatalf("after Close: %d connections, %d held", len(l.conns), l.held.Load())
	}
	d := l.track(&net.TCPConn{})
	d.Close()
	d.register()
	if len(l.conns) != 0 {
		t.Fatal("a connection closed before its first Write was registered")
	}
}

// TestTrackerAnswersOnTheWay: a call answered (its slot given back) counts
// until its answer's HEADERS are written, then as held (never nowhere);
// one not written keeps counting through sweeps until the client resets
// its stream; a close gives all back.
func TestTrackerAnswersOnTheWay(t *testing.T) {
	c := testConn(t, 4, 100)
	l := c.l
	answered := func() { l.mu.Lock(); c.answered(); l.mu.Unlock() }
	answered()
	if _, n := l.counts(); n != 1 || c.onTheWay() != 1 {
		t.Fatalf("an answer on its way: %d counted, %d on the connection", n, c.onTheWay())
	}
	c.scanWrite(newFrames().headers(1, false).bytes())
	if _, n := l.counts(); n != 1 || c.onTheWay() != 0 || c.heldCount.Load() != 1 {
		t.Fatalf("its HEADERS written: %d counted, %d on the way, %d held", n, c.onTheWay(), c.heldCount.Load())
	}
	c.scanWrite(newFrames().headers(1, true).bytes())
	// Written whole in one Write.
	answered()
	c.scanWrite(newFrames().headers(3, false).data(3, 10, false).headers(3, true).bytes())
	if _, n := l.counts(); n != 0 {
		t.Fatalf("answers written: %d still counted", n)
	}
	// Not written yet: it counts through any number of sweeps (an answer
	// queued behind a slow socket). The client resets its stream: it
	// counts on (pending: its bytes may still wait in grpc-go's queue)
	// until HEADERS of a stream opened after the reset are written, not
	// those of one opened before.
	answered()
	c.scanRead(clientBytes(newFrames().headers(9, false)))
	if _, n := l.counts(); n != 1 {
		t.Fatalf("not written: %d counted, want 1", n)
	}
	c.scanRead(newFrames().rst(9).bytes())
	if _, n := l.counts(); n != 1 || c.onTheWay() != 0 || c.pending.Load() != 1 {
		t.Fatalf("after the client's reset: %d counted (%d pending), want 1 pending", n, c.pending.Load())
	}
	c.scanWrite(newFrames().headers(7, true).bytes())
	if _, n := l.counts(); n != 1 {
		t.Fatalf("HEADERS of a stream opened before the reset: %d counted, want 1", n)
	}
	c.scanRead(newFrames().headers(11, false).bytes())
	c.scanWrite(newFrames().headers(11, true).bytes())
	if _, n := l.counts(); n != 0 || c.pending.Load() != 0 {
		t.Fatalf("HEADERS of a stream opened after the reset: %d counted, want 0", n)
	}
	// More HEADERS than answers on the way take nothing below 0.
	c.scanWrite(newFrames().headers(5, false).headers(7, false).bytes())
	if l.answering.Load() != 0 || c.onTheWay() != 0 {
		t.Fatalf("on the way: %d on the listener, %d on the connection", l.answering.Load(), c.onTheWay())
	}
	answered()
	answered()
	c.Close()
	if _, n := l.counts(); n != 0 {
		t.Fatalf("after close: %d counted", n)
	}
}
