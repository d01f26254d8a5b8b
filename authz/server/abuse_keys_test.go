package server_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/wardenauthz/warden/authz/config"
	"github.com/wardenauthz/warden/internal/abusetest"
	"github.com/wardenauthz/warden/ratelimit"
)

// TestAbuseRateLimitKeyFlood: a flood of new rate-limit keys (the issue's
// 2.1M; rules keyed on header:, claim: or source_ip make them reachable)
// leaves the memory store at store.memory.max_keys, each new key O(1)
// (issue 16: about 1 ms each under a shard lock at 2.1M unexpired keys),
// and a caller who is being limited stays limited: the flood evicts idle
// buckets, not the one it keeps using.
func TestAbuseRateLimitKeyFlood(t *testing.T) {
	maxKeys := abusetest.Count(4096, ratelimit.MemoryKeys)
	e := start(t, func(c *config.Config) {
		c.Store.Memory.MaxKeys = maxKeys
		c.RateLimit.Rules[0].Limit, c.RateLimit.Rules[0].Burst, c.RateLimit.Rules[0].Per = 3, 3, time.Hour
	})
	tok := e.token(t, "alice", "staff")
	for i := range 3 {
		if r := e.reason(t, tok); r != "policy_allow" {
			t.Fatalf("request %d: %s", i+1, r)
		}
	}
	if r := e.reason(t, tok); r != "rate_limited" {
		t.Fatalf("4th request: %s, want rate_limited", r)
	}
	m := e.svc.Store.(*ratelimit.Memory)
	n := abusetest.Count(50_000, 2_100_000)
	every := maxKeys / 4 // alice comes back well before her shard turns over
	ctx, now := context.Background(), fixedNow()
	before := abusetest.Measure()
	for i := range n {
		b := []ratelimit.Bucket{{Key: "per-tenant|" + strconv.Itoa(i), Interval: time.Hour, Tolerance: time.Hour}}
		if outs, err := m.Take(ctx, now, b); err != nil || !outs[0].Allowed {
			t.Fatalf("new key %d: %+v %v", i, outs, err)
		}
		if i%every == every-1 {
			if r := e.reason(t, tok); r != "rate_limited" {
				t.Fatalf("after %d flood keys: alice %s, want rate_limited (her bucket was evicted)", i+1, r)
			}
		}
	}
	after := abusetest.Measure()
	t.Logf("%d new keys, store bound %d: %d held, %d evicted", n, maxKeys, m.Len(), m.Evicted())
	if m.Len() > maxKeys {
		t.Errorf("%d buckets held, store.memory.max_keys %d", m.Len(), maxKeys)
	}
	abusetest.Check(t, "after the key flood", before, after, abusetest.Budget{
		// A full store is about 85 bytes a bucket (45 MiB at the default).
		Heap:       abusetest.Scale[uint64](uint64(16*abusetest.MiB + 96*maxKeys)),
		Goroutines: 20,
		CPU:        abusetest.Scale(time.Duration(n) * 20 * time.Microsecond),
	})
}
