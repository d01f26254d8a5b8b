package server

import (
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"

	"github.com/wardenauthz/warden/authz"
	"github.com/wardenauthz/warden/authz/admin"
	"github.com/wardenauthz/warden/authz/config"
	adminv1 "github.com/wardenauthz/warden/proto/warden/admin/v1"
)

// The listeners' servers: ext_authz gRPC (GRPCServer), probes and metrics
// over HTTP (HTTPHandler), the admin API (buildAdmin). Serve runs them;
// the HTTP authorization and AuthZEN listeners are in httpauthz.go and
// authzen.go.

// buildAdmin builds the admin API's server when the config enables it.
func (s *Service) buildAdmin() error {
	a := s.Config.Admin
	if !a.Enabled() {
		return nil
	}
	g := &admin.Guard{TokenFile: s.Config.Resolve(a.TokenFile), Clients: a.Clients, Logger: s.logger}
	if a.DevToken && a.TokenFile == "" {
		p, err := admin.EnsureDevToken()
		if err != nil {
			return fmt.Errorf("admin.dev_token: %w", err)
		}
		g.TokenFile = p
	}
	if err := g.Check(); err != nil {
		return err
	}
	s.AdminTokenFile = g.TokenFile
	s.adminConns = newAdminConns(adminLimits(s.Config.Server.GRPC).MaxConnections, nil)
	var creds credentials.TransportCredentials
	if a.TLS.CertFile != "" {
		// token callers need no certificate
		tc, err := s.listenerTLS(a.TLS, "admin.tls", g.TokenFile != "")
		if err != nil {
			return err
		}
		creds = s.adminCreds(tc)
	}
	limits, streams := grpcLimits(adminLimits(s.Config.Server.GRPC), adminMaxRecv, creds, s.refused.WithLabelValues("admin").Inc, s.unread.WithLabelValues("admin").Inc)
	s.adminStreams = streams
	opts := append([]grpc.ServerOption{grpc.ChainUnaryInterceptor(g.UnaryInterceptor, s.adminConns.unary), grpc.MaxRecvMsgSize(adminMaxRecv), refuseCompressed}, limits...)
	s.admin = grpc.NewServer(opts...)
	svc := &admin.Service{Logs: s.Logs, Store: s.Store, Policies: s.Policies, Node: s.node, Now: s.now,
		Subjects: s.Config.Identity.RevocationSubject, Sync: s.Log.Sync}
	adminv1.RegisterAdminServiceServer(s.admin, svc)
	return s.newConsole(g, svc)
}

// GRPCServer builds the gRPC server with ext_authz, health and reflection.
func (s *Service) GRPCServer() (*grpc.Server, *health.Server, error) {
	var creds credentials.TransportCredentials
	if t := s.Config.Server.TLS; t.CertFile != "" {
		tc, err := s.listenerTLS(t, "server.tls", false)
		if err != nil {
			return nil, nil, err
		}
		creds = credentials.NewTLS(tc)
	}
	limits, streams := grpcLimits(s.Config.Server.GRPC, s.Config.Server.MaxRecvBytes, creds, s.refused.WithLabelValues("grpc").Inc, s.unread.WithLabelValues("grpc").Inc)
	s.grpcStreams.Store(streams)
	opts := append([]grpc.ServerOption{
		grpc.MaxRecvMsgSize(s.Config.Server.MaxRecvBytes),
		// Long-lived workers run the Checks: a fresh goroutine per stream
		// would grow its stack through the pipeline on every Check (about a
		// tenth of the CPU under load); past the workers, grpc-go spawns.
		grpc.NumStreamWorkers(uint32(max(64, 4*runtime.GOMAXPROCS(0)))),
		authz.GRPCCodec(),
	}, limits...)
	g := grpc.NewServer(opts...)
	s.Authorizer.RegisterGRPC(g)
	h := health.NewServer()
	healthpb.RegisterHealthServer(g, h)
	h.SetServingStatus("envoy.service.auth.v3.Authorization", healthpb.HealthCheckResponse_SERVING)
	reflection.Register(g)
	return g, h, nil
}

// listenerTLS is a listener's TLS config, its files reloaded when they
// change (tlsFiles); with a client CA, client certificates are required
// (verified if given, with optionalClient).
func (s *Service) listenerTLS(t config.TLS, key string, optionalClient bool) (*tls.Config, error) {
	f, err := newTLSFiles(key, s.Config.Resolve(t.CertFile), s.Config.Resolve(t.KeyFile), s.Config.Resolve(t.ClientCAFile), optionalClient, s.logger,
		func(err error) {
			result := "ok"
			if err != nil {
				result = "error"
			}
			s.metrics.tlsReloads.WithLabelValues(key, result).Inc()
		})
	if err != nil {
		return nil, err
	}
	return f.config(), nil
}

// HTTPHandler serves /metrics, /healthz and /readyz.
func (s *Service) HTTPHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.Registry, promhttp.HandlerOpts{Registry: s.Registry}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		ok, detail := s.Ready()
		if err := s.Policies.LastError(); err != nil {
			detail = strings.TrimSpace(detail + "\nlast policy reload failed (serving the last good set): " + err.Error())
		}
		if err := s.ConfigError(); err != nil {
			detail = strings.TrimSpace(detail + "\nlast config reload failed (serving the last good config): " + err.Error())
		}
		if !ok {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = io.WriteString(w, "not ready\n"+detail+"\n")
			return
		}
		_, _ = io.WriteString(w, strings.TrimSpace("ready\n"+detail)+"\n")
	})
	return mux
}

// AdminEnabled reports whether Serve wants an admin listener.
func (s *Service) AdminEnabled() bool { return s.admin != nil }
