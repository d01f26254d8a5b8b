package ratelimit

import (
	"context"
	"time"
)

// Store is the shared state a Warden instance uses: rate-limit buckets,
// revocations (revocation.go) and DPoP proofs seen (replay.go).
type Store interface {
	Counter
	Revocations
	Replays
}

var (
	_ Store = (*Memory)(nil)
	_ Store = (*Redis)(nil)
)

// Fallback is a Counter that uses Local when Primary fails: a per-instance
// limit instead of none while the shared store is down.
type Fallback struct {
	Primary, Local Counter
	// OnError is told of every Primary failure.
	OnError func(error)
}

// Take implements Counter.
func (f *Fallback) Take(ctx context.Context, now time.Time, buckets []Bucket) ([]Outcome, error) {
	outs, err := f.Primary.Take(ctx, now, buckets)
	if err == nil {
		return outs, nil
	}
	if f.OnError != nil {
		f.OnError(err)
	}
	return f.Local.Take(ctx, now, buckets)
}
