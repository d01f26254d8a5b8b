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
// own, Redis's local mirror. It is safe for concurrent use.
type revocationList struct {
	mu       sync.RWMutex
	jtis     map[string]time.Time // jti -> token exp
	subjects map[string]time.Time // issuer|sub -> revoked before
}

func (l *revocationList) init() {
	l.jtis, l.subjects = map[string]time.Time{}, map[string]time.Time{}
}

// add records a revocation of kind for id at t (a jti's token exp, a
// subject's cut-off). A subject keeps its latest cut-off: revocations are
// never taken back. Unknown kinds are ignored.
func (l *revocationList) add(kind RevocationKind, id string, t time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch kind {
	case RevokeJTI:
		l.jtis[id] = t
	case RevokeSubject:
		if prev, ok := l.subjects[id]; !ok || t.After(prev) {
			l.subjects[id] = t
		}
	}
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
	return ok && (iat.IsZero() || iat.Before(before))
}

// prune drops the jti revocations forgettable at now.
func (l *revocationList) prune(now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for id, until := range l.jtis {
		if forgettable(until, now) {
			delete(l.jtis, id)
		}
	}
}

// list returns the revocations in force at now, sorted by kind and id.
func (l *revocationList) list(now time.Time) []Revocation {
	l.mu.RLock()
	defer l.mu.RUnlock()
	var out []Revocation
	for id, until := range l.jtis {
		if !forgettable(until, now) {
			out = append(out, Revocation{Kind: RevokeJTI, ID: id, Until: until})
		}
	}
	for id, before := range l.subjects {
		out = append(out, Revocation{Kind: RevokeSubject, ID: id, Before: before})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Kind != out[j].Kind {
			return out[i].Kind < out[j].Kind
		}
		return out[i].ID < out[j].ID
	})
	return out
}

// merge replaces the list with jtis and subjects (a fresh read of the
// shared store), keeping what the list holds beyond them: revocations are
// never taken back, and one added meanwhile must not be lost. A jti is
// kept only while not forgettable at now.
func (l *revocationList) merge(jtis, subjects map[string]time.Time, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for id, until := range l.jtis {
		if _, ok := jtis[id]; !ok && !forgettable(until, now) {
			jtis[id] = until
		}
	}
	for id, before := range l.subjects {
		if cur, ok := subjects[id]; !ok || before.After(cur) {
			subjects[id] = before
		}
	}
	l.jtis, l.subjects = jtis, subjects
}
