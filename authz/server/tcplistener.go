package server

import "net"

// notSentLowat bounds the bytes a gRPC connection may leave in the
// kernel's send buffer unsent (TCP_NOTSENT_LOWAT, where the system has
// it): a client that does not read its socket otherwise takes as much as
// the kernel's autotuned buffer (about 2 MB a connection was seen) of
// answers, outside every count of Warden's and its heap. Past it, grpc-go's
// writer waits, and its answers count as held (h2track.go); a write
// blocked past stream_timeout closes the connection. Sent bytes still go
// out as fast as the client's window allows.
const notSentLowat = 128 << 10

// tcpListener sets each accepted TCP connection up (setNotSentLowat):
// every listener of Warden's has it (gRPC, admin, HTTP authorization,
// AuthZEN, probes and metrics). On the HTTP listeners a client that does
// not read its socket is then held by the server's WriteTimeout with at
// most that much of the kernel's memory (a session-10 outside attack had
// 128 pipelining connections leave 278 MB unsent on the probe listener).
type tcpListener struct{ net.Listener }

func (l tcpListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		setNotSentLowat(tc, notSentLowat)
	}
	return c, err
}
