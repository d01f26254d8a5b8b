package server_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/encoding/gzip"
	"google.golang.org/grpc/status"

	"github.com/wardenauthz/warden/authz/config"
	"github.com/wardenauthz/warden/internal/abusetest"
)

// h2flood is a raw HTTP/2 client on one connection that opens streams
// with HEADERS alone (no DATA, no END_STREAM) and keeps the connection
// alive: it answers SETTINGS and PINGs and counts what the server resets.
type h2flood struct {
	conn    net.Conn
	fr      *http2.Framer
	wmu     sync.Mutex
	next    uint32
	refused atomic.Int64 // RST_STREAM REFUSED_STREAM
	ended   atomic.Int64 // streams the server ended otherwise (trailers, RST)
	goaway  atomic.Bool
	done    chan struct{}
}

func dialFlood(t *testing.T, addr string) *h2flood {
	t.Helper()
	c, fr := dialH2(t, addr)
	f := &h2flood{conn: c, fr: fr, next: 1, done: make(chan struct{})}
	go f.read()
	t.Cleanup(func() { c.Close(); <-f.done })
	return f
}

func (f *h2flood) read() {
	defer close(f.done)
	for {
		fr, err := f.fr.ReadFrame()
		if err != nil {
			return
		}
		f.wmu.Lock()
		ackControl(f.fr, fr)
		switch fr := fr.(type) {
		case *http2.RSTStreamFrame:
			if fr.ErrCode == http2.ErrCodeRefusedStream {
				f.refused.Add(1)
			} else {
				f.ended.Add(1)
			}
		case *http2.MetaHeadersFrame:
			if fr.StreamEnded() {
				f.ended.Add(1)
			}
		case *http2.GoAwayFrame:
			f.goaway.Store(true)
		}
		f.wmu.Unlock()
	}
}

// open writes n HEADERS frames, each a new Check stream left open; it
// returns the bytes written.
func (f *h2flood) open(t *testing.T, n int) int {
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	total := 0
	for range n {
		hb.Reset()
		for _, h := range [][2]string{
			{":method", "POST"}, {":scheme", "http"}, {":path", "/envoy.service.auth.v3.Authorization/Check"},
			{":authority", "warden"}, {"content-type", "application/grpc"}, {"te", "trailers"},
		} {
			_ = enc.WriteField(hpack.HeaderField{Name: h[0], Value: h[1]})
		}
		f.wmu.Lock()
		err := f.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: f.next, BlockFragment: hb.Bytes(), EndHeaders: true})
		f.wmu.Unlock()
		if err != nil {
			if errors.Is(err, net.ErrClosed) || f.goaway.Load() {
				return total // the server closed the connection: fine
			}
			t.Fatalf("stream %d: %v", f.next, err)
		}
		total += 9 + hb.Len()
		f.next += 2
	}
	return total
}

// TestAbuseStreamFlood: streams opened with HEADERS alone and held while
// the client answers pings (issue 16: 60,017 streams and +450 MB RSS on
// one connection, held 75 s) are capped per connection and in all
// (server.grpc.max_concurrent_streams, then max_streams: counted), each ends by
// server.grpc.stream_timeout, and a normal client is answered throughout:
// past max_streams, a connection still has a reserve of its own.
func TestAbuseStreamFlood(t *testing.T) {
	const perConn, maxStreams, streamTimeout = 100, 250, time.Second
	e := start(t, func(c *config.Config) {
		c.Server.GRPC.MaxConcurrentStreams = perConn
		c.Server.GRPC.MaxStreams = maxStreams
		c.Server.GRPC.StreamTimeout = streamTimeout
		c.Store.Redis.Timeout = 100 * time.Millisecond
	})
	tok := e.token(t, "alice", "staff")
	if r := e.reason(t, tok); r != "policy_allow" {
		t.Fatalf("before: %s", r)
	}
	conns := abusetest.Count(4, 16)
	streams := abusetest.Count(2000, 60_000) // per connection; 60,000 is the 900 KB of HEADERS
	before := abusetest.Measure()
	var floods []*h2flood
	written := 0
	for range conns {
		f := dialFlood(t, e.addr)
		written += f.open(t, streams)
		floods = append(floods, f)
	}
	if r := e.reason(t, tok); r != "policy_allow" {
		t.Errorf("a normal client during the flood: %s", r)
	}
	during := abusetest.Measure()
	held := min(conns*perConn, maxStreams+conns*8) // 8: a connection's reserve past max_streams
	t.Logf("%d connections, %d streams each, %d KB of HEADERS; at most %d held", conns, streams, written>>10, held)
	abusetest.Check(t, "while held", before, during, abusetest.Budget{
		Goroutines: held + 200,
		Heap:       abusetest.Scale[uint64](64 * abusetest.MiB),
		RSS:        abusetest.Scale[uint64](128 * abusetest.MiB),
		CPU:        abusetest.Scale(time.Duration(conns*streams) * 50 * time.Microsecond),
	})
	if n := metricValue(t, e.http, `warden_grpc_streams_refused_total{listener="grpc"}`); n < 1 {
		t.Errorf("warden_grpc_streams_refused_total: %v, want some (past max_streams)", n)
	}
	// The held streams end by stream_timeout though the client keeps its
	// connections alive (a connection is a few goroutines of its own).
	deadline := time.Now().Add(streamTimeout + 5*time.Second)
	left := 20 + 8*conns
	for {
		after := abusetest.Measure()
		if after.Goroutines-before.Goroutines <= left {
			abusetest.Check(t, "after stream_timeout", before, after, abusetest.Budget{Goroutines: left, Heap: abusetest.Scale[uint64](32 * abusetest.MiB)})
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines more than before %s after the flood: held streams did not end", after.Goroutines-before.Goroutines, streamTimeout+5*time.Second)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Every stream was answered: refused past a connection's limit
	// (REFUSED_STREAM), failed past max_streams (UNAVAILABLE), or ended at
	// stream_timeout; none is left hanging.
	var answered int64
	for _, f := range floods {
		answered += f.refused.Load() + f.ended.Load()
	}
	if want := int64(conns * streams); answered < want*99/100 {
		t.Errorf("the server answered %d of %d streams", answered, want)
	}
	if r := e.reason(t, tok); r != "policy_allow" {
		t.Errorf("after: %s", r)
	}
}

// resetFlood opens n streams on f, each reset (RST_STREAM CANCEL) right
// after its HEADERS: HTTP/2 rapid reset (CVE-2023-44487).
func (f *h2flood) resetFlood(t *testing.T, n int) {
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	for range n {
		hb.Reset()
		for _, h := range [][2]string{
			{":method", "POST"}, {":scheme", "http"}, {":path", "/envoy.service.auth.v3.Authorization/Check"},
			{":authority", "warden"}, {"content-type", "application/grpc"}, {"te", "trailers"},
		} {
			_ = enc.WriteField(hpack.HeaderField{Name: h[0], Value: h[1]})
		}
		f.wmu.Lock()
		err := f.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: f.next, BlockFragment: hb.Bytes(), EndHeaders: true})
		if err == nil {
			err = f.fr.WriteRSTStream(f.next, http2.ErrCodeCancel)
		}
		f.wmu.Unlock()
		if err != nil {
			if f.goaway.Load() || errors.Is(err, net.ErrClosed) {
				return
			}
			t.Fatalf("stream %d: %v", f.next, err)
		}
		f.next += 2
	}
}

// TestAbuseRapidReset: streams opened and reset at once (HTTP/2 rapid
// reset) leave no handler behind and cost bounded CPU per stream; a normal
// client is answered throughout.
func TestAbuseRapidReset(t *testing.T) {
	e := start(t, func(c *config.Config) { c.Server.GRPC.MaxConcurrentStreams = 100 })
	tok := e.token(t, "alice", "staff")
	n := abusetest.Count(20_000, 500_000)
	before := abusetest.Measure()
	f := dialFlood(t, e.addr)
	f.resetFlood(t, n)
	if r := e.reason(t, tok); r != "policy_allow" {
		t.Errorf("a normal client during the flood: %s", r)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		after := abusetest.Measure()
		if after.Goroutines-before.Goroutines <= 30 || time.Now().After(deadline) {
			abusetest.Check(t, fmt.Sprintf("%d streams reset at once", n), before, after, abusetest.Budget{
				Goroutines: 30,
				Heap:       abusetest.Scale[uint64](32 * abusetest.MiB),
				CPU:        abusetest.Scale(time.Duration(n) * 50 * time.Microsecond),
			})
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestAbusePingFlood: a client that pings more often than
// server.grpc.keepalive_min_time is sent GOAWAY (ENHANCE_YOUR_CALM) and
// its connection closed; other clients are unaffected.
func TestAbusePingFlood(t *testing.T) {
	e := start(t)
	tok := e.token(t, "alice", "staff")
	f := dialFlood(t, e.addr)
	sent := 0
	for range abusetest.Count(1000, 100_000) {
		f.wmu.Lock()
		err := f.fr.WritePing(false, [8]byte{byte(sent)})
		f.wmu.Unlock()
		if err != nil {
			break
		}
		sent++
	}
	select {
	case <-f.done:
	case <-time.After(5 * time.Second):
		t.Errorf("%d pings in a row: the connection is still open", sent)
	}
	if !f.goaway.Load() {
		t.Errorf("%d pings in a row: no GOAWAY", sent)
	}
	if r := e.reason(t, tok); r != "policy_allow" {
		t.Errorf("another client: %s", r)
	}
}

// dialH2 opens a raw HTTP/2 connection to addr: it sends the client preface
// and a SETTINGS frame of settings (none: empty) and returns the framer,
// which decodes header blocks. The caller reads frames and closes the
// connection.
func dialH2(t *testing.T, addr string, settings ...http2.Setting) (net.Conn, *http2.Framer) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	fr := http2.NewFramer(c, c)
	fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	if _, err := io.WriteString(c, http2.ClientPreface); err != nil {
		c.Close()
		t.Fatal(err)
	}
	if err := fr.WriteSettings(settings...); err != nil {
		c.Close()
		t.Fatal(err)
	}
	return c, fr
}

// TestStreamSlotsComeBackWithTheAnswer: a stream's place under max_streams
// is given back when its Check is answered, not some time later: a client
// sending one Check at a time is never refused, however tight the limit
// (the slot used to come back from a context callback on a goroutine of
// its own, after the client's next Check had already been refused).
func TestStreamSlotsComeBackWithTheAnswer(t *testing.T) {
	e := start(t, func(c *config.Config) {
		c.Server.GRPC.MaxConcurrentStreams = 1
		c.Server.GRPC.MaxStreams = 1
		c.Server.GRPC.ConnectionReserve = 1
	})
	req := sample(t, "01-get-bearer-jwt.json", e.token(t, "alice", "staff"))
	refused := 0
	for range 2000 {
		if _, err := e.client.Check(context.Background(), req); status.Code(err) == codes.Unavailable {
			refused++
		} else if err != nil {
			t.Fatal(err)
		}
	}
	if refused > 0 {
		t.Errorf("%d of 2000 sequential Checks refused as too many streams", refused)
	}
}

// TestCompressedCheckRefused: a gzip-compressed CheckRequest is refused
// unread (a few KiB of gzip would inflate to a max_recv_bytes message),
// and the connection goes on answering plain ones.
func TestCompressedCheckRefused(t *testing.T) {
	e := start(t)
	req := sample(t, "01-get-bearer-jwt.json", e.token(t, "alice", "staff"))
	resp, err := e.client.Check(context.Background(), req, grpc.UseCompressor(gzip.Name))
	if err == nil {
		t.Fatalf("compressed Check answered: %v", resp.GetStatus())
	}
	if c := status.Code(err); c != codes.Internal && c != codes.Unimplemented {
		t.Errorf("compressed Check: %v", err)
	}
	if _, err := e.client.Check(context.Background(), req); err != nil {
		t.Fatalf("plain Check after a compressed one: %v", err)
	}
}

// TestAnsweredCheckStartsNoGoroutine: a stream whose Check is answered
// gives its slot back and stops the callback that would give it back at the
// context's end, which ran on a goroutine of its own for every call (issue
// 18: CPU per Check). Counted: goroutines created over 500 sequential
// Checks (the server answers on its stream workers).
func TestAnsweredCheckStartsNoGoroutine(t *testing.T) {
	e := start(t)
	req := sample(t, "01-get-bearer-jwt.json", e.token(t, "alice", "staff"))
	if _, err := e.client.Check(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	const calls = 500
	before := goroutinesCreated()
	for range calls {
		if _, err := e.client.Check(context.Background(), req); err != nil {
			t.Fatal(err)
		}
	}
	if n := goroutinesCreated() - before; n > calls/10 {
		t.Errorf("%d goroutines created over %d Checks", n, calls)
	}
}

// ackControl answers f when it is a SETTINGS or PING the server sent (not
// an ACK), as an HTTP/2 client must (under the caller's write lock).
func ackControl(w *http2.Framer, f http2.Frame) {
	switch f := f.(type) {
	case *http2.SettingsFrame:
		if !f.IsAck() {
			_ = w.WriteSettingsAck()
		}
	case *http2.PingFrame:
		if !f.IsAck() {
			_ = w.WritePing(true, f.Data)
		}
	}
}
