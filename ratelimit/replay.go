package ratelimit

import (
	"container/heap"
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
// are kept, by its own clock (time.Now unless set), with a min-heap of the
// same keys by expiry so that expired keys are dropped in O(log n) each and
// a full list answers at once (never a scan of a million keys under the
// lock). The zero value is empty.
type replayList struct {
	mu   sync.Mutex
	keys map[string]time.Time
	exp  replayHeap
	max  int
	now  func() time.Time
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
	if l.keys == nil {
		l.keys = map[string]time.Time{}
	}
	// Every expired key goes first (each was pushed once, by the call that
	// recorded it), so the heap holds exactly the map's keys.
	for len(l.exp) > 0 && !now.Before(l.exp[0].until) {
		e := heap.Pop(&l.exp).(replayEntry)
		delete(l.keys, e.key)
	}
	if _, ok := l.keys[key]; ok {
		return true, nil
	}
	limit := l.max
	if limit <= 0 {
		limit = MaxReplayKeys
	}
	if len(l.keys) >= limit {
		return false, ErrReplayFull
	}
	until := now.Add(ttl)
	l.keys[key] = until
	heap.Push(&l.exp, replayEntry{key, until})
	return false, nil
}

type replayEntry struct {
	key   string
	until time.Time
}

// replayHeap orders replay keys by expiry (container/heap).
type replayHeap []replayEntry

func (h replayHeap) Len() int           { return len(h) }
func (h replayHeap) Less(i, j int) bool { return h[i].until.Before(h[j].until) }
func (h replayHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *replayHeap) Push(x any)        { *h = append(*h, x.(replayEntry)) }
func (h *replayHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}
