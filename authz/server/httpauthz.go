package server

import (
	"cmp"
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/wardenauthz/warden/authz/config"
	"github.com/wardenauthz/warden/authz/httpauthz"
)

// HTTPAuthzHandler is the handler of server.http_authz_addr: the pipeline
// for Envoy's HTTP ext_authz service and forward-auth proxies (nginx,
// Traefik, Caddy).
func (s *Service) HTTPAuthzHandler() http.Handler {
	c := s.Config
	return httpauthz.New(httpauthz.Options{
		Authorizer:    s.Authorizer,
		Trusted:       c.Server.HTTPAuthz.Trusted,
		PathPrefix:    c.Server.HTTPAuthz.PathPrefix,
		HeadersPrefix: c.Response.HeadersPrefix,
		MaxBodyBytes:  c.Server.Limits.MaxBodyBytes,
	})
}

// HTTPAuthzServer is the http.Server of server.http_authz_addr: HTTP/1.1
// and h2c (prior knowledge, as Envoy's HTTP/2 clusters speak it), its
// header bytes bounded above server.limits (the pipeline denies 431 past
// them; only a request far over them is cut off by the server), its reads
// and idle connections by server.http_authz's timeouts, the requests it
// handles at once by server.http_authz.max_requests (requestLimit; its
// connections are bounded by serveHTTPAuthz).
//
// What one HTTP/2 connection can make Warden hold is bounded apart from
// its requests: HPACK's table (64 KiB), one frame (16 KiB), the header
// block being decoded (max_header_bytes + 16 KiB), the body bytes its
// streams' handlers have not read (the connection window, 1 MiB; a stream
// gets at most max_body_bytes + 1, from 64 KiB up), and the answers of at
// most 100 streams waiting to be written (their requests' headers dropped:
// requestLimit). A connection that takes no bytes for the write timeout is
// closed (WriteByteTimeout).
func (s *Service) HTTPAuthzServer() *http.Server {
	c := s.Config.Server
	maxHeader := c.Limits.MaxHeaderBytes
	if maxHeader <= 0 {
		maxHeader = 96 << 10
	}
	var p http.Protocols
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	write := c.HTTPAuthz.ReadTimeout + 5*time.Second
	return &http.Server{
		Handler:   s.httpAuthzLimit(s.HTTPAuthzHandler()),
		Protocols: &p,
		// "OPTIONS *" goes to the handler (refused: not origin-form) too;
		// net/http would otherwise answer it 200 itself, unjudged.
		DisableGeneralOptionsHandler: true,
		ReadHeaderTimeout:            c.HTTPAuthz.ReadTimeout,
		ReadTimeout:                  c.HTTPAuthz.ReadTimeout,
		WriteTimeout:                 write,
		IdleTimeout:                  c.HTTPAuthz.IdleTimeout,
		// room for the request line and the forwarded headers
		MaxHeaderBytes: maxHeader + 16<<10,
		HTTP2: &http.HTTP2Config{
			MaxConcurrentStreams:          httpAuthzStreams,
			MaxDecoderHeaderTableSize:     64 << 10,
			MaxReadFrameSize:              16 << 10,
			MaxReceiveBufferPerStream:     streamWindow(c.Limits.MaxBodyBytes),
			MaxReceiveBufferPerConnection: httpAuthzConnWindow,
			WriteByteTimeout:              write,
		},
	}
}

// httpAuthzStreams is the HTTP/2 streams one connection of the HTTP
// authorization listener may have open, httpAuthzConnWindow the body bytes
// its streams may have sent and their handlers not read.
const (
	httpAuthzStreams    = 100
	httpAuthzConnWindow = 1 << 20
)

// streamWindow is an HTTP/2 stream's receive window on the HTTP
// authorization listener: what the handler reads of a body
// (max_body_bytes + 1), from 64 KiB (HTTP/2's default) to the connection's
// window.
func streamWindow(maxBody int) int {
	if maxBody <= 0 {
		maxBody = 1 << 20
	}
	return min(max(maxBody+1, 64<<10), httpAuthzConnWindow)
}

// requestLimit bounds the requests of the HTTP authorization listener
// being handled at once, over all its connections, to max: from the
// handler's start to its return, the writing of its answer included
// (HTTP/2: flushed before the count is given back, so that an answer held
// by the client's flow control stays counted). Past max a request is
// answered 503 at once, headers only (HTTP/2 flow control cannot hold
// it), and never decided: a proxy denies on it (fail closed).
//
// Once its handler returns, a request's headers are dropped (HTTP/2): a
// stream whose answer still waits for the socket then holds its goroutine
// and the answer, not up to max_header_bytes + 16 KiB of headers.
//
// The requests are shared: a flood on some connections can take them all
// from the others (who get 503 meanwhile). This bounds memory, not
// fairness.
type requestLimit struct {
	next    http.Handler
	max     int64
	open    atomic.Int64
	refused func()
}

func (s *Service) httpAuthzLimit(next http.Handler) *requestLimit {
	n := cmp.Or(s.Config.Server.HTTPAuthz.MaxRequests, config.DefaultHTTPAuthzMaxRequests)
	return &requestLimit{next: next, max: int64(n), refused: s.httpAuthzRefused.Inc}
}

func (l *requestLimit) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if l.open.Add(1) > l.max {
		l.open.Add(-1)
		l.refused()
		dropHeaders(r)
		h := w.Header()
		h.Set("Retry-After", "1")
		h.Set("Content-Length", "0")
		h.Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	defer l.open.Add(-1)
	l.next.ServeHTTP(w, r)
	if r.ProtoMajor == 2 {
		_ = http.NewResponseController(w).Flush()
	}
	dropHeaders(r)
}

// dropHeaders lets go of an HTTP/2 request's headers: the server keeps the
// request until the answer is written, after the handler returned.
// (HTTP/1.1 reads them after the handler, e.g. "Connection: close"; one
// request at a time per connection.)
func dropHeaders(r *http.Request) {
	if r.ProtoMajor == 2 {
		clear(r.Header)
	}
}

// serveHTTPAuthz serves s.HTTPAuthzListener when set, at most
// server.http_authz.max_connections connections at once; the returned func
// shuts it down.
func (s *Service) serveHTTPAuthz(errc chan<- error) func(context.Context) error {
	if s.HTTPAuthzListener == nil {
		return func(context.Context) error { return nil }
	}
	hs := s.HTTPAuthzServer()
	// At most max_connections open: past it, a new connection takes the
	// place of the one idle the longest, else waits in the kernel's accept
	// queue (idleCap).
	lis := newIdleCap(tcpListener{s.HTTPAuthzListener},
		cmp.Or(s.Config.Server.HTTPAuthz.MaxConnections, config.DefaultHTTPAuthzMaxConnections), s.displaced.WithLabelValues("http_authz").Inc)
	go func() {
		if err := lis.serve(hs); !errors.Is(err, http.ErrServerClosed) {
			errc <- err
		}
	}()
	return func(ctx context.Context) error { return named("server.http_authz_addr", hs.Shutdown(ctx)) }
}
