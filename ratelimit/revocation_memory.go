package ratelimit

import (
	"context"
	"fmt"
	"time"
)

// Revoked reports whether a token is revoked: its jti is listed, or its
// subject's tokens issued before a time are (a token with no iat counts as
// issued before any such time).
func (m *Memory) Revoked(_ context.Context, subject, jti string, iat time.Time) (bool, error) {
	return m.revs.revoked(subject, jti, iat), nil
}

// Revoke records a revocation.
func (m *Memory) Revoke(_ context.Context, r Revocation) error {
	m.revs.add(r.Kind, r.ID, r.revokedAt())
	return nil
}

// List returns the revocations still in force at now (a jti's until
// RevocationGrace after its token's exp), sorted; it forgets the others.
func (m *Memory) List(_ context.Context, now time.Time) ([]Revocation, error) {
	m.revs.prune(now)
	return m.revs.list(now), nil
}

// Unrevoke takes back the revocation of kind for id.
func (m *Memory) Unrevoke(_ context.Context, kind RevocationKind, id string) error {
	if kind != RevokeJTI && kind != RevokeSubject {
		return fmt.Errorf("revocation kind %q", kind)
	}
	m.revs.remove(kind, id)
	return nil
}
