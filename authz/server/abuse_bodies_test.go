package server_test

import (
	"bytes"
	"encoding/binary"
	"net"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/wardenauthz/warden/authz/config"
	"github.com/wardenauthz/warden/internal/abusetest"
)

// staller is a raw HTTP/2 client on one connection that opens Check
// streams, each a gRPC message prefix declaring a message of `declared`
// bytes followed by all but the last byte of it, as fast as the server's
// flow-control windows allow (it honours WINDOW_UPDATE and SETTINGS, as a
// patient attacker would), and never the last byte nor END_STREAM.
type staller struct {
	conn net.Conn
	fr   *http2.Framer
	done chan struct{}

	mu       sync.Mutex
	cond     *sync.Cond
	connWin  int64
	initWin  int64
	win      map[uint32]int64 // send window of each stream still open
	closed   bool
	refused  int
	buffered int64 // body bytes sent on streams the server has not ended
	sent     map[uint32]int64
}

func dialStaller(t *testing.T, addr string) *staller {
	t.Helper()
	c, fr := dialH2(t, addr)
	s := &staller{conn: c, fr: fr, done: make(chan struct{}), connWin: 65535, initWin: 65535, win: map[uint32]int64{}, sent: map[uint32]int64{}}
	s.cond = sync.NewCond(&s.mu)
	go s.read()
	t.Cleanup(func() { c.Close(); <-s.done })
	return s
}

func (s *staller) end(id uint32, refused bool) {
	if _, ok := s.win[id]; !ok {
		return
	}
	delete(s.win, id)
	s.buffered -= s.sent[id]
	delete(s.sent, id)
	if refused {
		s.refused++
	}
}

func (s *staller) read() {
	defer close(s.done)
	defer func() {
		s.mu.Lock()
		s.closed = true
		s.cond.Broadcast()
		s.mu.Unlock()
	}()
	for {
		fr, err := s.fr.ReadFrame()
		if err != nil {
			return
		}
		s.mu.Lock()
		switch fr := fr.(type) {
		case *http2.SettingsFrame:
			if !fr.IsAck() {
				if v, ok := fr.Value(http2.SettingInitialWindowSize); ok {
					d := int64(v) - s.initWin
					s.initWin = int64(v)
					for id := range s.win {
						s.win[id] += d
					}
				}
				_ = s.fr.WriteSettingsAck()
			}
		case *http2.PingFrame:
			if !fr.IsAck() {
				_ = s.fr.WritePing(true, fr.Data)
			}
		case *http2.WindowUpdateFrame:
			if fr.StreamID == 0 {
				s.connWin += int64(fr.Increment)
			} else if _, ok := s.win[fr.StreamID]; ok {
				s.win[fr.StreamID] += int64(fr.Increment)
			}
		case *http2.RSTStreamFrame:
			s.end(fr.StreamID, true)
		case *http2.MetaHeadersFrame:
			if fr.StreamEnded() {
				s.end(fr.StreamID, true)
			}
		case *http2.GoAwayFrame:
			s.closed = true
		}
		s.cond.Broadcast()
		s.mu.Unlock()
	}
}

// stall opens n streams as above; it returns when each is sent all but its
// last byte, ended by the server, or blocked by flow control for `patience`.
func (s *staller) stall(t *testing.T, n, declared int, patience time.Duration) {
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	for _, h := range [][2]string{
		{":method", "POST"}, {":scheme", "http"}, {":path", "/envoy.service.auth.v3.Authorization/Check"},
		{":authority", "warden"}, {"content-type", "application/grpc"}, {"te", "trailers"},
	} {
		_ = enc.WriteField(hpack.HeaderField{Name: h[0], Value: h[1]})
	}
	chunk := make([]byte, 16384)
	want := map[uint32]int64{}
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range n {
		if s.closed {
			return
		}
		id := uint32(2*i + 1)
		if s.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: hb.Bytes(), EndHeaders: true}) != nil {
			return
		}
		s.win[id] = s.initWin
		want[id] = int64(5 + declared - 1)
	}
	prefix := make([]byte, 5)
	binary.BigEndian.PutUint32(prefix[1:], uint32(declared))
	last := time.Now()
	for !s.closed && time.Since(last) < patience {
		progress := false
		for id, w := range s.win {
			left := want[id] - s.sent[id]
			k := min(left, w, s.connWin, int64(len(chunk)))
			if k <= 0 {
				continue
			}
			data := chunk[:k]
			if s.sent[id] == 0 {
				copy(chunk, prefix)
			} else {
				clear(chunk[:5])
			}
			if s.fr.WriteData(id, false, data) != nil {
				return
			}
			s.win[id] -= k
			s.connWin -= k
			s.sent[id] += k
			s.buffered += k
			progress = true
		}
		if progress {
			last = time.Now()
			continue
		}
		// Wait for a window update (or give up after patience).
		timer := time.AfterFunc(patience/4, func() { s.mu.Lock(); s.cond.Broadcast(); s.mu.Unlock() })
		s.cond.Wait()
		timer.Stop()
	}
}

// TestAbuseStalledBodies: streams that declare a large message and send
// all but its last byte, holding it until stream_timeout (issue 16 F1:
// 4096 streams × 64 KiB took the heap from 4 to 290 MiB; a client that
// honours WINDOW_UPDATE gets the whole declared message buffered, up to
// max_recv_bytes a stream) hold no more than server.grpc.max_buffered_bytes
// plus each connection's reserve: (connection_reserve × connections) ×
// max(64 KiB, max_recv_bytes). A normal client is answered throughout.
func TestAbuseStalledBodies(t *testing.T) {
	const maxRecv, budget, reserve = 256 << 10, 16 << 20, 2
	e := start(t, func(c *config.Config) {
		c.Server.MaxRecvBytes = maxRecv
		c.Server.Limits.MaxHeaderBytes, c.Server.Limits.MaxBodyBytes = 96<<10, 128<<10
		c.Server.GRPC.MaxConcurrentStreams = 256
		c.Server.GRPC.MaxStreams = 4096
		c.Server.GRPC.MaxBufferedBytes = budget
		c.Server.GRPC.ConnectionReserve = reserve
		c.Server.GRPC.StreamTimeout = 5 * time.Second
		c.Store.Redis.Timeout = 100 * time.Millisecond
	})
	tok := e.token(t, "alice", "staff")
	if r := e.reason(t, tok); r != "policy_allow" {
		t.Fatalf("before: %s", r)
	}
	conns := abusetest.Count(8, 16)
	streams := abusetest.Count(64, 256) // per connection
	before := abusetest.Measure()
	var ss []*staller
	var wg sync.WaitGroup
	for range conns {
		s := dialStaller(t, e.addr)
		ss = append(ss, s)
		wg.Add(1)
		go func() { defer wg.Done(); s.stall(t, streams, maxRecv-100, 300*time.Millisecond) }()
	}
	wg.Wait()
	during := abusetest.Measure()
	var held int64
	for _, s := range ss {
		s.mu.Lock()
		held += s.buffered
		s.mu.Unlock()
	}
	bound := uint64(budget + reserve*conns*maxRecv)
	t.Logf("%d connections × %d streams declaring %d KiB: %d MiB of bodies held by the server; bound %d MiB", conns, streams, maxRecv>>10, held>>20, bound>>20)
	if r := e.reason(t, tok); r != "policy_allow" {
		t.Errorf("a normal client during the flood: %s", r)
	}
	// The heap holds the bodies (and grpc-go's bookkeeping); no
	// race-detector scaling: the bytes are the same under it.
	abusetest.Check(t, "while held", before, during, abusetest.Budget{Heap: bound + 16*abusetest.MiB})
	if uint64(held) > bound {
		t.Errorf("the server accepted %d MiB of incomplete bodies, bound %d MiB", held>>20, bound>>20)
	}
}
