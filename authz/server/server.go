// Package server assembles a running Warden from a config: the identity,
// policy and shared-state components, the ext_authz gRPC server (with
// health, reflection and keepalive), and the HTTP listener for metrics and
// probes. It owns start-up and the shutdown sequence.
package server

import (
	"context"
	"crypto/rsa"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"golang.org/x/net/netutil"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"
	"gopkg.in/natefinch/lumberjack.v2"

	"github.com/wardenauthz/warden/authz"
	"github.com/wardenauthz/warden/authz/admin"
	"github.com/wardenauthz/warden/authz/config"
	"github.com/wardenauthz/warden/authz/decisionlog"
	"github.com/wardenauthz/warden/identity"
	"github.com/wardenauthz/warden/policy"
	adminv1 "github.com/wardenauthz/warden/proto/warden/admin/v1"
	"github.com/wardenauthz/warden/ratelimit"
)

// Options are the injected dependencies.
type Options struct {
	Logger *slog.Logger
	// Stdout receives the stdout decision log sink. Default os.Stdout.
	Stdout io.Writer
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// HTTPClient fetches OIDC discovery and JWKS.
	HTTPClient *http.Client
	// Node names this replica in decision records. Default: the hostname.
	Node string
	// FullContext builds the whole Cedar context for every decision (see
	// policy.Source.FullContext).
	FullContext bool
	// TestKey verifies every issuer's tokens with this key, offline (see
	// identity.Options.TestKey): for `warden policy test`.
	TestKey *rsa.PrivateKey
}

// Service is an assembled Warden.
type Service struct {
	Config     *config.Config
	Authorizer *authz.Authorizer
	Policies   *policy.Engine
	Authn      *identity.Authenticator
	Store      ratelimit.Store
	Log        *decisionlog.DecisionLog
	Metrics    *authz.Metrics
	metrics    *metrics // the assembly's own
	Registry   *prometheus.Registry
	// Logs answers the admin API's decision queries: the queryable sink, or
	// this replica's recent records in memory.
	Logs decisionlog.LogSource

	now   func() time.Time
	node  string
	admin *grpc.Server
	// console is admin.console's handler, adminTLS the admin listener's
	// TLS when the console shares it (console.go).
	console  http.Handler
	adminTLS *tls.Config
	// AdminTokenFile is the token file the admin API checks ("" when off
	// or mTLS only); for the dev token, where it was created.
	AdminTokenFile string

	// HTTPAuthzListener is server.http_authz_addr's listener; Serve serves
	// it when set (see HTTPAuthzServer).
	HTTPAuthzListener net.Listener

	logger   *slog.Logger
	refused  *prometheus.CounterVec // streams refused over a listener's max_streams
	stopping atomic.Bool
	closers  []func() error

	// Config reloads (reload.go): the store's counter and the policy
	// source they build on, the metric, the latest error.
	counter       ratelimit.Counter
	policySrc     policy.Source
	reloadMu      sync.Mutex
	configReloads *prometheus.CounterVec
	configErr     atomic.Pointer[error]
}

// New builds a Service; it does no network I/O.
func New(cfg *config.Config, o Options) (*Service, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Stdout == nil {
		o.Stdout = os.Stdout
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Node == "" {
		o.Node = cfg.Server.Node
	}
	if o.Node == "" {
		o.Node, _ = os.Hostname()
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m := authz.NewMetrics(reg)
	s := &Service{Config: cfg, Metrics: m, metrics: newMetrics(reg), Registry: reg, logger: o.Logger, now: o.Now, node: o.Node}
	// What can fail once per request (a store, a sink) warns once per
	// interval with a count; the metrics count every failure.
	reqLog := slog.New(newRateLogged(o.Logger.Handler()))
	o.Logger = reqLog
	s.refused = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "warden", Subsystem: "grpc", Name: "streams_refused_total",
		Help: "gRPC streams refused because the listener had max_streams (or max_buffered_bytes of streams) open and the connection its reserve.",
	}, []string{"listener"})
	reg.MustRegister(s.refused)
	s.configReloads = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "warden_config_reloads_total", Help: "Reloads of warden.yaml (file change or SIGHUP), by result.",
	}, []string{"result"})
	reg.MustRegister(s.configReloads)

	idOpts := identity.Options{
		HTTPClient: o.HTTPClient,
		Now:        o.Now,
		Observe:    func(issuer, result string) { s.metrics.jwksFetches.WithLabelValues(issuer, result).Inc() },
		Logger:     s.logger, // it limits key fetch failures per issuer itself
		TestKey:    o.TestKey,
		Replay:     storeReplay{s}, // the store is built below
	}
	nonceKey, err := dpopNonceKey(cfg)
	if err != nil {
		return nil, err
	}
	idOpts.DPoPNonceKey = nonceKey
	if cfg.Identity.DevIssuer.Enabled && o.TestKey == nil {
		k, err := DevKey(cfg)
		if err != nil {
			return nil, err
		}
		idOpts.DevKey = k
	}
	authn, err := identity.New(cfg.Identity, idOpts)
	if err != nil {
		return nil, fmt.Errorf("identity: %w", err)
	}
	s.Authn = authn
	for _, w := range cfg.Warnings {
		s.logger.Warn("config warning: " + w)
	}

	src := cfg.PolicySource()
	src.FullContext = o.FullContext
	src.Replayable = cfg.DecisionLog.Replayable
	eng, err := policy.NewEngine(src, cfg.Policy.Routes)
	if err != nil {
		s.metrics.reloads.WithLabelValues("error").Inc()
		return nil, err
	}
	s.metrics.reloads.WithLabelValues("ok").Inc()
	eng.OnReload = func(err error, took time.Duration) {
		s.metrics.reloadDuration.Observe(took.Seconds())
		if err != nil {
			s.metrics.reloads.WithLabelValues("error").Inc()
		} else {
			s.metrics.reloads.WithLabelValues("ok").Inc()
		}
	}
	s.Policies = eng
	s.policySrc = src

	counter, err := s.newStore(cfg, o)
	if err != nil {
		return nil, err
	}
	s.counter = counter
	// The rate-limit rules go with the routes and policies (one generation
	// per config reload).
	eng.Attach(s.live(cfg))

	var sinks []decisionlog.LineSink
	for _, sk := range cfg.DecisionLog.Sinks {
		switch sk.Kind {
		case "stdout":
			sinks = append(sinks, decisionlog.WriterSink(keepOpen{o.Stdout}))
		case "file":
			sinks = append(sinks, decisionlog.WriterSink(&lumberjack.Logger{Filename: cfg.Resolve(sk.Path), MaxSize: sk.MaxSizeMB, MaxBackups: sk.MaxBackups}))
		case "redis_stream":
			r, ok := s.Store.(*ratelimit.Redis)
			if !ok {
				return nil, errors.New("decision_log: a redis_stream sink needs store.kind: redis")
			}
			sinks = append(sinks, decisionlog.NewRedisStreamSink(r.Client(), decisionlog.RedisStreamOptions{
				Stream: sk.Stream, MaxLen: sk.MaxLen, OnError: func(error) { m.StoreError("decision_log") },
			}))
		}
	}
	var rc redis.UniversalClient
	if r, ok := s.Store.(*ratelimit.Redis); ok {
		rc = r.Client()
	}
	var ring *decisionlog.Ring
	if src := logSource(cfg, rc); src != nil {
		s.Logs = src
	} else {
		ring = decisionlog.NewRing(cfg.DecisionLog.MemoryRecords, cfg.DecisionLog.MemoryBytes)
		s.Logs = ring
	}
	s.Log = decisionlog.New(decisionlog.Options{
		Size: cfg.DecisionLog.BufferSize, Limits: cfg.DecisionLog.RecordLimits(), Sinks: sinks, Registerer: reg, Keep: ring,
		OnError: func(err error) { reqLog.Warn("decision log write failed; records lost", "err", err) },
	})

	ao := authz.Options{
		Authenticator:        authn,
		Policies:             eng,
		Revocations:          s.Store,
		Recorder:             s.Log,
		Metrics:              m,
		Logger:               o.Logger,
		Now:                  o.Now,
		Node:                 o.Node,
		ForwardAuthorization: *cfg.Response.ForwardAuthorization,
		HeadersPrefix:        cfg.Response.HeadersPrefix,
		RevocationFailOpen:   cfg.Revocation.FailOpen,
		RateLimitFailOpen:    *cfg.RateLimit.FailOpen,
		SampleAllow:          *cfg.DecisionLog.SampleAllow,
		Limits:               cfg.Server.Limits,
	}
	if t := cfg.Tracing; t.OTLPEndpoint != "" {
		opts := []otlptracegrpc.Option{otlptracegrpc.WithEndpoint(t.OTLPEndpoint)}
		if t.Insecure {
			opts = append(opts, otlptracegrpc.WithInsecure())
		}
		exp, err := otlptracegrpc.New(context.Background(), opts...) // connects lazily
		if err != nil {
			return nil, fmt.Errorf("tracing: %w", err)
		}
		tp := sdktrace.NewTracerProvider(
			sdktrace.WithBatcher(exp),
			sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(*t.SampleRatio))),
			sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", "warden"), attribute.String("service.instance.id", o.Node))),
		)
		s.closers = append(s.closers, func() error {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			return tp.Shutdown(ctx)
		})
		ao.Tracer = tp.Tracer("github.com/wardenauthz/warden")
	}
	s.Authorizer = authz.New(ao)
	if err := s.newAdmin(); err != nil {
		return nil, err
	}
	return s, nil
}

// newAdmin builds the admin API's server when the config enables it.
func (s *Service) newAdmin() error {
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
	opts := append([]grpc.ServerOption{grpc.ChainUnaryInterceptor(g.UnaryInterceptor), grpc.MaxRecvMsgSize(adminMaxRecv)},
		grpcLimits(adminLimits(s.Config.Server.GRPC), adminMaxRecv, s.refused.WithLabelValues("admin").Inc)...)
	if a.TLS.CertFile != "" {
		// token callers need no certificate
		tc, err := s.listenerTLS(a.TLS, "admin.tls", g.TokenFile != "")
		if err != nil {
			return err
		}
		opts = append(opts, s.adminCreds(tc))
	}
	s.admin = grpc.NewServer(opts...)
	svc := &admin.Service{Logs: s.Logs, Store: s.Store, Policies: s.Policies, Node: s.node, Now: s.now,
		Subjects: s.Config.Identity.RevocationSubject}
	adminv1.RegisterAdminServiceServer(s.admin, svc)
	return s.newConsole(g, svc)
}

// logSource is cfg's queryable decision log sink: the Redis stream (every
// replica's records), else the file; nil when there is neither.
func logSource(cfg *config.Config, rc redis.UniversalClient) decisionlog.Follower {
	for _, s := range cfg.DecisionLog.Sinks {
		if s.Kind == "redis_stream" && rc != nil {
			return &decisionlog.StreamSource{Client: rc, Stream: s.Stream}
		}
	}
	for _, s := range cfg.DecisionLog.Sinks {
		if s.Kind == "file" {
			return &decisionlog.FileSource{Path: cfg.Resolve(s.Path)}
		}
	}
	return nil
}

// OpenLogSource opens cfg's queryable decision log sink for a reader (the
// CLI), with its own Redis connection when the sink is a stream.
func OpenLogSource(cfg *config.Config) (decisionlog.Follower, error) {
	var rc redis.UniversalClient
	if cfg.Store.Kind == "redis" {
		st, err := NewRedisStore(cfg, nil, CLIRedisTimeout)
		if err != nil {
			return nil, err
		}
		rc = st.Client()
	}
	src := logSource(cfg, rc)
	if ss, ok := src.(*decisionlog.StreamSource); ok {
		ss.CloseClient = true
	} else if rc != nil {
		_ = rc.Close()
	}
	if src == nil {
		return nil, fmt.Errorf("%s has no queryable decision log sink (file or redis_stream); ask the server instead: warden logs --server %s", cfg.File, cfg.Admin.Addr)
	}
	return src, nil
}

// RepeatedLogInterval is how often a warning repeated on every request (a
// store or sink failing) is written: once per interval, with the count of
// the ones suppressed (internal/ratelog).
const RepeatedLogInterval = 10 * time.Second

// keepOpen hides an io.Writer's Close (stdout outlives the decision log).
type keepOpen struct{ io.Writer }

// newStore builds the configured store and the Counter rate limiting uses
// (with fail_open, a Redis failure falls back to a per-instance limiter).
func (s *Service) newStore(cfg *config.Config, o Options) (ratelimit.Counter, error) {
	memory := func() *ratelimit.Memory {
		m := ratelimit.NewMemorySize(cfg.Store.Memory.MaxKeys)
		s.Registry.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Namespace: "warden", Subsystem: "ratelimit", Name: "evictions_total",
			Help: "Rate-limit buckets evicted from memory to stay within store.memory.max_keys.",
		}, func() float64 { return float64(m.Evicted()) }))
		return m
	}
	if cfg.Store.Kind != "redis" {
		m := memory()
		s.Store = m
		return m, nil
	}
	r, err := NewRedisStore(cfg, o.Logger, 0)
	if err != nil {
		return nil, err
	}
	s.Store = r
	s.closers = append(s.closers, r.Close)
	if !*cfg.RateLimit.FailOpen {
		return r, nil
	}
	return &ratelimit.Fallback{Primary: r, Local: memory(), OnError: func(err error) {
		s.Metrics.StoreError("ratelimit_fallback")
		o.Logger.Warn("rate limit store failed; counting on this replica (ratelimit.fail_open)", "err", err)
	}}, nil
}

// CLIRedisTimeout is the CLI's store.redis.timeout (warden logs, revoke):
// they read whole pages of records, and no Envoy waits; each operation is
// bounded by ten times it (see ratelimit.NewRedisClient).
const CLIRedisTimeout = time.Second

// NewRedisStore connects the Redis store of cfg (it does no I/O yet). Every
// Redis operation is bounded by timeout, by store.redis.timeout when 0.
func NewRedisStore(cfg *config.Config, log *slog.Logger, timeout time.Duration) (*ratelimit.Redis, error) {
	rc := cfg.Store.Redis
	pw, err := cfg.RedisPassword()
	if err != nil {
		return nil, err
	}
	opts := &redis.UniversalOptions{Addrs: rc.Addrs, MasterName: rc.MasterName, Username: rc.Username, Password: pw, DB: rc.DB}
	if t := rc.TLS; t.On() {
		tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName}
		if t.CAFile != "" {
			if tc.RootCAs, err = certPool(cfg.Resolve(t.CAFile)); err != nil {
				return nil, fmt.Errorf("store.redis.tls.ca_file: %w", err)
			}
		}
		if t.CertFile != "" {
			cert, err := tls.LoadX509KeyPair(cfg.Resolve(t.CertFile), cfg.Resolve(t.KeyFile))
			if err != nil {
				return nil, fmt.Errorf("store.redis.tls: %w", err)
			}
			tc.Certificates = []tls.Certificate{cert}
		}
		opts.TLSConfig = tc
	}
	if timeout == 0 {
		timeout = rc.Timeout
	}
	return ratelimit.NewRedis(ratelimit.NewRedisClient(opts, timeout), ratelimit.RedisOptions{
		Timeout: timeout, MaxStaleness: cfg.Revocation.MaxStaleness, Logger: log,
	}), nil
}

// DevKey loads (creating on first use) the dev issuer key of cfg.
func DevKey(cfg *config.Config) (*rsa.PrivateKey, error) {
	path := cfg.Resolve(cfg.Identity.DevIssuer.KeyFile)
	if path == "" {
		p, err := identity.DevKeyPath()
		if err != nil {
			return nil, err
		}
		path = p
	}
	return identity.LoadDevKey(path)
}

// Ready reports readiness: policies loaded, every issuer's keys fetched once,
// not shutting down. detail explains a "no".
func (s *Service) Ready() (bool, string) {
	var problems []string
	if s.stopping.Load() {
		problems = append(problems, "shutting down")
	}
	if s.Policies.Current() == nil {
		problems = append(problems, "no policies loaded")
	}
	var notes []string
	for _, ks := range s.Authn.KeyStatus() {
		switch {
		case !ks.Ready && ks.LastError != "":
			problems = append(problems, fmt.Sprintf("issuer %s: keys not fetched yet (%d failed fetches; last: %s)", ks.Issuer, ks.Failures, ks.LastError))
		case !ks.Ready:
			problems = append(problems, "issuer "+ks.Issuer+": keys not fetched yet")
		case ks.LastError != "":
			notes = append(notes, fmt.Sprintf("issuer %s: serving the keys fetched at %s; the last %d fetches failed (last: %s)",
				ks.Issuer, ks.LastOK.UTC().Format(time.RFC3339), ks.Failures, ks.LastError))
		}
	}
	if len(problems) > 0 {
		return false, strings.Join(append(problems, notes...), "\n")
	}
	return true, strings.Join(notes, "\n")
}

// Start begins background work (key fetches, policy watching).
func (s *Service) Start(ctx context.Context) {
	s.Authn.Start(ctx)
	if r, ok := s.Store.(*ratelimit.Redis); ok {
		r.Start(ctx)
	}
	if dir := s.Config.PolicyDir(); dir != "" && s.Config.Policy.Reload == "watch" {
		if err := s.Policies.Watch(ctx, dir, s.logger); err != nil {
			s.logger.Warn("cannot watch the policy directory; reloads are off", "dir", dir, "err", err)
		}
	}
}

// GRPCServer builds the gRPC server with ext_authz, health and reflection.
func (s *Service) GRPCServer() (*grpc.Server, *health.Server, error) {
	opts := append([]grpc.ServerOption{
		grpc.MaxRecvMsgSize(s.Config.Server.MaxRecvBytes),
		// Long-lived workers run the Checks: a fresh goroutine per stream
		// would grow its stack through the pipeline on every Check (about a
		// tenth of the CPU under load); past the workers, grpc-go spawns.
		grpc.NumStreamWorkers(uint32(max(64, 4*runtime.GOMAXPROCS(0)))),
	}, grpcLimits(s.Config.Server.GRPC, s.Config.Server.MaxRecvBytes, s.refused.WithLabelValues("grpc").Inc)...)
	if t := s.Config.Server.TLS; t.CertFile != "" {
		tc, err := s.listenerTLS(t, "server.tls", false)
		if err != nil {
			return nil, nil, err
		}
		opts = append(opts, grpc.Creds(credentials.NewTLS(tc)))
	}
	g := grpc.NewServer(opts...)
	authv3.RegisterAuthorizationServer(g, s.Authorizer)
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

// Serve runs until ctx ends, then shuts down in order: NOT_SERVING and
// not-ready, GracefulStop within the grace period (Stop after it), HTTP
// and admin shutdown, decision log flush. adminLis is nil when the admin
// API is off.
func (s *Service) Serve(ctx context.Context, grpcLis, httpLis, adminLis net.Listener) error {
	g, h, err := s.GRPCServer()
	if err != nil {
		return err
	}
	// The probe and metrics listener: slow or idle clients are cut off,
	// and at most maxHTTPConns are open.
	hs := &http.Server{Handler: s.HTTPHandler(), ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: time.Minute, MaxHeaderBytes: 16 << 10}
	httpLis = netutil.LimitListener(httpLis, maxHTTPConns)
	errc := make(chan error, 4)
	go func() { errc <- g.Serve(limitListener(grpcLis, s.Config.Server.GRPC)) }()
	stopHTTPAuthz := s.serveHTTPAuthz(errc)
	if adminLis != nil && s.admin != nil {
		stopConsole := s.serveAdmin(limitListener(adminLis, adminLimits(s.Config.Server.GRPC)), errc)
		defer stopConsole(context.Background())
		defer s.admin.Stop()
	}
	go func() {
		if err := hs.Serve(httpLis); !errors.Is(err, http.ErrServerClosed) {
			errc <- err
		}
	}()
	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errc:
	}
	s.stopping.Store(true)
	h.Shutdown() // every service NOT_SERVING
	grace := s.Config.Server.ShutdownGrace
	stopped := make(chan struct{})
	go func() { g.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(grace):
		s.logger.Warn("grace period over; closing remaining connections")
		g.Stop()
	}
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = hs.Shutdown(sctx)
	stopHTTPAuthz(sctx)
	if err := s.Log.Close(sctx); err != nil {
		serveErr = errors.Join(serveErr, fmt.Errorf("decision log: %w", err))
	}
	s.Close()
	return serveErr
}

// maxHTTPConns bounds the probe and metrics listener's connections.
const maxHTTPConns = 256

// Close releases the store's connections (Serve calls it on shutdown).
func (s *Service) Close() {
	for _, c := range s.closers {
		_ = c()
	}
	s.closers = nil
}
