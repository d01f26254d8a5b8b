package console

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"net"
	"slices"
	"sync"
	"time"

	"google.golang.org/grpc/credentials"
)

// The admin listener serves gRPC (the admin API) and HTTP/1.1 (the
// console) on one port. Split tells them apart per connection: in clear
// text by the HTTP/2 preface gRPC opens with; over TLS by ALPN, offering a
// client that can speak http/1.1 (a browser) only that, and one that speaks
// only h2 (gRPC clients) h2, so browsers never reach the gRPC server.

// h2Preface is what an HTTP/2 (gRPC) client sends first.
var h2Preface = []byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")

// sniffTimeout bounds the TLS handshake or first bytes of a connection
// (clients send them at once: a browser, grpc-go).
const sniffTimeout = 2 * time.Second

// Split divides l's connections between the gRPC server (grpcL) and the
// console's HTTP server (httpL). With tc, it terminates TLS itself (the
// gRPC server then takes TLSDone as its credentials). Closing either
// listener closes l.
func Split(l net.Listener, tc *tls.Config) (grpcL, httpL net.Listener) {
	s := &split{l: l, done: make(chan struct{})}
	if tc != nil {
		s.tc = &tls.Config{MinVersion: tls.VersionTLS12, GetConfigForClient: func(hi *tls.ClientHelloInfo) (*tls.Config, error) {
			base := tc
			if tc.GetConfigForClient != nil {
				c, err := tc.GetConfigForClient(hi)
				if err != nil {
					return nil, err
				}
				if c != nil {
					base = c
				}
			}
			c := base.Clone()
			c.GetConfigForClient = nil
			if slices.Contains(hi.SupportedProtos, "http/1.1") {
				c.NextProtos = []string{"http/1.1"}
			} else {
				c.NextProtos = []string{"h2"}
			}
			return c, nil
		}}
	}
	g := &chanListener{s: s, c: make(chan net.Conn)}
	h := &chanListener{s: s, c: make(chan net.Conn)}
	go s.run(g, h)
	return g, h
}

type split struct {
	l    net.Listener
	tc   *tls.Config
	once sync.Once
	done chan struct{}
	err  error
}

func (s *split) close() error {
	var err error
	s.once.Do(func() { close(s.done); err = s.l.Close() })
	return err
}

func (s *split) run(g, h *chanListener) {
	for {
		c, err := s.l.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			s.err = err
			_ = s.close()
			return
		}
		go s.route(c, g, h)
	}
}

// route sniffs one connection and hands it to its server.
func (s *split) route(c net.Conn, g, h *chanListener) {
	_ = c.SetDeadline(time.Now().Add(sniffTimeout))
	var to *chanListener
	var out net.Conn
	if s.tc != nil {
		tc := tls.Server(c, s.tc)
		ctx, cancel := context.WithTimeout(context.Background(), sniffTimeout)
		err := tc.HandshakeContext(ctx)
		cancel()
		if err != nil {
			_ = c.Close()
			return
		}
		to, out = h, tc
		if tc.ConnectionState().NegotiatedProtocol == "h2" {
			to = g
		}
	} else {
		// Byte by byte, up to the first that differs from the preface: a
		// short HTTP/1.1 request is never waited on for more.
		br := bufio.NewReaderSize(c, 64)
		to, out = g, &peeked{Conn: c, r: br}
		for i := 1; i <= len(h2Preface); i++ {
			b, err := br.Peek(i)
			if err != nil {
				_ = c.Close()
				return
			}
			if !bytes.Equal(b, h2Preface[:i]) {
				to = h
				break
			}
		}
	}
	_ = c.SetDeadline(time.Time{})
	select {
	case to.c <- out:
	case <-s.done:
		_ = c.Close()
	}
}

// peeked is a connection whose first bytes were read into r.
type peeked struct {
	net.Conn
	r *bufio.Reader
}

func (p *peeked) Read(b []byte) (int, error) { return p.r.Read(b) }

// chanListener is one side of a split listener.
type chanListener struct {
	s *split
	c chan net.Conn
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.c:
		return c, nil
	case <-l.s.done:
		return nil, net.ErrClosed
	}
}

func (l *chanListener) Close() error   { return l.s.close() }
func (l *chanListener) Addr() net.Addr { return l.s.l.Addr() }

// TLSDone are gRPC server credentials for connections Split already took
// through TLS: the handshake is done, and callers' certificates are seen
// as with credentials.NewTLS.
func TLSDone() credentials.TransportCredentials { return tlsDone{} }

type tlsDone struct{}

func (tlsDone) ClientHandshake(context.Context, string, net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return nil, nil, errors.New("console.TLSDone is for servers only")
}

func (tlsDone) ServerHandshake(c net.Conn) (net.Conn, credentials.AuthInfo, error) {
	tc, ok := c.(*tls.Conn)
	if !ok {
		return nil, nil, errors.New("not a TLS connection")
	}
	return tc, credentials.TLSInfo{State: tc.ConnectionState(), CommonAuthInfo: credentials.CommonAuthInfo{SecurityLevel: credentials.PrivacyAndIntegrity}}, nil
}

func (tlsDone) Info() credentials.ProtocolInfo {
	return credentials.ProtocolInfo{SecurityProtocol: "tls"}
}
func (t tlsDone) Clone() credentials.TransportCredentials { return t }
func (tlsDone) OverrideServerName(string) error           { return nil }
