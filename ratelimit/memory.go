package ratelimit

import (
	"context"
	"hash/maphash"
	"sort"
	"sync"
	"time"
)

// Memory is the in-memory store: a GCRA Counter and a revocation list for
// one instance. It is safe for concurrent use.
type Memory struct {
	seed   maphash.Seed
	shards [32]struct {
		sync.Mutex
		tat map[string]time.Time
	}
	mu       sync.RWMutex
	jtis     map[string]time.Time // jti -> token exp
	subjects map[string]time.Time // issuer|sub -> revoked before
}

// NewMemory returns an empty memory store.
func NewMemory() *Memory {
	m := &Memory{seed: maphash.MakeSeed(), jtis: map[string]time.Time{}, subjects: map[string]time.Time{}}
	for i := range m.shards {
		m.shards[i].tat = map[string]time.Time{}
	}
	return m
}

const maxMemoryKeysPerShard = 1 << 16

// Take implements Counter. Buckets in one call may sit in different shards:
// they are locked in shard order so a Check is all-or-nothing.
func (m *Memory) Take(_ context.Context, now time.Time, buckets []Bucket) ([]Outcome, error) {
	idx := make([]int, len(buckets))
	for i, b := range buckets {
		idx[i] = int(maphash.String(m.seed, b.Key) % uint64(len(m.shards)))
	}
	order := make([]int, 0, len(buckets))
	for _, i := range idx {
		found := false
		for _, o := range order {
			found = found || o == i
		}
		if !found {
			order = append(order, i)
		}
	}
	sort.Ints(order)
	for _, i := range order {
		m.shards[i].Lock()
	}
	defer func() {
		for _, i := range order {
			m.shards[i].Unlock()
		}
	}()
	outs := make([]Outcome, len(buckets))
	news := make([]time.Time, len(buckets))
	allowed := true
	for i, b := range buckets {
		outs[i], news[i] = gcra(now, m.shards[idx[i]].tat[b.Key], b)
		allowed = allowed && outs[i].Allowed
	}
	if !allowed {
		for i := range outs {
			if outs[i].Allowed {
				outs[i].Remaining++ // not consumed after all
			}
		}
		return outs, nil
	}
	for i, b := range buckets {
		sh := &m.shards[idx[i]]
		if len(sh.tat) >= maxMemoryKeysPerShard {
			for k, t := range sh.tat {
				if t.Before(now) {
					delete(sh.tat, k)
				}
			}
		}
		sh.tat[b.Key] = news[i]
	}
	return outs, nil
}

// Revocation is one entry of a revocation list.
type Revocation struct {
	// Kind is "jti" or "subject".
	Kind string `json:"kind"`
	// ID is the jti, or the subject as "issuer|sub".
	ID string `json:"id"`
	// Until is the token's exp; the jti revocation is kept until
	// RevocationGrace after it, while the token may still be accepted.
	Until time.Time `json:"until,omitzero"`
	// Before revokes a subject's tokens issued before this time.
	Before time.Time `json:"before,omitzero"`
}

// RevocationGrace is how long after a token's exp its jti revocation is
// kept: a token is accepted until exp + its issuer's clock_skew, which is at
// most 5m (identity's limit), and a minute more covers the clocks of the
// replicas and of Redis. Forgetting it sooner would let the token back in.
const RevocationGrace = 6 * time.Minute

// forgettable reports whether a jti revocation whose token expires at until
// may be dropped at now.
func forgettable(until, now time.Time) bool {
	return !until.IsZero() && until.Add(RevocationGrace).Before(now)
}

// Revoked reports whether a token is revoked: its jti is listed, or its
// subject's tokens issued before a time are (a token with no iat counts as
// issued before any such time).
func (m *Memory) Revoked(_ context.Context, subject, jti string, iat time.Time) (bool, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return revoked(m.jtis, m.subjects, subject, jti, iat), nil
}

// revoked is the rule both stores apply to their revocation maps.
func revoked(jtis, subjects map[string]time.Time, subject, jti string, iat time.Time) bool {
	if _, ok := jtis[jti]; ok && jti != "" {
		return true
	}
	before, ok := subjects[subject]
	return ok && (iat.IsZero() || iat.Before(before))
}

// Revoke records a revocation.
func (m *Memory) Revoke(_ context.Context, r Revocation) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch r.Kind {
	case "jti":
		m.jtis[r.ID] = r.Until
	case "subject":
		if prev, ok := m.subjects[r.ID]; !ok || r.Before.After(prev) {
			m.subjects[r.ID] = r.Before
		}
	}
	return nil
}

// List returns the revocations still in force at now (a jti's until
// RevocationGrace after its token's exp), sorted.
func (m *Memory) List(_ context.Context, now time.Time) ([]Revocation, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Revocation
	for id, until := range m.jtis {
		if forgettable(until, now) {
			delete(m.jtis, id)
			continue
		}
		out = append(out, Revocation{Kind: "jti", ID: id, Until: until})
	}
	for id, before := range m.subjects {
		out = append(out, Revocation{Kind: "subject", ID: id, Before: before})
	}
	sortRevocations(out)
	return out, nil
}

func sortRevocations(out []Revocation) {
	sort.Slice(out, func(i, j int) bool {
		if out[i].Kind != out[j].Kind {
			return out[i].Kind < out[j].Kind
		}
		return out[i].ID < out[j].ID
	})
}
