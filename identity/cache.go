package identity

import (
	"crypto/sha256"
	"encoding/binary"
	"sync"
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

// hashToken hashes the token without copying it (the bytes are only read).
func hashToken(raw string) [32]byte {
	return sha256.Sum256(unsafe.Slice(unsafe.StringData(raw), len(raw)))
}
