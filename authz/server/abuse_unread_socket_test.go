//go:build linux

package server_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/wardenauthz/warden/authz/config"
	"github.com/wardenauthz/warden/authz/server"
	"github.com/wardenauthz/warden/identity/oidctest"
	"github.com/wardenauthz/warden/internal/abusetest"
	"github.com/wardenauthz/warden/internal/testwait"
)

// TestUnreadSocket: a client that opens its HTTP/2 windows wide but never
// reads its socket (a receive buffer of 2 KB), and keeps the connection
// busy with a 1-byte WINDOW_UPDATE every 50 ms (so keepalive never pings):
// every answer is written whole from grpc-go's view, into the kernel's
// send buffer. Before, the kernel took about 2 MB of answers a connection
// (128 connections: 160–172 MB of socket memory, outside Warden's heap
// and counts) and the connection lived on. Now the unsent bytes a
// connection may leave in the kernel are bounded (TCP_NOTSENT_LOWAT), the
// writer then waits, and a write blocked past stream_timeout closes the
// connection (counted with the unread answers); every count comes back.
func TestUnreadSocket(t *testing.T) {
	const timeout = 400 * time.Millisecond
	e := start(t, func(c *config.Config) {
		c.Server.GRPC.StreamTimeout = timeout
		c.Server.MaxRecvBytes = 256 << 10
	})
	_, msg := largeAnswer(t, e)
	u := dialUnreadSocket(t, e.addr)
	// 40 answers of about 13 KB: 520 KB, which the kernel used to take.
	for range 40 {
		u.open(t, msg)
		time.Sleep(5 * time.Millisecond)
	}
	start := time.Now()
	closed := func() bool { return metricValue(t, e.http, unreadMetric) == 1 }
	for !closed() && time.Since(start) < timeout*3/2+5*time.Second {
		if err := u.fr.WriteWindowUpdate(0, 1); err != nil {
			break // closed: the write fails once the server's reset arrives
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !closed() {
		t.Fatalf("%s = %v after %v: the connection whose socket is never read lives on", unreadMetric, metricValue(t, e.http, unreadMetric), time.Since(start))
	}
	testwait.Until(t, 5*time.Second, "every count back", func() bool { o, h := server.GRPCStreams(e.svc); return o == 0 && h == 0 })
}

// TestUnreadSocketQueueCounted: once grpc-go's writer waits on a socket
// the client does not read, the answers queued behind it keep counting
// against the limits until the connection is closed: the tap admits no
// more than the shared streams and the connection's reserve. Before, their
// counts expired after one or two sweeps and a third more were admitted
// (the session-10 review's probe: 16 against 12).
func TestUnreadSocketQueueCounted(t *testing.T) {
	const timeout = 2 * time.Second
	e := start(t, socketLimits(timeout))
	_, msg := largeAnswer(t, e)
	u := dialUnreadSocket(t, e.addr)
	for range 40 { // past what the kernel takes: the writer waits
		u.open(t, msg)
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	const refusedMetric = `warden_grpc_streams_refused_total{listener="grpc"}`
	refused0 := metricValue(t, e.http, refusedMetric)
	opened := 0
	for end := time.Now().Add(timeout * 6 / 5); time.Now().Before(end) && metricValue(t, e.http, unreadMetric) == 0; {
		u.open(t, msg)
		opened++
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond)
	admitted := opened - int(metricValue(t, e.http, refusedMetric)-refused0)
	t.Logf("after the writer blocked: %d opened, %d admitted", opened, admitted)
	if admitted > 4+8 {
		t.Errorf("%d Checks admitted behind a blocked writer: want at most the 4 shared streams and the reserve of 8", admitted)
	}
}

// socketLimits: 4 shared streams and a reserve of 8 (grpc-go itself
// refuses past 256 a connection), 256 KiB messages, stream_timeout.
func socketLimits(timeout time.Duration) func(*config.Config) {
	return func(c *config.Config) {
		c.Server.GRPC.StreamTimeout = timeout
		c.Server.MaxRecvBytes = 256 << 10
		c.Server.GRPC.MaxStreams, c.Server.GRPC.ConnectionReserve = 4, 8
	}
}

// dialUnreadSocket is a client that opens its HTTP/2 windows wide and
// never reads its socket (a receive buffer of 2 KB).
func dialUnreadSocket(t *testing.T, addr string) *unreadClient {
	t.Helper()
	c := dialUnreadSocketRaw(t, addr)
	u := &unreadClient{conn: c, fr: http2.NewFramer(c, c), next: 1}
	u.enc = hpack.NewEncoder(&u.hb)
	if _, err := c.Write([]byte(http2.ClientPreface)); err != nil {
		t.Fatal(err)
	}
	if err := u.fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1<<31 - 1}); err != nil {
		t.Fatal(err)
	}
	if err := u.fr.WriteWindowUpdate(0, 1<<30); err != nil {
		t.Fatal(err)
	}
	return u
}

// TestSlowReaderBounded: a client that reads its socket slowly (16 KB
// every 100 ms: no write stays blocked for stream_timeout) and keeps
// opening Checks with 13 KB answers: the answers admitted and not yet
// read whole never exceed the 4 shared streams and the connection's
// reserve of 8, and what the kernel holds unsent, however long it goes on
// (49 before, 19 now). Before, the answers queued
// behind the slow socket stopped counting after one or two sweeps, and
// such clients grew Warden's heap to 330 MB in 30 s (the session-10
// outside attack).
func TestSlowReaderBounded(t *testing.T) {
	const timeout = time.Second
	e := start(t, socketLimits(timeout))
	_, msg := largeAnswer(t, e)
	u := dialUnreadSocket(t, e.addr)
	// The slow reader: 16 KB every 100 ms, parsed for the streams that
	// ended (trailers or a reset).
	pr, pw := io.Pipe()
	go func() {
		buf := make([]byte, 16<<10)
		for {
			n, err := u.conn.Read(buf)
			if _, werr := pw.Write(buf[:n]); err != nil || werr != nil {
				pw.CloseWithError(err)
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	var ended atomic.Int32 // answers (streams with DATA) read whole
	go func() {
		fr := http2.NewFramer(io.Discard, pr)
		answers := map[uint32]bool{}
		for {
			f, err := fr.ReadFrame()
			if err != nil {
				return
			}
			switch f := f.(type) {
			case *http2.DataFrame:
				answers[f.StreamID] = true
			case *http2.HeadersFrame:
				if f.StreamEnded() && answers[f.StreamID] {
					ended.Add(1)
				}
			}
		}
	}()
	const refusedMetric = `warden_grpc_streams_refused_total{listener="grpc"}`
	refused0 := metricValue(t, e.http, refusedMetric)
	opened, worst := 0, 0 // admitted and not read whole, at worst
	for end := time.Now().Add(3 * timeout); time.Now().Before(end); {
		if _, err := u.send("/envoy.service.auth.v3.Authorization/Check", "", msg); err != nil {
			break // closed: an answer waited past stream_timeout
		}
		opened++
		time.Sleep(20 * time.Millisecond)
		admitted := opened - int(metricValue(t, e.http, refusedMetric)-refused0)
		worst = max(worst, admitted-int(ended.Load()))
	}
	t.Logf("%d opened, %v refused, %d answers read whole; at worst %d admitted and not read", opened, metricValue(t, e.http, refusedMetric)-refused0, ended.Load(), worst)
	// Counted: the 4 shared streams and the reserve of 8. Not counted, but
	// bounded: what the kernel holds unsent (128 KiB, TCP_NOTSENT_LOWAT:
	// about 10 answers of 13 KB), and one or two on their way.
	if bound := 4 + 8 + (128<<10)/13_000 + 2; worst > bound {
		t.Errorf("%d Checks admitted and not read whole at once: want at most %d", worst, bound)
	}
}

// TestUnreadSocketHTTP: the probe listener (/metrics) and the HTTP
// authorization listener with clients that pipeline requests and never
// read their socket: what the kernel holds unsent for each connection
// stays near 128 KiB (TCP_NOTSENT_LOWAT on every listener). Before, 128
// such connections left 278 MB unsent on the probe listener and 296 MB on
// the HTTP authorization one (the session-10 outside attack: about 2.2 MB
// a connection).
func TestUnreadSocketHTTP(t *testing.T) {
	e := start(t, func(c *config.Config) { c.Server.HTTPAuthzAddr = "127.0.0.1:0" })
	for _, target := range []struct {
		name, base, request string
		n                   int
	}{
		{"metrics", e.http, "GET /metrics HTTP/1.1\r\nHost: warden\r\n\r\n", 400},
		{"http_authz", e.httpAuthz, "GET / HTTP/1.1\r\nHost: warden\r\n\r\n", 10_000},
	} {
		t.Run(target.name, func(t *testing.T) {
			addr := strings.TrimPrefix(target.base, "http://")
			u := dialUnreadSocketRaw(t, addr)
			// 2 MB and more of answers, which the kernel used to take.
			_ = u.SetWriteDeadline(time.Now().Add(time.Second))
			go func() {
				for range target.n {
					if _, err := u.Write([]byte(target.request)); err != nil {
						return
					}
				}
			}()
			_, port, _ := net.SplitHostPort(addr)
			var worst int
			for range 20 {
				time.Sleep(50 * time.Millisecond)
				worst = max(worst, sendQueue(t, port))
			}
			t.Logf("at most %d bytes unsent on the server's side", worst)
			if worst > 128<<10+64<<10 {
				t.Errorf("%d bytes left unsent on one connection: want about 128 KiB at most", worst)
			}
		})
	}
}

// dialUnreadSocketRaw is a TCP connection whose socket is never read (a
// receive buffer of 2 KB).
func dialUnreadSocketRaw(t *testing.T, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		if err := rc.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 2048)
		}); err != nil {
			return err
		}
		return serr
	}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// sendQueue is the largest send queue (bytes) of the server's sockets on
// port, from /proc/net/tcp (loopback IPv4).
func sendQueue(t *testing.T, port string) int {
	t.Helper()
	b, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		t.Skip("no /proc/net/tcp:", err)
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		t.Fatal(err)
	}
	local := fmt.Sprintf(":%04X", p)
	worst := 0
	for _, line := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) < 5 || !strings.HasSuffix(f[1], local) {
			continue
		}
		tx, _, _ := strings.Cut(f[4], ":")
		n, err := strconv.ParseInt(tx, 16, 64)
		if err != nil {
			t.Fatal(err)
		}
		worst = max(worst, int(n))
	}
	return worst
}

// TestSlowReaderResetsBounded: a client that reads its socket slowly and
// resets each of its streams 100 ms after opening it (once its answer is
// queued behind the slow socket): the reset answers keep their counts
// until the writer has passed them, so the heap stays within what the
// limits let be queued. Before, a reset gave the count back at once while
// the answer's bytes stayed queued, every Check was admitted, and the
// heap grew without bound (1.2 GB in 15 s; the session-10 outside attack).
func TestSlowReaderResetsBounded(t *testing.T) {
	const timeout = 5 * time.Second
	e := start(t, func(c *config.Config) {
		c.Server.GRPC.StreamTimeout = timeout
		c.Server.GRPC.MaxStreams, c.Server.GRPC.ConnectionReserve = 8, 8
	})
	_, msg := spoofedAnswer(t, e, 80, 590)
	const answer, conns = 50_000, 4
	before := abusetest.Measure()
	var wg sync.WaitGroup
	for range conns {
		u := dialUnreadSocket(t, e.addr)
		go func() { // 16 KB read every 100 ms
			buf := make([]byte, 16<<10)
			for {
				if _, err := u.conn.Read(buf); err != nil {
					return
				}
				time.Sleep(100 * time.Millisecond)
			}
		}()
		wg.Go(func() {
			for end := time.Now().Add(3 * time.Second); time.Now().Before(end); {
				id, err := u.send("/envoy.service.auth.v3.Authorization/Check", "", msg)
				if err != nil {
					return
				}
				time.AfterFunc(100*time.Millisecond, func() {
					u.wmu.Lock()
					_ = u.fr.WriteRSTStream(id, http2.ErrCodeCancel)
					u.wmu.Unlock()
				})
				time.Sleep(5 * time.Millisecond)
			}
		})
	}
	wg.Wait()
	during := abusetest.Measure()
	t.Logf("%v refused", metricValue(t, e.http, `warden_grpc_streams_refused_total{listener="grpc"}`))
	// What the limits let be queued: 8 shared and 8 a connection; the
	// slack covers the Checks under way and what the GC has not freed.
	abusetest.Check(t, "slow reader resetting its streams", before, during, abusetest.Budget{
		Heap: (8+8*conns)*answer*2 + abusetest.Scale[uint64](16*abusetest.MiB),
	})
}

// TestConsoleStalledReaderClosed: an authenticated console caller that
// pipelines requests and never reads the answers (a receive buffer of
// 2 KB) is cut off by the console server's write timeout: its connection
// closes and its goroutine ends. Before, nothing closed it (it is
// authenticated and has a request under way, so the admin listener's
// admission never displaces it): its handler stayed blocked in a write,
// with a socket's worth of kernel memory, for as long as the client liked.
func TestConsoleStalledReaderClosed(t *testing.T) {
	tokens := adminTokens(t)
	const timeout = time.Second
	e := startOpts(t, oidctest.New(t), server.Options{Stdout: io.Discard, ConsoleWriteTimeout: timeout},
		func(c *config.Config) { c.Admin.TokenFile = tokens; c.Admin.Console = true })
	c := dialUnreadSocketRaw(t, e.admin)
	get := func(path string) string {
		return "GET " + path + " HTTP/1.1\r\nHost: " + e.admin + "\r\nAuthorization: Bearer " + readerToken + "\r\n\r\n"
	}
	// An authorized call first, its answer read: the connection counts as
	// an operator's.
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, get("/console/api/whoami")); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("whoami: %v %v", resp, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	if _, authed := server.AdminConnsOpen(e.svc); authed != 1 {
		t.Fatalf("%d connections authenticated, want 1", authed)
	}
	// Then 64 requests for the 9 KB script, none of the answers read.
	var reqs strings.Builder
	for range 64 {
		reqs.WriteString(get("/console/assets/console.js"))
	}
	if _, err := io.WriteString(c, reqs.String()); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	testwait.Until(t, timeout+5*time.Second, "the stalled connection closed", func() bool {
		all, _ := server.AdminConnsOpen(e.svc)
		return all == 0
	})
	t.Logf("closed %v after the requests (write timeout %v)", time.Since(start).Round(time.Millisecond), timeout)
}
