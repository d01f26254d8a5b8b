package abusetest

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// ConnectionCap checks an HTTP listener at addr capped at max open
// connections, with idle ones giving way to new ones:
//
//   - max kept-alive connections each get req (a whole HTTP/1.1 request)
//     answered with status want and go idle; the next connection's req is
//     answered want at once, and one idle connection has been closed for
//     it;
//   - max connections each busy with a request (busy: whole headers, a
//     body announced and not all sent) hold the listener: the next
//     connection's req is not answered within 1.5 s (past the grace a new,
//     silent connection gets before it may give way), during which during
//     runs (what must still work: the other listeners); once one of the
//     max closes, the waiting one is answered want.
func ConnectionCap(t *testing.T, addr, req, busy string, max, want int, during func()) {
	t.Helper()
	roundTrip := func(c net.Conn, br *bufio.Reader, wait time.Duration) (int, error) {
		if _, err := io.WriteString(c, req); err != nil {
			return 0, err
		}
		_ = c.SetReadDeadline(time.Now().Add(wait))
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return 0, err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	dial := func() net.Conn {
		t.Helper()
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	closeAll := func(cs []net.Conn) {
		for _, c := range cs {
			c.Close()
		}
	}

	// Idle connections give way.
	var idle []net.Conn
	defer func() { closeAll(idle) }()
	for i := range max {
		c := dial()
		idle = append(idle, c)
		if code, err := roundTrip(c, bufio.NewReader(c), 5*time.Second); err != nil || code != want {
			t.Fatalf("idle connection %d: %d %v", i, code, err)
		}
	}
	extra := dial()
	defer extra.Close()
	if code, err := roundTrip(extra, bufio.NewReader(extra), 5*time.Second); err != nil || code != want {
		t.Errorf("connection %d past the cap of %d, the others idle: %d %v, want %d at once", max+1, max, code, err, want)
	}
	// Exactly one of them was closed for it (which one, the one idle the
	// longest, is the listener's unit test's: the order in which the
	// server marks connections idle is its goroutines').
	var closed atomic.Int64
	var wg sync.WaitGroup
	deadline := time.Now().Add(3 * time.Second)
	for _, c := range idle {
		wg.Go(func() {
			_ = c.SetReadDeadline(deadline)
			if _, err := c.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
				closed.Add(1)
			}
		})
	}
	wg.Wait()
	if n := closed.Load(); n != 1 {
		t.Errorf("%d of the %d idle connections closed for the new one, want 1", n, max)
	}
	extra.Close()
	closeAll(idle)
	idle = nil

	// Busy connections hold their places.
	var held []net.Conn
	defer func() { closeAll(held) }()
	for range max {
		c := dial()
		held = append(held, c)
		if _, err := io.WriteString(c, busy); err != nil {
			t.Fatal(err)
		}
	}
	waiting := dial()
	defer waiting.Close()
	br := bufio.NewReader(waiting)
	if code, err := roundTrip(waiting, br, 1500*time.Millisecond); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("connection %d past the cap of %d, the others busy, was answered: %d %v", max+1, max, code, err)
	}
	during()
	held[0].Close()
	_ = waiting.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("the waiting connection once one closed: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != want {
		t.Errorf("the waiting connection once one closed: %d, want %d", resp.StatusCode, want)
	}
}
