package ratelimit

import (
	"context"
	"github.com/wardenauthz/warden/internal/fielderr"
	"sort"
	"sync"
	"time"
)

// Revocations is the revocation half of a Store: tokens revoked by jti, or
// every token a subject got before a time. Memory and Redis implement it
// (revocation_memory.go, revocation_redis.go).
type Revocations interface {
	Revoke(ctx context.Context, r Revocation) error
	Revoked(ctx context.Context, subject, jti string, iat time.Time) (bool, error)
	List(ctx context.Context, now time.Time) ([]Revocation, error)
	// Unrevoke takes back the revocation of kind for id (as List lists
	// it); one not held is not an error.
	Unrevoke(ctx context.Context, kind RevocationKind, id string) error
}

// RevocationConfig is the revocation section of warden.yaml.
type RevocationConfig struct {
	FailOpen     bool          `yaml:"fail_open"`
	MaxStaleness time.Duration `yaml:"max_staleness"`
}

// SetDefaults fills in unset fields.
func (c *RevocationConfig) SetDefaults() {
	if c.MaxStaleness == 0 {
		c.MaxStaleness = 5 * time.Second
	}
}

// Validate reports every problem, as field errors (fielderr) with key
// paths relative to this section.
func (c *RevocationConfig) Validate() error {
	if c.MaxStaleness < 0 {
		return fielderr.Errorf("max_staleness", "must not be negative")
	}
	return nil
}

// RevocationKind says what a revocation names.
type RevocationKind string

// The kinds of revocation.
const (
	// RevokeJTI revokes one token by its jti.
	RevokeJTI RevocationKind = "jti"
	// RevokeSubject revokes every token of a subject (issuer|sub) issued
	// before a time.
	RevokeSubject RevocationKind = "subject"
)

// Revocation is one entry of a revocation list.
type Revocation struct {
	// Kind is RevokeJTI or RevokeSubject.
	Kind RevocationKind `json:"kind"`
	// ID is the jti, or the subject as "issuer|sub".
	ID string `json:"id"`
	// Until is the token's exp; the jti revocation is kept until
	// RevocationGrace after it, while the token may still be accepted.
	Until time.Time `json:"until,omitzero"`
	// Before revokes a subject's tokens issued before this time.
	Before time.Time `json:"before,omitzero"`
}

// revokedAt is the time the revocation holds: a jti's Until, a subject's
// Before.
func (r Revocation) revokedAt() time.Time {
	if r.Kind == RevokeSubject {
		return r.Before
	}
	return r.Until
}

// RevocationTTL is how long a jti revocation whose token's expiry is not
// given is kept: Until defaults to now + RevocationTTL.
const RevocationTTL = 7 * 24 * time.Hour

// RevocationGrace is how long after a token's exp its jti revocation is
// kept: a token is accepted until exp + its issuer's clock_skew, which is at
// most 5m (identity's limit), and a minute more covers the clocks of the
// replicas and of Redis. Forgetting it sooner would let the token back in.
const RevocationGrace = 6 * time.Minute

// keepUntil is when a jti revocation whose token expires at until may be
// forgotten (Redis's key TTL ends then too).
func keepUntil(until time.Time) time.Time { return until.Add(RevocationGrace) }

// forgettable reports whether a jti revocation whose token expires at until
// may be dropped at now.
func forgettable(until, now time.Time) bool {
	return !until.IsZero() && keepUntil(until).Before(now)
}

// revocationList is the revocation state a store holds in memory: Memory's
// own, Redis's local mirror. It is safe for concurrent use. Every add takes
// a sequence number, so that a resync (replace) keeps what was added while
// it read the shared store.
type revocationList struct {
	mu       sync.RWMutex
	seq      uint64
	jtis     map[string]revEntry // jti -> token exp
	subjects map[string]revEntry // issuer|sub -> revoked before
}

// revEntry is one revocation's time and the sequence number of its last add.
type revEntry struct {
	t   time.Time
	seq uint64
}

func (l *revocationList) init() {
	l.jtis, l.subjects = map[string]revEntry{}, map[string]revEntry{}
}

// add records a revocation of kind for id at t (a jti's token exp, a
// subject's cut-off). A subject keeps its latest cut-off. Unknown kinds are
// ignored.
func (l *revocationList) add(kind RevocationKind, id string, t time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.seq++
	switch kind {
	case RevokeJTI:
		l.jtis[id] = revEntry{t, l.seq}
	case RevokeSubject:
		if prev, ok := l.subjects[id]; ok && !t.After(prev.t) {
			t = prev.t
		}
		l.subjects[id] = revEntry{t, l.seq}
	}
}

// remove drops the revocation of kind for id (an unrevoke).
func (l *revocationList) remove(kind RevocationKind, id string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch kind {
	case RevokeJTI:
		delete(l.jtis, id)
	case RevokeSubject:
		delete(l.subjects, id)
	}
}

// mark is the sequence number of the last add: a resync that starts reading
// the shared store after mark passes it to replace.
func (l *revocationList) mark() uint64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.seq
}

// revoked reports whether a token is revoked: its jti is listed, or its
// subject's tokens issued before a time are (a token with no iat counts as
// issued before any such time).
func (l *revocationList) revoked(subject, jti string, iat time.Time) bool {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if _, ok := l.jtis[jti]; ok && jti != "" {
		return true
	}
	before, ok := l.subjects[subject]
	return ok && (iat.IsZero() || iat.Before(before.t))
}

// prune drops the jti revocations forgettable at now.
func (l *revocationList) prune(now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for id, e := range l.jtis {
		if forgettable(e.t, now) {
			delete(l.jtis, id)
		}
	}
}

// list returns the revocations in force at now, sorted by kind and id.
func (l *revocationList) list(now time.Time) []Revocation {
	l.mu.RLock()
	defer l.mu.RUnlock()
	var out []Revocation
	for id, e := range l.jtis {
		if !forgettable(e.t, now) {
			out = append(out, Revocation{Kind: RevokeJTI, ID: id, Until: e.t})
		}
	}
	for id, e := range l.subjects {
		out = append(out, Revocation{Kind: RevokeSubject, ID: id, Before: e.t})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Kind != out[j].Kind {
			return out[i].Kind < out[j].Kind
		}
		return out[i].ID < out[j].ID
	})
	return out
}

// revKey names a revocation: its kind and id.
type revKey struct {
	kind RevocationKind
	id   string
}

// merge adds jtis and subjects (a fresh read of the shared store, begun when
// mark returned start) to the list, keeping what the list holds beyond them
// (a store that lost its data must not take revocations back), except those
// gone names (unrevoked there: tombstones) that the read did not find and
// that were not added after start. So a revoke is never lost: what the read
// found stays, and so does what pub/sub delivered during it; an unrevoke
// racing the read may come back until the next resync (fail closed). A
// subject keeps its latest cut-off; a jti is kept only while not
// forgettable at now.
func (l *revocationList) merge(jtis, subjects map[string]time.Time, gone map[revKey]bool, start uint64, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	nj, ns := make(map[string]revEntry, len(jtis)), make(map[string]revEntry, len(subjects))
	for id, t := range jtis {
		nj[id] = revEntry{t, 0}
	}
	for id, t := range subjects {
		ns[id] = revEntry{t, 0}
	}
	for id, e := range l.jtis {
		if _, ok := nj[id]; ok || forgettable(e.t, now) || (gone[revKey{RevokeJTI, id}] && e.seq <= start) {
			continue
		}
		nj[id] = e
	}
	for id, e := range l.subjects {
		cur, ok := ns[id]
		if !ok && gone[revKey{RevokeSubject, id}] && e.seq <= start {
			continue
		}
		if !ok || e.t.After(cur.t) {
			ns[id] = e
		}
	}
	l.jtis, l.subjects = nj, ns
}
