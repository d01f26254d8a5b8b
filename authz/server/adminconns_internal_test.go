package server

import (
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

// TestAdminConnsDisplace: when the admin listener is full, a new
// connection displaces the oldest unauthenticated one, never an
// authenticated one; with every slot authenticated, it is refused.
func TestAdminConnsDisplace(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := newAdminConns(2, nil)
	a.authTimeout = time.Hour
	al := a.listen(l)
	defer al.Close()
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
	dial := func() (client, server net.Conn) {
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
	closed := func(c net.Conn) bool {
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err := io.Copy(io.Discard, c)
		return !errors.Is(err, os.ErrDeadlineExceeded)
	}
	c1, s1 := dial()
	a.authenticated(s1.RemoteAddr().String())
	c2, _ := dial()
	c3, s3 := dial()
	if s3 == nil {
		t.Fatal("a new connection was not admitted beside an unauthenticated one")
	}
	if !closed(c2) {
		t.Error("the unauthenticated connection was not displaced")
	}
	a.authenticated(s3.RemoteAddr().String())
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
