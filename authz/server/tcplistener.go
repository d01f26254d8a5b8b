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

// tcpListener sets each accepted TCP connection up for a gRPC listener
// (setNotSentLowat).
type tcpListener struct{ net.Listener }

func (l tcpListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		setNotSentLowat(tc, notSentLowat)
	}
	return c, err
}
