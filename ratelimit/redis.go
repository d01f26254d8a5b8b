package ratelimit

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Keys and channel. Every script touches one key, hash-tagged, so it runs
// on Redis Cluster too.
const (
	keyPrefix   = "warden:"
	rlPrefix    = keyPrefix + "rl:{"
	jtiPrefix   = keyPrefix + "rev:jti:{"
	subPrefix   = keyPrefix + "rev:sub:{"
	revChannel  = keyPrefix + "revocations"
	defaultJTIT = 7 * 24 * time.Hour
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
	c        redis.UniversalClient
	o        RedisOptions
	mu       sync.RWMutex
	jtis     map[string]time.Time
	subjects map[string]time.Time
	synced   atomic.Int64  // unix ns of the last successful resync
	inflight chan struct{} // Take's outstanding calls (see call)
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
	return &Redis{c: c, o: o, jtis: map[string]time.Time{}, subjects: map[string]time.Time{}, inflight: make(chan struct{}, o.MaxInflight)}
}

// Client is the underlying client (shared with the decision log's Redis
// stream sink).
func (r *Redis) Client() redis.UniversalClient { return r.c }

// Close closes the client.
func (r *Redis) Close() error { return r.c.Close() }

// Take implements Counter: one pipelined round trip for all buckets.
func (r *Redis) Take(ctx context.Context, _ time.Time, buckets []Bucket) ([]Outcome, error) {
	ctx, cancel := context.WithTimeout(ctx, r.o.Timeout)
	defer cancel()
	run := func() ([]*redis.Cmd, error) {
		pipe := r.c.Pipeline()
		cmds := make([]*redis.Cmd, len(buckets))
		for i, b := range buckets {
			cmds[i] = gcraScript.EvalSha(ctx, pipe, []string{rlPrefix + b.Key + "}"},
				b.Interval.Microseconds(), b.Tolerance.Microseconds())
		}
		_, err := pipe.Exec(ctx)
		return cmds, err
	}
	var cmds []*redis.Cmd
	err := r.call(ctx, func() (err error) {
		cmds, err = run()
		if err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
			if err := gcraScript.Load(ctx, r.c).Err(); err != nil {
				return err
			}
			cmds, err = run()
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	outs := make([]Outcome, len(buckets))
	for i, cmd := range cmds {
		v, err := cmd.Int64Slice()
		if err != nil || len(v) != 3 {
			return nil, fmt.Errorf("gcra: unexpected reply %v: %w", cmd.Val(), err)
		}
		b := buckets[i]
		o := Outcome{Allowed: v[0] == 1, RetryAfter: time.Duration(v[1]) * time.Microsecond, Reset: time.Duration(v[2]) * time.Microsecond}
		if o.Allowed {
			o.Remaining = int((b.Tolerance - o.Reset) / b.Interval)
		}
		outs[i] = o
	}
	return outs, nil
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

// Revoke persists a revocation and tells every replica.
func (r *Redis) Revoke(ctx context.Context, rv Revocation) error {
	var key, val string
	var ttl time.Duration
	switch rv.Kind {
	case "jti":
		until := rv.Until
		if until.IsZero() {
			until = r.o.Now().Add(defaultJTIT)
		}
		key, val, ttl = jtiPrefix+rv.ID+"}", strconv.FormatInt(until.UnixMilli(), 10), until.Sub(r.o.Now())+RevocationGrace
	case "subject":
		key, val = subPrefix+rv.ID+"}", strconv.FormatInt(rv.Before.UnixMilli(), 10)
	default:
		return fmt.Errorf("revocation kind %q", rv.Kind)
	}
	if rv.Kind == "jti" && ttl <= 0 {
		return nil // already expired: nothing to revoke
	}
	if err := r.c.Set(ctx, key, val, ttl).Err(); err != nil {
		return err
	}
	r.apply(rv.Kind, rv.ID, val)
	return r.c.Publish(ctx, revChannel, rv.Kind+"\x00"+rv.ID+"\x00"+val).Err()
}

func (r *Redis) apply(kind, id, ms string) {
	n, err := strconv.ParseInt(ms, 10, 64)
	if err != nil {
		return
	}
	t := time.UnixMilli(n)
	r.mu.Lock()
	defer r.mu.Unlock()
	switch kind {
	case "jti":
		r.jtis[id] = t
	case "subject":
		if prev, ok := r.subjects[id]; !ok || t.After(prev) {
			r.subjects[id] = t
		}
	}
}

// ErrStale means the local revocation view is older than MaxStaleness.
var ErrStale = errors.New("revocation view is stale (Redis unreachable)")

// Revoked answers from the local mirror; it fails when the mirror is stale.
func (r *Redis) Revoked(_ context.Context, subject, jti string, iat time.Time) (bool, error) {
	if age := r.o.Now().Sub(time.Unix(0, r.synced.Load())); age > r.o.MaxStaleness {
		return false, fmt.Errorf("%w: last sync %s ago", ErrStale, age.Round(time.Millisecond))
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	return revoked(r.jtis, r.subjects, subject, jti, iat), nil
}

// List reads the revocations in force from Redis.
func (r *Redis) List(ctx context.Context, now time.Time) ([]Revocation, error) {
	if err := r.resync(ctx); err != nil {
		return nil, err
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	var out []Revocation
	for id, until := range r.jtis {
		if !forgettable(until, now) {
			out = append(out, Revocation{Kind: "jti", ID: id, Until: until})
		}
	}
	for id, before := range r.subjects {
		out = append(out, Revocation{Kind: "subject", ID: id, Before: before})
	}
	sortRevocations(out)
	return out, nil
}

// resync replaces the mirror with what Redis holds.
func (r *Redis) resync(ctx context.Context) error {
	jtis, subjects := map[string]time.Time{}, map[string]time.Time{}
	scan := func(ctx context.Context, c redis.UniversalClient) error {
		iter := c.Scan(ctx, 0, keyPrefix+"rev:*", 1000).Iterator()
		var keys []string
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
		}
		if err := iter.Err(); err != nil {
			return err
		}
		pipe := c.Pipeline()
		cmds := make([]*redis.StringCmd, len(keys))
		for i, k := range keys {
			cmds[i] = pipe.Get(ctx, k)
		}
		if len(keys) > 0 {
			if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
				return err
			}
		}
		for i, k := range keys {
			ms, err := cmds[i].Int64()
			if err != nil {
				continue // expired meanwhile
			}
			t := time.UnixMilli(ms)
			switch {
			case strings.HasPrefix(k, jtiPrefix):
				jtis[strings.TrimSuffix(strings.TrimPrefix(k, jtiPrefix), "}")] = t
			case strings.HasPrefix(k, subPrefix):
				subjects[strings.TrimSuffix(strings.TrimPrefix(k, subPrefix), "}")] = t
			}
		}
		return nil
	}
	var err error
	if cc, ok := r.c.(*redis.ClusterClient); ok {
		var mu sync.Mutex
		err = cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
			mu.Lock()
			defer mu.Unlock()
			return scan(ctx, c)
		})
	} else {
		err = scan(ctx, r.c)
	}
	if err != nil {
		return err
	}
	// Merge: revocations are never taken back, and one that pub/sub
	// delivered during the scan must not be lost. A jti goes RevocationGrace
	// after its token's exp (Redis's key TTL is the same).
	now := r.o.Now()
	r.mu.Lock()
	for id, until := range r.jtis {
		if _, ok := jtis[id]; !ok && !forgettable(until, now) {
			jtis[id] = until
		}
	}
	for id, before := range r.subjects {
		if cur, ok := subjects[id]; !ok || before.After(cur) {
			subjects[id] = before
		}
	}
	r.jtis, r.subjects = jtis, subjects
	r.mu.Unlock()
	r.synced.Store(r.o.Now().UnixNano())
	return nil
}

// Start fills the mirror and follows changes until ctx ends: pub/sub for
// speed, a full resync every MaxStaleness/3 for correctness. It returns
// after the first attempt; the mirror counts as stale until one succeeds.
func (r *Redis) Start(ctx context.Context) {
	sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	if err := r.resync(sctx); err != nil {
		r.o.Logger.Warn("revocation resync failed", "err", err)
	}
	cancel()
	sub := r.c.Subscribe(ctx, revChannel)
	go func() {
		defer sub.Close()
		ch := sub.Channel()
		for {
			select {
			case <-ctx.Done():
				return
			case m, ok := <-ch:
				if !ok {
					return
				}
				parts := strings.SplitN(m.Payload, "\x00", 3)
				if len(parts) == 3 {
					r.apply(parts[0], parts[1], parts[2])
				}
			}
		}
	}()
	go func() {
		t := time.NewTicker(r.o.MaxStaleness / 3)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				sctx, cancel := context.WithTimeout(ctx, r.o.MaxStaleness/3)
				if err := r.resync(sctx); err != nil {
					r.o.Logger.Warn("revocation resync failed", "err", err)
				}
				cancel()
			}
		}
	}()
}
