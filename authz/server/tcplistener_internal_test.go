//go:build linux

package server

import (
	"net"
	"testing"
)

// TestTCPListenerBoundsUnsentBytes: every connection a gRPC listener
// accepts leaves at most notSentLowat bytes unsent in the kernel
// (TestUnreadSocket shows what that bounds).
func TestTCPListenerBoundsUnsentBytes(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	tl := tcpListener{l}
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := tl.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	n, err := notSentLowatOf(s.(*net.TCPConn))
	if err != nil || n != notSentLowat {
		t.Errorf("TCP_NOTSENT_LOWAT %d (%v), want %d", n, err, notSentLowat)
	}
	if n, _ := notSentLowatOf(c.(*net.TCPConn)); n == notSentLowat {
		t.Errorf("a connection not accepted by tcpListener has it too: the test shows nothing")
	}
}
