package ratelimit

import (
	"context"
	"time"
)

// Seen records a DPoP proof's key for ttl and reports whether it was
// recorded already (and not yet expired).
func (m *Memory) Seen(_ context.Context, key string, ttl time.Duration) (bool, error) {
	return m.replays.seen(key, ttl)
}
