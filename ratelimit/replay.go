package ratelimit

import (
	"context"
	"errors"
	"sync"
	"time"
)

// Replays is the DPoP replay cache of a Store (RFC 9449 §11.1): Seen
// records key for ttl and reports whether it was recorded already. In Redis every replica sees what any recorded; a Check pays one
// round trip for it (SET NX; the revocation check beside it answers from
// the local mirror and costs none). Memory and Redis implement it
// (replay_memory.go, replay_redis.go); it satisfies identity.ReplayCache.
type Replays interface {
	Seen(ctx context.Context, key string, ttl time.Duration) (bool, error)
}

var (
	_ Replays = (*Memory)(nil)
	_ Replays = (*Redis)(nil)
)

// MaxReplayKeys bounds the proofs a memory store remembers; past it, with
// none expired, Seen fails (the proof is refused 503, never let through
// unremembered).
const MaxReplayKeys = 1 << 20

// maxReplayKeyBytes bounds a replay key (identity hashes its keys to 43).
const maxReplayKeyBytes = 128

// ErrReplayFull: the memory replay cache holds MaxReplayKeys live proofs.
var ErrReplayFull = errors.New("replay cache full")

// errReplayKey: a key over maxReplayKeyBytes or empty.
var errReplayKey = errors.New("replay key empty or too long")

// replayList is the memory store's replay cache: keys and until when they
// are kept, by its own clock (time.Now unless set). The zero value is
// empty.
type replayList struct {
	mu    sync.Mutex
	keys  map[string]time.Time
	max   int
	now   func() time.Time
	swept time.Time // the last full sweep of expired keys
}

func (l *replayList) seen(key string, ttl time.Duration) (bool, error) {
	if key == "" || len(key) > maxReplayKeyBytes {
		return false, errReplayKey
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	if l.now != nil {
		now = l.now()
	}
	until := now.Add(ttl)
	if l.keys == nil {
		l.keys = map[string]time.Time{}
	}
	if u, ok := l.keys[key]; ok && now.Before(u) {
		return true, nil
	}
	limit := l.max
	if limit <= 0 {
		limit = MaxReplayKeys
	}
	if len(l.keys) >= limit || now.Sub(l.swept) > time.Minute {
		for k, u := range l.keys {
			if !now.Before(u) {
				delete(l.keys, k)
			}
		}
		l.swept = now
		if len(l.keys) >= limit {
			return false, ErrReplayFull
		}
	}
	l.keys[key] = until
	return false, nil
}
