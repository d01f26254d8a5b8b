package ratelimit

import (
	"context"
	"time"

	"github.com/redis/go-redis/v9"
)

// replayPrefix names DPoP replay keys: one per proof, expiring when the
// proof would be too old anyway.
const replayPrefix = keyPrefix + "dpop:{"

// Seen records a DPoP proof's key in Redis (SET NX with its expiry: one
// round trip, bounded by store.redis.timeout) and reports whether any
// replica recorded it already. An error (Redis down or slow) refuses the
// proof: it cannot be judged.
func (r *Redis) Seen(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	if key == "" || len(key) > maxReplayKeyBytes {
		return false, errReplayKey
	}
	if ttl < time.Millisecond {
		ttl = time.Millisecond
	}
	ctx, cancel := context.WithTimeout(ctx, r.o.Timeout)
	defer cancel()
	var set bool
	err := r.call(ctx, func() (err error) {
		set, err = r.c.SetNX(ctx, replayPrefix+key+"}", 1, ttl).Result()
		return err
	})
	if err == redis.Nil {
		err = nil
	}
	if err != nil {
		return false, err
	}
	return !set, nil
}
