// Package server assembles a running Warden from a config: the identity,
// policy and shared-state components, the ext_authz gRPC server (with
// health, reflection and keepalive), and the HTTP listener for metrics and
// probes. It owns start-up and the shutdown sequence.
//
// New assembles a Service through one builder per part, in order:
//
//	newService        metrics registry              server.go
//	buildIdentity     issuers, dev key              server.go
//	buildPolicies     policy engine (reload hook)   server.go
//	buildStore        memory or Redis store         store.go
//	buildDecisionLog  sinks, async log, its source  server.go
//	buildTracing      OTLP tracer                   server.go
//	buildAdmin        admin API server              listeners.go
//
// Serve then runs the listeners (listeners.go, httpauthz.go, authzen.go,
// limits.go) and shuts down in order, returning what failed to close.
// Config and certificate reloads are in reload.go and tlsreload.go.
package server

import (
	"cmp"
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
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"gopkg.in/natefinch/lumberjack.v2"

	"github.com/wardenauthz/warden/authz"
	"github.com/wardenauthz/warden/authz/config"
	"github.com/wardenauthz/warden/authz/decisionlog"
	"github.com/wardenauthz/warden/identity"
	"github.com/wardenauthz/warden/policy"
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
	// ConsoleWriteTimeout bounds the writing of a console response (the
	// live view's events each). Default consoleWriteTimeout.
	ConsoleWriteTimeout time.Duration
}

// consoleWriteTimeout is how long the console's HTTP server may take to
// answer a request, from when it was read, its writes included: an
// authenticated caller that stops reading its responses (pipelining
// requests it never reads) otherwise held the connection, its goroutine
// and a socket's worth of kernel memory for as long as it liked (nothing
// else closes an authenticated connection in use). A view's scan is
// bounded by 20 s (console.Options.ScanTimeout); the live view sets its own
// deadline for each event.
const consoleWriteTimeout = time.Minute

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
	console      http.Handler
	adminTLS     *tls.Config
	consoleWrite time.Duration // the console server's WriteTimeout
	// adminConns admits the admin listener's connections (adminconns.go).
	adminConns *adminConns
	// AdminTokenFile is the token file the admin API checks ("" when off
	// or mTLS only); for the dev token, where it was created.
	AdminTokenFile string

	// HTTPAuthzListener is server.http_authz_addr's listener; Serve serves
	// it when set (see HTTPAuthzServer).
	HTTPAuthzListener net.Listener

	logger  *slog.Logger
	refused *prometheus.CounterVec // streams refused over a listener's max_streams
	unread  *prometheus.CounterVec // connections closed for an answer left unread past stream_timeout
	// httpAuthzRefused counts the HTTP authorization requests refused
	// past server.http_authz.max_requests.
	httpAuthzRefused prometheus.Counter
	// displaced counts idle HTTP connections closed at a listener's cap
	// for a new one (idleCap).
	displaced *prometheus.CounterVec
	// the gRPC listeners' stream limits (tests read their counts); the
	// ext_authz listener's is built in Serve, so published atomically
	grpcStreams  atomic.Pointer[streamLimit]
	adminStreams *streamLimit
	stopping     atomic.Bool
	closers      []func() error

	// redis is the Redis store (also Store), nil with the memory store: the
	// decision log's stream sink and source share its client.
	redis *ratelimit.Redis

	// Config reloads (reload.go): the store's counter and the policy
	// source they build on, the metric, the latest error.
	counter       ratelimit.Counter
	policySrc     policy.Source
	reloadMu      sync.Mutex
	configReloads *prometheus.CounterVec
	configErr     atomic.Pointer[error]
}

// New builds a Service; it does no network I/O. Each part has its
// builder, called in this order: metrics (newService), identity, policies,
// store, decision log, tracing, then the authorizer over them and the
// listeners' servers (admin; GRPCServer and HTTPHandler at Serve).
func New(cfg *config.Config, o Options) (_ *Service, err error) {
	o.setDefaults(cfg)
	s := newService(cfg, o)
	defer func() {
		if err == nil {
			return
		}
		if cerr := s.Close(); cerr != nil { // release what the builders opened
			err = errors.Join(err, cerr)
		}
	}()
	// What can fail once per request (a store, a sink) warns once per
	// interval with a count; the metrics count every failure.
	o.Logger = slog.New(newRateLogged(s.logger.Handler()))
	if s.Authn, err = s.buildIdentity(o); err != nil {
		return nil, err
	}
	for _, w := range cfg.Warnings {
		s.logger.Warn("config warning: " + w)
	}
	if s.Policies, err = s.buildPolicies(o); err != nil {
		return nil, err
	}
	if err := s.buildStore(o); err != nil {
		return nil, err
	}
	// The rate-limit rules go with the routes and policies (one generation
	// per config reload).
	s.Policies.Attach(s.live(cfg))
	if err := s.buildDecisionLog(o); err != nil {
		return nil, err
	}
	tracer, err := s.buildTracing(o)
	if err != nil {
		return nil, err
	}
	s.Authorizer = authz.New(s.authzOptions(o, tracer))
	if err := s.buildAdmin(); err != nil {
		return nil, err
	}
	return s, nil
}

// setDefaults fills in what o leaves unset.
func (o *Options) setDefaults(cfg *config.Config) {
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
}

// newService is the Service before its parts: the registry with the
// application's metrics and the server's own.
func newService(cfg *config.Config, o Options) *Service {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m := authz.NewMetrics(reg)
	s := &Service{Config: cfg, Metrics: m, metrics: newMetrics(reg), Registry: reg, logger: o.Logger, now: o.Now, node: o.Node,
		consoleWrite: cmp.Or(o.ConsoleWriteTimeout, consoleWriteTimeout)}
	s.refused = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "warden", Subsystem: "grpc", Name: "streams_refused_total",
		Help: "gRPC streams refused because the listener had max_streams (or max_buffered_bytes of streams) open and the connection its reserve.",
	}, []string{"listener"})
	reg.MustRegister(s.refused)
	s.unread = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "warden", Subsystem: "grpc", Name: "connections_closed_unread_total",
		Help: "gRPC connections closed because an answer waited unread (the client's HTTP/2 window closed) longer than stream_timeout.",
	}, []string{"listener"})
	reg.MustRegister(s.unread)
	s.httpAuthzRefused = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "warden_http_authz_requests_refused_total",
		Help: "HTTP authorization requests answered 503 undecided because server.http_authz.max_requests were being handled.",
	})
	reg.MustRegister(s.httpAuthzRefused)
	s.displaced = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "warden_http_connections_displaced_total",
		Help: "Idle connections of an HTTP listener (probes, HTTP authorization, AuthZEN) closed at its connection cap to make room for a new one.",
	}, []string{"listener"})
	reg.MustRegister(s.displaced)
	s.configReloads = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "warden_config_reloads_total", Help: "Reloads of warden.yaml (file change or SIGHUP), by result.",
	}, []string{"result"})
	reg.MustRegister(s.configReloads)
	return s
}

// buildIdentity builds the authenticator of cfg's issuers (and the dev
// issuer, its key loaded or created).
func (s *Service) buildIdentity(o Options) (*identity.Authenticator, error) {
	cfg := s.Config
	idOpts := identity.Options{
		HTTPClient: o.HTTPClient,
		Now:        o.Now,
		Observe:    func(issuer, result string) { s.metrics.jwksFetches.WithLabelValues(issuer, result).Inc() },
		Logger:     s.logger, // it limits key fetch failures per issuer itself
		TestKey:    o.TestKey,
		Replay:     storeReplay{s}, // the store is built after identity
	}
	nonceKey, err := dpopNonceKey(cfg)
	if err != nil {
		return nil, err
	}
	idOpts.DPoPNonceKey = nonceKey
	if k := cfg.Identity.APIKeys; k != nil && k.Redis != nil {
		idOpts.APIKeyLookup = func(ctx context.Context, id string) ([]byte, bool, error) {
			if s.redis == nil { // the store is built after identity
				return nil, false, errors.New("api_keys.redis needs store.kind: redis")
			}
			b, err := s.redis.Client().HGet(ctx, k.Redis.Key, id).Bytes()
			if errors.Is(err, redis.Nil) {
				return nil, false, nil
			}
			return b, err == nil, err
		}
	}
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
	return authn, nil
}

// buildPolicies loads the policy engine; every load, the first included,
// is counted and timed.
func (s *Service) buildPolicies(o Options) (*policy.Engine, error) {
	cfg := s.Config
	src := cfg.PolicySource()
	src.FullContext = o.FullContext
	src.Replayable = cfg.DecisionLog.Replayable
	s.policySrc = src
	return policy.NewEngine(src, cfg.Policy.Routes, policy.OnReload(func(err error, took time.Duration) {
		s.metrics.reloadDuration.Observe(took.Seconds())
		if err != nil {
			s.metrics.reloads.WithLabelValues("error").Inc()
		} else {
			s.metrics.reloads.WithLabelValues("ok").Inc()
		}
	}))
}

// buildDecisionLog builds the decision log (its sinks, the async log) and
// the source the admin API queries: the queryable sink, else a ring of
// this replica's recent records.
func (s *Service) buildDecisionLog(o Options) error {
	cfg, m, reqLog := s.Config, s.Metrics, o.Logger
	var sinks []decisionlog.LineSink
	for _, sk := range cfg.DecisionLog.Sinks {
		switch sk.Kind {
		case "stdout":
			sinks = append(sinks, decisionlog.WriterSink(keepOpen{o.Stdout}))
		case "file":
			sinks = append(sinks, decisionlog.WriterSink(&lumberjack.Logger{Filename: cfg.Resolve(sk.Path), MaxSize: sk.MaxSizeMB, MaxBackups: sk.MaxBackups}))
		case "redis_stream":
			if s.redis == nil {
				return errors.New("decision_log: a redis_stream sink needs store.kind: redis")
			}
			sinks = append(sinks, decisionlog.NewRedisStreamSink(s.redis.Client(), decisionlog.RedisStreamOptions{
				Stream: sk.Stream, MaxLen: sk.MaxLen, OnError: func(error) { m.StoreError("decision_log") },
			}))
		}
	}
	var ring *decisionlog.Ring
	if src := logSource(cfg, s.redisClient()); src != nil {
		s.Logs = src
	} else {
		ring = decisionlog.NewRing(cfg.DecisionLog.MemoryRecords, cfg.DecisionLog.MemoryBytes)
		s.Logs = ring
	}
	s.Log = decisionlog.New(decisionlog.Options{
		Size: cfg.DecisionLog.BufferSize, Limits: cfg.DecisionLog.RecordLimits(), Sinks: sinks, Registerer: s.Registry, Keep: ring,
		OnError: func(err error) { reqLog.Warn("decision log write failed; records lost", "err", err) },
	})
	return nil
}

// buildTracing is the tracer of tracing.otlp_endpoint (nil when unset: the
// authorizer then traces nothing); its provider is shut down by Close.
func (s *Service) buildTracing(o Options) (trace.Tracer, error) {
	t := s.Config.Tracing
	if t.OTLPEndpoint == "" {
		return nil, nil
	}
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
		return named("tracing", tp.Shutdown(ctx))
	})
	return tp.Tracer("github.com/wardenauthz/warden"), nil
}

// authzOptions wire the built parts into the authorizer.
func (s *Service) authzOptions(o Options, tracer trace.Tracer) authz.Options {
	cfg := s.Config
	return authz.Options{
		Authenticator:        s.Authn,
		Policies:             s.Policies,
		Revocations:          s.Store,
		Recorder:             s.Log,
		Metrics:              s.Metrics,
		Logger:               o.Logger,
		Now:                  o.Now,
		Node:                 o.Node,
		ForwardAuthorization: *cfg.Response.ForwardAuthorization,
		HeadersPrefix:        cfg.Response.HeadersPrefix,
		RevocationFailOpen:   cfg.Revocation.FailOpen,
		RateLimitFailOpen:    *cfg.RateLimit.FailOpen,
		SampleAllow:          *cfg.DecisionLog.SampleAllow,
		Limits:               cfg.Server.Limits,
		Tracer:               tracer,
	}
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
	if s.redis != nil {
		s.redis.Start(ctx)
	}
	if dir := s.Config.PolicyDir(); dir != "" && s.Config.Policy.Reload == "watch" {
		if err := s.Policies.Watch(ctx, dir, s.logger); err != nil {
			s.logger.Warn("cannot watch the policy directory; reloads are off", "dir", dir, "err", err)
		}
	}
}

// Serve runs until ctx ends, then shuts down in order: NOT_SERVING and
// not-ready, GracefulStop within the grace period (Stop after it), HTTP
// and admin shutdown, decision log flush, store and tracer close. adminLis
// is nil when the admin API is off. Its error is a listener's failure
// and what failed to shut down (records not flushed, a client not
// closed), joined.
func (s *Service) Serve(ctx context.Context, grpcLis, httpLis, adminLis net.Listener) error {
	g, h, err := s.GRPCServer()
	if err != nil {
		return err
	}
	// The probe and metrics listener: slow or idle clients are cut off,
	// and at most maxHTTPConns are open (past it, a new one takes an idle
	// one's place: idleCap).
	hs := &http.Server{Handler: s.HTTPHandler(), ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: time.Minute, MaxHeaderBytes: 16 << 10}
	probeLis := newIdleCap(tcpListener{httpLis}, maxHTTPConns, s.displaced.WithLabelValues("http").Inc)
	errc := make(chan error, 4)
	go func() { errc <- g.Serve(limitListener(tcpListener{grpcLis}, s.Config.Server.GRPC)) }()
	stopHTTPAuthz := s.serveHTTPAuthz(errc)
	if adminLis != nil && s.admin != nil {
		stopConsole := s.serveAdmin(adminLis, errc)
		defer stopConsole(context.Background())
		defer s.admin.Stop()
	}
	go func() {
		if err := probeLis.serve(hs); !errors.Is(err, http.ErrServerClosed) {
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
	shutdownErr := errors.Join(named("server.http_addr", hs.Shutdown(sctx)), stopHTTPAuthz(sctx),
		named("decision_log", s.Log.Close(sctx)), s.Close())
	return errors.Join(serveErr, named("shutdown", shutdownErr))
}

// named prefixes err, when not nil, with the config key of what failed.
func named(key string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", key, err)
}

// maxHTTPConns bounds the probe and metrics listener's connections.
const maxHTTPConns = 256

// Close releases the store's connections and the tracer (Serve calls it on
// shutdown); it reports every failure.
func (s *Service) Close() error {
	var errs []error
	for _, c := range s.closers {
		errs = append(errs, c())
	}
	s.closers = nil
	return errors.Join(errs...)
}
