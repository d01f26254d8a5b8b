package ratelimit

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Keys and channel. Every script touches one key, hash-tagged, so it runs
// on Redis Cluster too.
// Revocation keys are in revocation_redis.go.
const (
	keyPrefix = "warden:"
	rlPrefix  = keyPrefix + "rl:{"
)

// gcraScript is one GCRA step on Redis's own clock (the same for every
// replica). ARGV: interval and tolerance in µs. Returns {allowed, retry_after
// µs, reset µs}.
var gcraScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local nxt = tat + interval
local over = nxt - now - tolerance
if over > 0 then return {0, over, tat - now} end
redis.call('SET', KEYS[1], string.format('%.0f', nxt), 'PX', math.floor((nxt - now) / 1000) + 1)
return {1, 0, nxt - now}
`)

// RedisOptions configure the Redis store.
type RedisOptions struct {
	// Timeout bounds every Redis call made for a Check. Default 100ms.
	Timeout time.Duration
	// MaxStaleness is how old the local revocation view may grow before
	// Revoked reports an error (fail closed). Default 5s.
	MaxStaleness time.Duration
	// MaxInflight bounds the calls a Check may leave running when Redis
	// overruns its deadline (see call). Default 1024.
	MaxInflight int
	Logger      *slog.Logger
	Now         func() time.Time
}

// Redis is the shared store for many replicas: GCRA buckets in Redis, and
// revocations persisted in Redis and served from a local mirror that pub/sub
// keeps fresh (with a full resync every MaxStaleness/3, since pub/sub is
// at-most-once). A Check's revocation lookup costs no round trip; its rate
// limit one pipelined round trip.
//
// Buckets of different rules sit in different slots, so unlike Memory a
// Check denied by one rule may still have consumed from another.
type Redis struct {
	c         redis.UniversalClient
	o         RedisOptions
	revs      revocationList // the mirror (revocation_redis.go)
	synced    atomic.Int64   // unix ns of the last successful resync
	inflight  chan struct{}  // outstanding calls (Take, call)
	queue     chan *take     // Takes waiting for a batch (redis_batch.go)
	batchOnce sync.Once
	closeOnce sync.Once
	closed    chan struct{} // closed by Close: the batchers stop

	afterScan func() // tests: runs between resync's scan and its replace
}

// NewRedisClient builds a go-redis UniversalClient: Cluster with several
// addresses, Sentinel with a master name, else standalone. An address that
// starts with "/" is a unix socket.
//
// timeout (default 100ms, store.redis.timeout) bounds every operation end
// to end: context deadlines reach the socket (ContextTimeoutEnabled), so a
// Check's call (Take gives it timeout as its deadline) ends by then, and
// go-redis's retries, dials and pool waits stay inside it. An operation
// with no deadline of its own (a decision-log batch, a revocation resync,
// an admin call) is bounded by the dial, read, write and pool-wait
// timeouts, each opTimeouts times timeout (1s at the default): room for a
// batch of records, still bounded. Fields o already sets are kept.
func NewRedisClient(o *redis.UniversalOptions, timeout time.Duration) redis.UniversalClient {
	if timeout <= 0 {
		timeout = defaultTimeout
	}
	if o.Dialer == nil {
		// go-redis applies TLSConfig only in its own dialer, so this one
		// does (over TCP; a unix socket is local and plain). The dial
		// honours ctx, which go-redis bounds by DialTimeout per attempt.
		d := &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}
		td := &tls.Dialer{NetDialer: d, Config: o.TLSConfig}
		o.Dialer = func(ctx context.Context, network, addr string) (net.Conn, error) {
			switch {
			case strings.HasPrefix(addr, "/"):
				return d.DialContext(ctx, "unix", addr)
			case o.TLSConfig != nil:
				return td.DialContext(ctx, network, addr) // ServerName: the address's host unless set
			}
			return d.DialContext(ctx, network, addr)
		}
	}
	o.ContextTimeoutEnabled = true
	for _, d := range []*time.Duration{&o.DialTimeout, &o.ReadTimeout, &o.WriteTimeout, &o.PoolTimeout} {
		if *d == 0 {
			*d = opTimeouts * timeout
		}
	}
	return redis.NewUniversalClient(o)
}

// defaultTimeout is store.redis.timeout's default.
const defaultTimeout = 100 * time.Millisecond

// opTimeouts is go-redis's dial, read, write and pool-wait timeouts, in
// store.redis.timeouts.
const opTimeouts = 10

// NewRedis wraps a client. Call Start to fill and follow the mirror.
func NewRedis(c redis.UniversalClient, o RedisOptions) *Redis {
	if o.Timeout == 0 {
		o.Timeout = defaultTimeout
	}
	if o.MaxStaleness == 0 {
		o.MaxStaleness = 5 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.MaxInflight == 0 {
		o.MaxInflight = 1024
	}
	r := &Redis{c: c, o: o, inflight: make(chan struct{}, o.MaxInflight),
		queue: make(chan *take, o.MaxInflight), closed: make(chan struct{})}
	r.revs.init()
	return r
}

// Client is the underlying client (shared with the decision log's Redis
// stream sink).
func (r *Redis) Client() redis.UniversalClient { return r.c }

// Close closes the client.
func (r *Redis) Close() error {
	r.closeOnce.Do(func() { close(r.closed) })
	return r.c.Close()
}

// ErrBusy means too many Redis calls are outstanding: Redis is slow or
// unreachable, and the call was not tried.
var ErrBusy = errors.New("redis: too many calls outstanding")

// call runs f, a Redis call bounded by ctx, and waits for it no longer than
// ctx: go-redis returns soon after the deadline, but not always by it (a
// connection handshake or pool wait in progress on a stopped server), and
// the Check must answer by store.redis.timeout. A call left behind ends by
// go-redis's own timeouts; at most MaxInflight run at once, and past that a call fails at once with ErrBusy, so they cannot
// pile up while Redis is down.
func (r *Redis) call(ctx context.Context, f func() error) error {
	select {
	case r.inflight <- struct{}{}:
	default:
		return ErrBusy
	}
	done := make(chan error, 1)
	go func() {
		defer func() { <-r.inflight }()
		done <- f()
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("redis: %w", context.Cause(ctx))
	}
}
