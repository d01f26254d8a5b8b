package server

import (
	"errors"
	"io"
	"net"
	"os"
	"sync/atomic"
	"testing"
	"time"
)

// serveAdminConns listens on loopback through a and accepts until the
// test ends. dial connects a client and answers it with the server's side
// of the connection, nil when a refused it.
func serveAdminConns(t *testing.T, a *adminConns) (dial func() (client, server net.Conn)) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	al := a.listen(l)
	t.Cleanup(func() { al.Close() })
	accepted := make(chan net.Conn, 8)
	go func() {
		for {
			c, err := al.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	return func() (client, server net.Conn) {
		t.Helper()
		c, err := net.DialTimeout("tcp", l.Addr().String(), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		select {
		case s := <-accepted:
			return c, s
		case <-time.After(5 * time.Second):
			return c, nil
		}
	}
}

// TestAdminConnsDisplace: when the admin listener is full, a new
// connection displaces the oldest unauthenticated one, never an
// authenticated one; with every slot authenticated, it is refused.
func TestAdminConnsDisplace(t *testing.T) {
	a := newAdminConns(2, nil)
	a.authTimeout = time.Hour
	dial := serveAdminConns(t, a)
	closed := func(c net.Conn) bool {
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err := io.Copy(io.Discard, c)
		return !errors.Is(err, os.ErrDeadlineExceeded)
	}
	c1, s1 := dial()
	a.authorized(s1.RemoteAddr().String(), "")()
	c2, _ := dial()
	c3, s3 := dial()
	if s3 == nil {
		t.Fatal("a new connection was not admitted beside an unauthenticated one")
	}
	if !closed(c2) {
		t.Error("the unauthenticated connection was not displaced")
	}
	a.authorized(s3.RemoteAddr().String(), "")()
	if all, authed := a.open(); all != 2 || authed != 2 {
		t.Errorf("open %d, authenticated %d; want 2, 2", all, authed)
	}
	c4, s4 := dial()
	if s4 != nil {
		t.Error("a connection was admitted over two authenticated ones")
	}
	if !closed(c4) {
		t.Error("the refused connection was left open")
	}
	for i, c := range []net.Conn{c1, c3} {
		_ = c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		if _, err := c.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("authenticated connection %d was closed: %v", i, err)
		}
	}
}

// TestAdminConnsIdleAndPerCaller: an authenticated connection with no
// authorized call for authIdle (none under way) is displaced by a new
// connection, one in use is not; one caller keeps at most perCaller
// connections authenticated.
func TestAdminConnsIdleAndPerCaller(t *testing.T) {
	var clock atomic.Int64 // the admission clock, in ns
	clock.Store(time.Date(2026, 6, 2, 14, 30, 0, 0, time.UTC).UnixNano())
	a := newAdminConns(3, nil)
	a.authTimeout = time.Hour
	a.perCaller = 2
	a.now = func() time.Time { return time.Unix(0, clock.Load()) }
	dial := serveAdminConns(t, a)
	var servers []net.Conn
	for range 3 {
		_, s := dial()
		if s == nil {
			t.Fatal("a connection within the bound was refused")
		}
		servers = append(servers, s)
	}
	// One caller: the third connection is not marked.
	for _, s := range servers {
		a.authorized(s.RemoteAddr().String(), "alice")()
	}
	if _, authed := a.open(); authed != 2 {
		t.Errorf("%d connections of one caller authenticated, want the bound 2", authed)
	}
	a.authorized(servers[2].RemoteAddr().String(), "bob")() // another caller
	// Connection 0 is in use (a live view), 1 and 2 idle.
	end := a.authorized(servers[0].RemoteAddr().String(), "alice")
	if _, s := dial(); s != nil {
		t.Error("a new connection displaced an authenticated one in use within authIdle")
	}
	clock.Add(int64(2 * time.Minute))
	a.authorized(servers[2].RemoteAddr().String(), "bob")() // recent again
	if _, s := dial(); s == nil {
		t.Fatal("a new connection was refused beside one idle past authIdle")
	}
	a.mu.Lock()
	_, idle := a.conns[servers[1].RemoteAddr().String()]
	_, busy := a.conns[servers[0].RemoteAddr().String()]
	_, recent := a.conns[servers[2].RemoteAddr().String()]
	a.mu.Unlock()
	if idle || !busy || !recent {
		t.Errorf("kept: idle %v, in use %v, recently used %v; want false, true, true", idle, busy, recent)
	}
	end()
}
