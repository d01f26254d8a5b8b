//go:build linux

package server_test

import (
	"net"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/wardenauthz/warden/authz/config"
	"github.com/wardenauthz/warden/authz/server"
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
	e := start(t, func(c *config.Config) {
		c.Server.GRPC.StreamTimeout = timeout
		c.Server.MaxRecvBytes = 256 << 10
		c.Server.GRPC.MaxStreams, c.Server.GRPC.ConnectionReserve = 4, 8 // grpc-go itself refuses past 256 a connection
	})
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

// dialUnreadSocket is a client that opens its HTTP/2 windows wide and
// never reads its socket (a receive buffer of 2 KB).
func dialUnreadSocket(t *testing.T, addr string) *unreadClient {
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
