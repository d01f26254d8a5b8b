package server_test

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/wardenauthz/warden/authz/config"
	"github.com/wardenauthz/warden/authz/server"
	"github.com/wardenauthz/warden/internal/abusetest"
)

// h2cFlood is a raw h2c client on one connection of the HTTP authorization
// listener: it opens GET streams whose header blocks decode to about
// 105 KB and cost about 40 bytes on the wire (27 copies of a 3,900-byte
// header, HPACK-indexed after the first), and counts the answers by
// status.
type h2cFlood struct {
	conn   net.Conn
	fr     *http2.Framer
	enc    *hpack.Encoder
	hb     bytes.Buffer
	wmu    sync.Mutex
	next   uint32
	status sync.Map // status code → *atomic.Int64
	done   chan struct{}
}

// dialH2C connects to addr; with zeroWindow the client's stream window is
// 0 (SETTINGS_INITIAL_WINDOW_SIZE) and never opened: no answer's body can
// be sent.
func dialH2C(t *testing.T, addr string, zeroWindow bool) *h2cFlood {
	t.Helper()
	var settings []http2.Setting
	if zeroWindow {
		settings = append(settings, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0})
	}
	c, fr := dialH2(t, addr, settings...)
	f := &h2cFlood{conn: c, fr: fr, next: 1, done: make(chan struct{})}
	f.enc = hpack.NewEncoder(&f.hb)
	go f.read()
	t.Cleanup(func() { c.Close(); <-f.done })
	return f
}

func (f *h2cFlood) read() {
	defer close(f.done)
	for {
		fr, err := f.fr.ReadFrame()
		if err != nil {
			return
		}
		f.wmu.Lock()
		ackControl(f.fr, fr)
		if fr, ok := fr.(*http2.MetaHeadersFrame); ok {
			n, _ := f.status.LoadOrStore(fr.PseudoValue("status"), new(atomic.Int64))
			n.(*atomic.Int64).Add(1)
		}
		f.wmu.Unlock()
	}
}

// answered is the count of answers with status code.
func (f *h2cFlood) answered(code string) int64 {
	if n, ok := f.status.Load(code); ok {
		return n.(*atomic.Int64).Load()
	}
	return 0
}

// open opens n GET streams with large headers; with endStream they are
// complete requests, else their bodies never come.
func (f *h2cFlood) open(t *testing.T, n int, endStream bool) {
	big := strings.Repeat("b", 3900)
	for range n {
		f.wmu.Lock()
		f.hb.Reset()
		for _, h := range [][2]string{{":method", "GET"}, {":scheme", "http"}, {":path", "/ext_authz/orders/" + strconv.Itoa(int(f.next))}, {":authority", "warden"}} {
			_ = f.enc.WriteField(hpack.HeaderField{Name: h[0], Value: h[1]})
		}
		for range 27 {
			_ = f.enc.WriteField(hpack.HeaderField{Name: "x-big", Value: big})
		}
		err := f.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: f.next, BlockFragment: f.hb.Bytes(), EndHeaders: true, EndStream: endStream})
		f.wmu.Unlock()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			t.Fatalf("stream %d: %v", f.next, err)
		}
		f.next += 2
	}
}

// httpAuthzBound is the documented bound (README, server.http_authz) of
// what the HTTP authorization listener's connections and requests can
// hold: connections × 2 MiB + max_requests × 2 × (max_header_bytes +
// 16 KiB + max_body_bytes + 1).
func httpAuthzBound(conns, requests, maxHeader, maxBody int) uint64 {
	return uint64(conns)*2*abusetest.MiB + uint64(requests)*2*uint64(maxHeader+16<<10+maxBody+1)
}

// TestAbuseHTTPAuthzStreamFlood: the session-11 outside attack F1 scaled
// down. 16 h2c connections each open 100 GET streams of 105 KB of headers
// (40 bytes each on the wire): with no END_STREAM (the handler waits for
// the body until read_timeout), or complete under a zero HTTP/2 window (the
// answer's body waits). server.http_authz.max_requests are handled, the
// rest answered 503 at once and counted; the heap and goroutines stay
// within the documented bound (before: a handler and the headers of every
// stream, 256 a connection, over all connections unbounded: 1,600 here). A
// well-behaved HTTP/1.1 client on its own connection gets 503 while the
// flood holds the shared requests (no reserve: this bounds memory, not
// fairness), and is answered once the flood's connections close.
func TestAbuseHTTPAuthzStreamFlood(t *testing.T) {
	for _, tc := range []struct {
		name       string
		zeroWindow bool
	}{{"no END_STREAM", false}, {"zero window", true}} {
		t.Run(tc.name, func(t *testing.T) {
			const maxRequests, maxBody, conns, streams = 32, 4 << 10, 16, 100
			e := httpAuthz(t, []string{"127.0.0.1/32"}, func(c *config.Config) {
				c.Server.HTTPAuthz.MaxRequests = maxRequests
				c.Server.HTTPAuthz.ReadTimeout = 20 * time.Second // the flood holds its requests throughout
				c.Server.Limits.MaxBodyBytes = maxBody
			})
			addr := strings.TrimPrefix(e.httpAuthz, "http://")
			tok := e.token(t, "alice", "staff")
			h1 := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
			good := func() (int, string, string) {
				t.Helper()
				resp, err := h1.Do(asHTTP(t, e.httpAuthz, sample(t, "01-get-bearer-jwt.json", tok), styleEnvoy))
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				b, _ := io.ReadAll(resp.Body)
				return resp.StatusCode, string(b), resp.Header.Get("Retry-After")
			}
			if code, body, _ := good(); code != http.StatusOK {
				t.Fatalf("before: %d %s", code, body)
			}
			before := abusetest.Measure()
			var floods []*h2cFlood
			for range conns {
				f := dialH2C(t, addr, tc.zeroWindow)
				f.open(t, streams, tc.zeroWindow)
				floods = append(floods, f)
			}
			refused := func() (n int64) {
				for _, f := range floods {
					n += f.answered("503")
				}
				return n
			}
			want := int64(conns*streams - maxRequests)
			deadline := time.Now().Add(15 * time.Second)
			for refused() < want && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			during := abusetest.Measure()
			if n := refused(); n < want {
				t.Errorf("%d streams answered 503, want %d (%d handled at once)", n, want, maxRequests)
			}
			bound := httpAuthzBound(conns+1, maxRequests, 96<<10, maxBody)
			t.Logf("documented bound %.1f MiB", float64(bound)/abusetest.MiB)
			abusetest.Check(t, "during the flood", before, during, abusetest.Budget{
				Heap:       bound,
				Goroutines: maxRequests + 3*conns + 30,
			})
			code, body, retry := good()
			if code != http.StatusServiceUnavailable || body != "" || retry == "" {
				t.Errorf("a well-behaved client while the flood holds every request: %d %q Retry-After %q, want 503, no body, Retry-After", code, body, retry)
			}
			if got := metricValue(t, e.http, "warden_http_authz_requests_refused_total"); got < float64(want+1) {
				t.Errorf("warden_http_authz_requests_refused_total %v, want at least %d", got, want+1)
			}
			for _, f := range floods {
				f.conn.Close()
				<-f.done
			}
			abusetest.Settled(t, before, 20)
			if code, body, _ := good(); code != http.StatusOK {
				t.Errorf("after the flood: %d %s", code, body)
			}
		})
	}
}

// TestAbuseHTTPAuthzConnectionCap: the session-11 outside attack F3 scaled
// down, and the session-12 one's F7. Past server.http_authz.max_connections
// a new connection takes the place of the one idle the longest (before,
// idle keep-alive connections held the listener for their idle timeout);
// with every connection busy with a request, it waits (in the kernel's
// accept queue: before the cap, every connection was accepted, and 386 of
// them took every file descriptor of a Warden limited to 400) while the
// gRPC listener and /healthz keep answering, and is answered once a held
// one closes.
func TestAbuseHTTPAuthzConnectionCap(t *testing.T) {
	const maxConns = 4
	e := httpAuthz(t, []string{"127.0.0.1/32"}, func(c *config.Config) {
		c.Server.HTTPAuthz.MaxConnections = maxConns
	})
	tok := e.token(t, "alice", "staff")
	const req = "GET /ext_authz/orders/1 HTTP/1.1\r\nHost: warden\r\n\r\n"
	const busy = "POST /ext_authz/orders/1 HTTP/1.1\r\nHost: warden\r\nContent-Length: 1000\r\n\r\n{"
	abusetest.ConnectionCap(t, strings.TrimPrefix(e.httpAuthz, "http://"), req, busy, maxConns, http.StatusUnauthorized, func() {
		if r := e.reason(t, tok); r != "policy_allow" {
			t.Errorf("gRPC while the HTTP authorization listener is full: %s", r)
		}
		resp, err := http.Get(e.http + "/healthz")
		if err != nil {
			t.Fatalf("/healthz while the HTTP authorization listener is full: %v", err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("/healthz: %d", resp.StatusCode)
		}
	})
}

// TestHTTPAuthzFrameLimit: the HTTP authorization listener reads HTTP/2
// frames of at most 16 KiB (what one costs a connection while it is read):
// a HEADERS frame over it (30 KB: 40 KB of header, compressed) ends the connection with FRAME_SIZE_ERROR
// (net/http's default would read frames of up to 1 MiB, and answer this
// one).
func TestHTTPAuthzFrameLimit(t *testing.T) {
	e := httpAuthz(t, []string{"127.0.0.1/32"})
	c, fr := dialH2(t, strings.TrimPrefix(e.httpAuthz, "http://"))
	defer c.Close()
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	for _, h := range [][2]string{{":method", "GET"}, {":scheme", "http"}, {":path", "/ext_authz/orders/1"}, {":authority", "warden"}, {"x-big", strings.Repeat("b", 40<<10)}} {
		_ = enc.WriteField(hpack.HeaderField{Name: h[0], Value: h[1]})
	}
	if hb.Len() <= 16<<10 {
		t.Fatalf("header block of %d bytes, want over 16 KiB", hb.Len())
	}
	if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: hb.Bytes(), EndHeaders: true, EndStream: true}); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("connection ended without a GOAWAY: %v", err)
		}
		ackControl(fr, f)
		switch f := f.(type) {
		case *http2.GoAwayFrame:
			if f.ErrCode != http2.ErrCodeFrameSize {
				t.Errorf("GOAWAY %v, want FRAME_SIZE_ERROR", f.ErrCode)
			}
			return
		case *http2.MetaHeadersFrame:
			t.Fatalf("a frame over 16 KiB was read and answered %s", f.PseudoValue("status"))
		}
	}
}

// TestProbeListenerIdleGivesWay: the session-12 outside attack F7. 260
// keep-alive connections that had each made one /healthz request held
// the probe and metrics listener (capped at 256) for its one-minute idle
// timeout, and a kubelet's /healthz timed out meanwhile. Now a new
// connection takes the place of the one idle the longest; connections
// busy with a request still hold theirs.
func TestProbeListenerIdleGivesWay(t *testing.T) {
	e := start(t)
	tok := e.token(t, "alice", "staff")
	// The harness's own keep-alive connections to the listener (its
	// readiness checks) would be idle longer than the helper's: close them
	// and give the server a moment to see it.
	http.DefaultClient.CloseIdleConnections()
	time.Sleep(time.Second)
	const req = "GET /healthz HTTP/1.1\r\nHost: warden\r\n\r\n"
	const busy = "GET /healthz HTTP/1.1\r\nHost: warden\r\nContent-Length: 1000\r\n\r\n{"
	abusetest.ConnectionCap(t, strings.TrimPrefix(e.http, "http://"), req, busy, server.MaxHTTPConns, http.StatusOK, func() {
		if r := e.reason(t, tok); r != "policy_allow" {
			t.Errorf("gRPC while the probe listener is full: %s", r)
		}
	})
	if n := metricValue(t, e.http, `warden_http_connections_displaced_total{listener="http"}`); n < 1 {
		t.Errorf("warden_http_connections_displaced_total{listener=\"http\"} = %v, want at least 1", n)
	}
}
