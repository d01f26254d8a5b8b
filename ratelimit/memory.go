package ratelimit

import (
	"context"
	"hash/maphash"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Memory is the in-memory store: a GCRA Counter and a revocation list for
// one instance. It is safe for concurrent use.
//
// Its buckets are bounded (MemoryKeys by default) whatever their expiry:
// each shard is a fixed-capacity LRU, so a new key past the bound evicts
// the shard's least recently used one in O(1). An evicted bucket starts
// afresh if its key comes back: for that key only, a limit fails open by
// at most one burst. Every Take touches all of its buckets, allowed or
// denied, so a caller that keeps sending (the one a limit is holding back)
// keeps its own bucket: flooding other keys evicts idle ones, and to lose
// its own bucket a caller must stay away while MemoryKeys/32 other keys
// land in its shard. Entries hold a 128-bit keyed hash of the bucket key,
// not the key, so long keys (header and claim values) cost no more.
type Memory struct {
	seeds   [2]maphash.Seed
	shards  [memoryShards]lruShard
	evicted atomic.Uint64

	revs    revocationList // revocation_memory.go
	replays replayList     // replay.go
}

const memoryShards = 32

// MemoryKeys is how many rate-limit buckets NewMemory keeps (about 45 MiB
// when full).
const MemoryKeys = 1 << 19

// NewMemory returns an empty memory store that keeps MemoryKeys buckets.
func NewMemory() *Memory { return NewMemorySize(MemoryKeys) }

// NewMemorySize returns an empty memory store that keeps at most maxKeys
// rate-limit buckets (at least one per shard).
func NewMemorySize(maxKeys int) *Memory {
	m := &Memory{seeds: [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()}}
	m.revs.init()
	per := max(1, (maxKeys+memoryShards-1)/memoryShards)
	for i := range m.shards {
		m.shards[i].init(per)
	}
	return m
}

// Evicted is how many buckets were evicted to keep the bound.
func (m *Memory) Evicted() uint64 { return m.evicted.Load() }

// Len is how many buckets the store holds.
func (m *Memory) Len() int {
	n := 0
	for i := range m.shards {
		sh := &m.shards[i]
		sh.Lock()
		n += len(sh.nodes)
		sh.Unlock()
	}
	return n
}

// Take implements Counter. Buckets in one call may sit in different shards:
// they are locked in shard order so a Check is all-or-nothing.
func (m *Memory) Take(_ context.Context, now time.Time, buckets []Bucket) ([]Outcome, error) {
	return m.take(now, buckets, nil), nil
}

// take is Take, its outcomes appended to outs.
func (m *Memory) take(now time.Time, buckets []Bucket, outs []Outcome) []Outcome {
	hs := make([]lruKey, len(buckets))
	idx := make([]int, len(buckets))
	order := make([]int, 0, len(buckets))
	for i, b := range buckets {
		hs[i] = lruKey{maphash.String(m.seeds[0], b.Key), maphash.String(m.seeds[1], b.Key)}
		idx[i] = int(hs[i][0] % memoryShards)
		if !slices.Contains(order, idx[i]) {
			order = append(order, idx[i])
		}
	}
	slices.Sort(order)
	for _, i := range order {
		m.shards[i].Lock()
	}
	defer func() {
		for _, i := range order {
			m.shards[i].Unlock()
		}
	}()
	outs = slices.Grow(outs[:0], len(buckets))[:len(buckets)]
	news := make([]time.Time, len(buckets))
	allowed := true
	for i, b := range buckets {
		outs[i], news[i] = gcra(now, m.shards[idx[i]].get(hs[i]), b)
		allowed = allowed && outs[i].Allowed
	}
	if !allowed {
		for i := range outs {
			if outs[i].Allowed {
				outs[i].Remaining++ // not consumed after all
			}
		}
		return outs
	}
	for i := range buckets {
		if m.shards[idx[i]].set(hs[i], news[i]) {
			m.evicted.Add(1)
		}
	}
	return outs
}

// lruKey is a bucket key's 128-bit keyed hash.
type lruKey [2]uint64

// lruShard is a fixed-capacity LRU of bucket TATs: an index into an arena
// of nodes linked most recent first. Nodes hold no pointers, so a full
// store costs the garbage collector nothing to scan.
type lruShard struct {
	sync.Mutex
	idx        map[lruKey]int32
	nodes      []lruNode // grows up to capacity
	capacity   int
	head, tail int32 // -1 when empty
}

type lruNode struct {
	key        lruKey
	tat        int64 // unix ns
	prev, next int32
}

func (s *lruShard) init(capacity int) {
	s.idx = make(map[lruKey]int32)
	s.capacity = capacity
	s.head, s.tail = -1, -1
}

// get returns k's TAT (zero when absent) and makes k the most recent.
func (s *lruShard) get(k lruKey) time.Time {
	i, ok := s.idx[k]
	if !ok {
		return time.Time{}
	}
	s.toFront(i)
	return time.Unix(0, s.nodes[i].tat)
}

// set stores k's TAT as the most recent, evicting the least recent key
// when the shard is full; it reports an eviction.
func (s *lruShard) set(k lruKey, tat time.Time) (evicted bool) {
	if i, ok := s.idx[k]; ok {
		s.nodes[i].tat = tat.UnixNano()
		s.toFront(i)
		return false
	}
	var i int32
	if len(s.nodes) < s.capacity {
		i = int32(len(s.nodes))
		s.nodes = append(s.nodes, lruNode{prev: -1, next: -1})
	} else {
		i = s.tail
		s.unlink(i)
		delete(s.idx, s.nodes[i].key)
		evicted = true
	}
	s.nodes[i] = lruNode{key: k, tat: tat.UnixNano(), prev: -1, next: -1}
	s.idx[k] = i
	s.pushFront(i)
	return evicted
}

func (s *lruShard) toFront(i int32) {
	if s.head != i {
		s.unlink(i)
		s.pushFront(i)
	}
}

func (s *lruShard) unlink(i int32) {
	n := &s.nodes[i]
	if n.prev >= 0 {
		s.nodes[n.prev].next = n.next
	} else {
		s.head = n.next
	}
	if n.next >= 0 {
		s.nodes[n.next].prev = n.prev
	} else {
		s.tail = n.prev
	}
	n.prev, n.next = -1, -1
}

func (s *lruShard) pushFront(i int32) {
	n := &s.nodes[i]
	n.prev, n.next = -1, s.head
	if s.head >= 0 {
		s.nodes[s.head].prev = i
	}
	s.head = i
	if s.tail < 0 {
		s.tail = i
	}
}
