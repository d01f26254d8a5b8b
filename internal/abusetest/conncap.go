package abusetest

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"testing"
	"time"
)

// ConnectionCap checks an HTTP listener at addr capped at max open
// connections: max kept-alive connections each get req (a whole HTTP/1.1
// request) answered with status want; the next connection's req is not
// answered within 500 ms (it waits to be accepted), during which during
// runs (what must still work: the other listeners); once one of the max
// closes, the waiting one is answered want.
func ConnectionCap(t *testing.T, addr, req string, max, want int, during func()) {
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
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for i := range max {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
		if code, err := roundTrip(c, bufio.NewReader(c), 5*time.Second); err != nil || code != want {
			t.Fatalf("held connection %d: %d %v", i, code, err)
		}
	}
	extra, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer extra.Close()
	br := bufio.NewReader(extra)
	if code, err := roundTrip(extra, br, 500*time.Millisecond); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("connection %d past the cap of %d was answered: %d %v", max+1, max, code, err)
	}
	during()
	held[0].Close()
	_ = extra.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("the waiting connection once one closed: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != want {
		t.Errorf("the waiting connection once one closed: %d, want %d", resp.StatusCode, want)
	}
}
