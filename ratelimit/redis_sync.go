package ratelimit

import "context"

// Sync fills the revocation mirror once from Redis, without following
// changes (Start does that): for a one-shot evaluation, such as `warden
// check --config`, that must not answer 503 for a mirror never filled. An
// error says why Redis could not be read; the mirror then stays stale, and
// Revoked keeps failing closed.
func (r *Redis) Sync(ctx context.Context) error { return r.resync(ctx) }
