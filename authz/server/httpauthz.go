package server

import (
	"context"
	"errors"
	"net/http"
	"time"

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
// and idle connections by server.http_authz's timeouts.
func (s *Service) HTTPAuthzServer() *http.Server {
	c := s.Config.Server
	maxHeader := c.Limits.MaxHeaderBytes
	if maxHeader <= 0 {
		maxHeader = 96 << 10
	}
	var p http.Protocols
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	return &http.Server{
		Handler:   s.HTTPAuthzHandler(),
		Protocols: &p,
		// "OPTIONS *" goes to the handler (refused: not origin-form) too;
		// net/http would otherwise answer it 200 itself, unjudged.
		DisableGeneralOptionsHandler: true,
		ReadHeaderTimeout:            c.HTTPAuthz.ReadTimeout,
		ReadTimeout:                  c.HTTPAuthz.ReadTimeout,
		WriteTimeout:                 c.HTTPAuthz.ReadTimeout + 5*time.Second,
		IdleTimeout:                  c.HTTPAuthz.IdleTimeout,
		// room for the request line and the forwarded headers
		MaxHeaderBytes: maxHeader + 16<<10,
		HTTP2: &http.HTTP2Config{
			MaxConcurrentStreams:          256,
			MaxDecoderHeaderTableSize:     64 << 10,
			MaxReceiveBufferPerStream:     1 << 20,
			MaxReceiveBufferPerConnection: 4 << 20,
		},
	}
}

// serveHTTPAuthz serves s.HTTPAuthzListener when set; the returned func
// shuts it down.
func (s *Service) serveHTTPAuthz(errc chan<- error) func(context.Context) error {
	if s.HTTPAuthzListener == nil {
		return func(context.Context) error { return nil }
	}
	hs := s.HTTPAuthzServer()
	go func() {
		if err := hs.Serve(tcpListener{s.HTTPAuthzListener}); !errors.Is(err, http.ErrServerClosed) {
			errc <- err
		}
	}()
	return func(ctx context.Context) error { return named("server.http_authz_addr", hs.Shutdown(ctx)) }
}
