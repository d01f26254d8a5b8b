package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"google.golang.org/grpc/credentials"

	"github.com/wardenauthz/warden/authz/admin"
	"github.com/wardenauthz/warden/authz/console"
)

// adminCreds are the admin gRPC server's TLS credentials: with the console
// on, the split listener terminates TLS (console.Split) and the server
// takes its connections as they are.
func (s *Service) adminCreds(tc *tls.Config) credentials.TransportCredentials {
	if s.Config.Admin.Console {
		s.adminTLS = tc
		return console.TLSDone()
	}
	return credentials.NewTLS(tc)
}

// newConsole builds the console (admin.console) over the admin API's
// guard and service.
func (s *Service) newConsole(g *admin.Guard, svc *admin.Service) error {
	if !s.Config.Admin.Console {
		return nil
	}
	var hosts []string
	if h, _, err := net.SplitHostPort(s.Config.Admin.Addr); err == nil && h != "" {
		hosts = append(hosts, h)
	}
	c, err := console.New(console.Options{Auth: g, Logs: s.Logs, Admin: svc, Policies: s.Policies, Now: s.now, Logger: s.logger,
		Authorized: s.adminConns.httpAuthorized, Hosts: hosts})
	if err != nil {
		return err
	}
	s.console = c
	return nil
}

// serveAdmin serves the admin listener: the admin API, and the console
// beside it when on, over connections admitted by s.adminConns. Without
// admin.tls, the address bound must be a loopback one (a name such as
// localhost counts by what it resolved to). stop ends the console's
// server.
func (s *Service) serveAdmin(lis net.Listener, errc chan<- error) (stop func(context.Context)) {
	if ta, ok := lis.Addr().(*net.TCPAddr); ok && s.Config.Admin.TLS.CertFile == "" && !ta.IP.IsLoopback() {
		errc <- fmt.Errorf("admin.addr %q is bound to %s, not a loopback address: the admin API and console need admin.tls there", s.Config.Admin.Addr, ta)
		return func(context.Context) {}
	}
	lis = s.adminConns.listen(tcpListener{lis})
	if s.console == nil {
		go func() { errc <- s.admin.Serve(lis) }()
		return func(context.Context) {}
	}
	gl, hl := console.Split(lis, s.adminTLS)
	base, cancel := context.WithCancel(context.Background())
	hs := &http.Server{Handler: s.console, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second,
		WriteTimeout: s.consoleWrite, IdleTimeout: time.Minute, MaxHeaderBytes: 16 << 10,
		BaseContext: func(net.Listener) context.Context { return base }}
	go func() { errc <- s.admin.Serve(gl) }()
	go func() {
		if err := hs.Serve(hl); !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
			errc <- err
		}
	}()
	return func(ctx context.Context) {
		ctx, stop := context.WithTimeout(ctx, 2*time.Second)
		defer stop()
		cancel() // live views end
		_ = hs.Shutdown(ctx)
		_ = hs.Close()
	}
}
