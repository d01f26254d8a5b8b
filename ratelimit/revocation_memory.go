package ratelimit

import (
	"context"
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
