package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Revocation keys and channel: one key per revocation, hash-tagged, its
// value the time in unix ms (a jti's token exp, a subject's cut-off).
const (
	jtiPrefix  = keyPrefix + "rev:jti:{"
	subPrefix  = keyPrefix + "rev:sub:{"
	revChannel = keyPrefix + "revocations"
	// An unrevoke leaves a tombstone beside the key it deleted (same hash
	// tag, so one transaction writes both), for UnrevokeTombstoneTTL: a
	// replica that missed the removal on pub/sub drops the revocation at its
	// next resync, while a key merely missing from Redis (data lost in a
	// restart) never drops one.
	delJTIPrefix = keyPrefix + "rev:del:jti:{"
	delSubPrefix = keyPrefix + "rev:del:sub:{"
)

// UnrevokeTombstoneTTL is how long an unrevoke's tombstone stays in Redis:
// a replica that cannot resync for longer keeps the revocation (fail
// closed) until it restarts.
const UnrevokeTombstoneTTL = 24 * time.Hour

// Revoke persists a revocation and tells every replica. A jti without
// Until is kept RevocationTTL from now; one whose token has expired for
// longer than RevocationGrace is not written.
func (r *Redis) Revoke(ctx context.Context, rv Revocation) error {
	var key, val string
	var ttl time.Duration
	switch rv.Kind {
	case RevokeJTI:
		now := r.o.Now()
		until := rv.Until
		if until.IsZero() {
			until = now.Add(RevocationTTL)
		}
		key, val, ttl = jtiPrefix+rv.ID+"}", strconv.FormatInt(until.UnixMilli(), 10), keepUntil(until).Sub(now)
		if ttl <= 0 {
			return nil // already expired: nothing to revoke
		}
	case RevokeSubject:
		// A subject keeps its latest cut-off: an earlier one must not
		// shorten a revocation in force.
		key = subPrefix + rv.ID + "}"
		v, err := setMax.Run(ctx, r.c, []string{key, delSubPrefix + rv.ID + "}"}, rv.Before.UnixMilli()).Text()
		if err != nil {
			return err
		}
		val = v
	default:
		return fmt.Errorf("revocation kind %q", rv.Kind)
	}
	if rv.Kind == RevokeJTI {
		if _, err := r.c.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Set(ctx, key, val, ttl)
			p.Del(ctx, delJTIPrefix+rv.ID+"}") // a revoke after an unrevoke wins
			return nil
		}); err != nil {
			return err
		}
	}
	r.apply(string(rv.Kind), rv.ID, val)
	return r.c.Publish(ctx, revChannel, string(rv.Kind)+"\x00"+rv.ID+"\x00"+val).Err()
}

// setMax sets KEYS[1] to ARGV[1] unless it holds a larger number, deletes
// KEYS[2] (an unrevoke's tombstone), and returns what KEYS[1] then holds.
var setMax = redis.NewScript(`
redis.call('DEL', KEYS[2])
local raw = redis.call('GET', KEYS[1])
local cur = raw and tonumber(raw)
if cur and cur >= tonumber(ARGV[1]) then return raw end
redis.call('SET', KEYS[1], ARGV[1])
return ARGV[1]
`)

// Unrevoke deletes a revocation, leaving a tombstone, and tells every
// replica (a message of two fields, kind and id, which replicas without
// Unrevoke ignore; a replica that misses it drops the revocation at its next
// resync, by the tombstone).
func (r *Redis) Unrevoke(ctx context.Context, kind RevocationKind, id string) error {
	if strings.ContainsRune(id, 0) {
		return fmt.Errorf("revocation id %q: NUL", id)
	}
	var key, tomb string
	switch kind {
	case RevokeJTI:
		key, tomb = jtiPrefix+id+"}", delJTIPrefix+id+"}"
	case RevokeSubject:
		key, tomb = subPrefix+id+"}", delSubPrefix+id+"}"
	default:
		return fmt.Errorf("revocation kind %q", kind)
	}
	if _, err := r.c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Del(ctx, key)
		p.Set(ctx, tomb, strconv.FormatInt(r.o.Now().UnixMilli(), 10), UnrevokeTombstoneTTL)
		return nil
	}); err != nil {
		return err
	}
	r.revs.remove(kind, id)
	return r.c.Publish(ctx, revChannel, string(kind)+"\x00"+id).Err()
}

// apply adds a revocation, its time in unix ms, to the mirror.
func (r *Redis) apply(kind, id, ms string) {
	n, err := strconv.ParseInt(ms, 10, 64)
	if err != nil {
		return
	}
	r.revs.add(RevocationKind(kind), id, time.UnixMilli(n))
}

// ErrStale means the local revocation view is older than MaxStaleness.
var ErrStale = errors.New("revocation view is stale (Redis unreachable)")

// Revoked answers from the local mirror; it fails when the mirror is stale.
func (r *Redis) Revoked(_ context.Context, subject, jti string, iat time.Time) (bool, error) {
	if age := r.o.Now().Sub(time.Unix(0, r.synced.Load())); age > r.o.MaxStaleness {
		return false, fmt.Errorf("%w: last sync %s ago", ErrStale, age.Round(time.Millisecond))
	}
	return r.revs.revoked(subject, jti, iat), nil
}

// List reads the revocations in force from Redis.
func (r *Redis) List(ctx context.Context, now time.Time) ([]Revocation, error) {
	if err := r.resync(ctx); err != nil {
		return nil, err
	}
	return r.revs.list(now), nil
}

// Sync fills the revocation mirror once from Redis, without following
// changes (Start does that): for a one-shot evaluation, such as `warden
// check --config`, that must not answer 503 for a mirror never filled. An
// error says why Redis could not be read; the mirror then stays stale, and
// Revoked keeps failing closed.
func (r *Redis) Sync(ctx context.Context) error { return r.resync(ctx) }

// resync merges what Redis holds into the mirror, and drops what Redis's
// tombstones say was unrevoked, unless added since the scan began
// (revocationList.merge).
func (r *Redis) resync(ctx context.Context) error {
	start := r.revs.mark()
	jtis, subjects := map[string]time.Time{}, map[string]time.Time{}
	gone := map[revKey]bool{}
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
			v, err := cmds[i].Result()
			switch {
			case errors.Is(err, redis.Nil):
				continue // expired or unrevoked meanwhile
			case err != nil:
				return err
			}
			ms, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				continue // not a revocation Warden wrote
			}
			t := time.UnixMilli(ms)
			switch {
			case strings.HasPrefix(k, jtiPrefix):
				jtis[strings.TrimSuffix(strings.TrimPrefix(k, jtiPrefix), "}")] = t
			case strings.HasPrefix(k, subPrefix):
				subjects[strings.TrimSuffix(strings.TrimPrefix(k, subPrefix), "}")] = t
			case strings.HasPrefix(k, delJTIPrefix):
				gone[revKey{RevokeJTI, strings.TrimSuffix(strings.TrimPrefix(k, delJTIPrefix), "}")}] = true
			case strings.HasPrefix(k, delSubPrefix):
				gone[revKey{RevokeSubject, strings.TrimSuffix(strings.TrimPrefix(k, delSubPrefix), "}")}] = true
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
	if r.afterScan != nil {
		r.afterScan()
	}
	// Merge: what Redis lost (a restart without persistence) is kept; an
	// unrevoke pub/sub missed goes by its tombstone; one revoked during the
	// scan is kept. A jti goes RevocationGrace after its token's exp (Redis's
	// key TTL is the same).
	r.revs.merge(jtis, subjects, gone, start, r.o.Now())
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
				switch parts := strings.SplitN(m.Payload, "\x00", 3); len(parts) {
				case 3:
					r.apply(parts[0], parts[1], parts[2])
				case 2:
					r.revs.remove(RevocationKind(parts[0]), parts[1])
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
