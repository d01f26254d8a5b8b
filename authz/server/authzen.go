package server

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/wardenauthz/warden/authz/admin"
	"github.com/wardenauthz/warden/authz/authzen"
)

// AuthZENEnabled reports whether server.authzen_addr is set.
func (s *Service) AuthZENEnabled() bool { return s.Config.Server.AuthZENAddr != "" }

// AuthZENHandler is the AuthZEN API over the service's authorizer (its
// engine, decision log and metrics) and authenticators.
func (s *Service) AuthZENHandler() (http.Handler, error) {
	z := s.Config.AuthZEN
	o := authzen.Options{
		Authorizer: s.Authorizer, Authn: s.Authn, Issuers: z.Issuers, Types: z.Types,
		MaxBodyBytes: z.MaxBodyBytes, MaxEvaluations: z.MaxEvaluations, PDP: z.PDP, Logger: s.logger,
	}
	if z.TokenFile != "" || len(z.Clients) > 0 {
		g := &admin.Guard{TokenFile: s.Config.Resolve(z.TokenFile), Clients: z.Clients, Logger: s.logger}
		if err := g.Check(); err != nil {
			return nil, err
		}
		o.Guard = g
	}
	return authzen.New(o), nil
}

// ServeAuthZEN serves the AuthZEN API on lis until ctx ends. Its error is
// the listener's failure, or a shutdown that did not finish in time.
func (s *Service) ServeAuthZEN(ctx context.Context, lis net.Listener) error {
	h, err := s.AuthZENHandler()
	if err != nil {
		return err
	}
	z := s.Config.AuthZEN
	hs := &http.Server{
		Handler: h,
		// "OPTIONS *" reaches the handler, which knows no such path.
		DisableGeneralOptionsHandler: true,
		ReadHeaderTimeout:            z.Timeout,
		ReadTimeout:                  z.Timeout,
		WriteTimeout:                 z.Timeout,
		IdleTimeout:                  60 * time.Second,
		MaxHeaderBytes:               64 << 10,
		ErrorLog:                     slog.NewLogLogger(s.logger.Handler(), slog.LevelDebug),
	}
	// At most max_connections open (past it, a new one takes the place of
	// the one idle the longest, else waits in the kernel's accept queue:
	// idleCap): the listener serves HTTP/1.1 alone (no h2 offered over
	// TLS), so this also bounds the requests under way.
	capped := newIdleCap(tcpListener{lis}, z.MaxConnections, s.displaced.WithLabelValues("authzen").Inc)
	hs.ConnState = capped.track
	lis = capped
	if z.TLS.CertFile != "" {
		// token and OIDC callers need no certificate
		tc, err := s.listenerTLS(z.TLS, "authzen.tls", z.TokenFile != "" || len(z.Issuers) > 0)
		if err != nil {
			return err
		}
		lis = tls.NewListener(lis, tc)
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(lis) }()
	select {
	case err := <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return named("shutdown: server.authzen_addr", hs.Shutdown(sctx))
}
