package server

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/wardenauthz/warden/authz/config"
	"github.com/wardenauthz/warden/internal/capool"
	"github.com/wardenauthz/warden/ratelimit"
)

// buildStore builds the configured store (Store; redis when it is Redis)
// and the Counter rate limiting uses (with fail_open, a Redis failure falls
// back to a per-instance limiter).
func (s *Service) buildStore(o Options) error {
	cfg := s.Config
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
		s.Store, s.counter = m, m
		return nil
	}
	r, err := NewRedisStore(cfg, o.Logger, 0)
	if err != nil {
		return err
	}
	s.Store, s.redis, s.counter = r, r, r
	s.closers = append(s.closers, func() error { return named("store.redis", r.Close()) })
	if *cfg.RateLimit.FailOpen {
		s.counter = &ratelimit.Fallback{Primary: r, Local: memory(), OnError: func(err error) {
			s.Metrics.StoreError("ratelimit_fallback")
			o.Logger.Warn("rate limit store failed; counting on this replica (ratelimit.fail_open)", "err", err)
		}}
	}
	return nil
}

// redisClient is the Redis store's client, nil with the memory store.
func (s *Service) redisClient() redis.UniversalClient {
	if s.redis == nil {
		return nil
	}
	return s.redis.Client()
}

// SyncRevocations fills the Redis store's revocation mirror once, without
// following changes (see ratelimit.Redis.Sync): for a one-shot evaluation
// that does not Start the service. With the memory store it does nothing.
func (s *Service) SyncRevocations(ctx context.Context) error {
	if s.redis == nil {
		return nil
	}
	return s.redis.Sync(ctx)
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
			if tc.RootCAs, err = capool.Load(cfg.Resolve(t.CAFile)); err != nil {
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
