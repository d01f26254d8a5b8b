package identity

import (
	"crypto/sha256"
	"encoding/binary"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

const cacheShards = 64

// tokenCache holds verified tokens keyed by the SHA-256 of the raw token,
// each until its exp (+ skew). It is bounded: a full shard first drops its
// expired entries, then arbitrary ones. Revocation is never keyed on it.
type tokenCache struct {
	perShard int
	shards   [cacheShards]struct {
		sync.RWMutex
		m map[[32]byte]cacheEntry
	}
}

type cacheEntry struct {
	id    *verified
	until time.Time
}

// verified is a verified token with its derived principal.
type verified struct {
	token  *Token
	kind   Kind
	id     string
	groups []string
	issuer *issuer
}

func newTokenCache(size int) *tokenCache {
	c := &tokenCache{perShard: max(size/cacheShards, 1)}
	for i := range c.shards {
		c.shards[i].m = make(map[[32]byte]cacheEntry)
	}
	return c
}

func (c *tokenCache) get(key [32]byte, now time.Time) *verified {
	s := &c.shards[binary.LittleEndian.Uint64(key[:8])%cacheShards]
	s.RLock()
	e, ok := s.m[key]
	s.RUnlock()
	if !ok || !now.Before(e.until) {
		return nil
	}
	return e.id
}

func (c *tokenCache) put(key [32]byte, v *verified, until, now time.Time) {
	s := &c.shards[binary.LittleEndian.Uint64(key[:8])%cacheShards]
	s.Lock()
	defer s.Unlock()
	if len(s.m) >= c.perShard {
		for k, e := range s.m {
			if !now.Before(e.until) {
				delete(s.m, k)
			}
		}
		for k := range s.m {
			if len(s.m) < c.perShard {
				break
			}
			delete(s.m, k)
		}
	}
	s.m[key] = cacheEntry{id: v, until: until}
}

// expiredSlots is the number of tokens the expired cache holds at most.
const expiredSlots = 1024

// expiredCache remembers tokens refused as expired (ErrExpired: past exp +
// skew), keyed like tokenCache, so that a client retrying one skips its
// parse. It is direct-mapped: a fixed array of slots, each holding the
// latest expired token whose hash falls on it, so a flood of distinct
// expired tokens only overwrites slots. Only expiry is kept: it is the one
// refusal that time moving forward never undoes, and every check before it
// is fixed by the token's bytes and the configuration. A hit still compares
// the clock with the token's exp + skew, so a clock set back answers as
// the full path would (see Authenticator.verifyToken).
type expiredCache struct {
	slots [expiredSlots]atomic.Pointer[expiredEntry]
}

type expiredEntry struct {
	key   [32]byte
	since time.Time // exp + skew
}

func (c *expiredCache) slot(key [32]byte) *atomic.Pointer[expiredEntry] {
	return &c.slots[binary.LittleEndian.Uint64(key[8:16])%expiredSlots]
}

// expired reports whether key is a token refused as expired whose exp +
// skew is not after now. A nil cache holds nothing.
func (c *expiredCache) expired(key [32]byte, now time.Time) bool {
	if c == nil {
		return false
	}
	e := c.slot(key).Load()
	return e != nil && e.key == key && !now.Before(e.since)
}

// put remembers key as expired from since (its exp + skew) on.
func (c *expiredCache) put(key [32]byte, since time.Time) {
	if c == nil {
		return
	}
	c.slot(key).Store(&expiredEntry{key: key, since: since})
}

// hashToken hashes the token without copying it (the bytes are only read).
func hashToken(raw string) [32]byte {
	return sha256.Sum256(unsafe.Slice(unsafe.StringData(raw), len(raw)))
}
