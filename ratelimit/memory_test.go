package ratelimit_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/wardenauthz/warden/ratelimit"
)

// hourly is one request an hour, no burst: a bucket stays unexpired for
// the whole test.
func hourly(key string) []ratelimit.Bucket {
	return []ratelimit.Bucket{{Key: key, Interval: time.Hour, Tolerance: time.Hour}}
}

// TestMemoryBoundedWhileUnexpired: a flood of new keys whose buckets have
// not expired keeps the store at its bound (issue 16: the old bound held
// only for expired keys), and the key a caller keeps using is never the
// one evicted: a limited caller cannot flood other keys to reset its own.
func TestMemoryBoundedWhileUnexpired(t *testing.T) {
	const bound = 32 * 8
	m := ratelimit.NewMemorySize(bound)
	ctx, now := context.Background(), time.Unix(1_700_000_000, 0)
	take := func(key string) bool {
		outs, err := m.Take(ctx, now, hourly(key))
		if err != nil {
			t.Fatal(err)
		}
		return outs[0].Allowed
	}
	if !take("attacker") {
		t.Fatal("first request denied")
	}
	for i := range 20 * bound {
		if !take(fmt.Sprintf("flood-%d", i)) {
			t.Fatalf("new key %d denied", i)
		}
		if take("attacker") {
			t.Fatalf("after %d flood keys the limited key was allowed again: its bucket was evicted", i+1)
		}
	}
	if n := m.Len(); n > bound {
		t.Errorf("%d buckets held, bound %d", n, bound)
	}
	if got, want := m.Evicted(), uint64(20*bound+1-m.Len()); got != want {
		t.Errorf("evicted %d, want %d", got, want)
	}
}

// TestMemoryEvictionRestartsIdleKey documents what eviction means: a key
// idle while its shard filled with others starts a fresh window (fail open
// by one burst, for that key only).
func TestMemoryEvictionRestartsIdleKey(t *testing.T) {
	m := ratelimit.NewMemorySize(32)
	ctx, now := context.Background(), time.Unix(1_700_000_000, 0)
	if outs, _ := m.Take(ctx, now, hourly("idle")); !outs[0].Allowed {
		t.Fatal("first request denied")
	}
	if outs, _ := m.Take(ctx, now, hourly("idle")); outs[0].Allowed {
		t.Fatal("second request allowed")
	}
	for i := range 32 * 64 { // every shard overflows many times
		_, _ = m.Take(ctx, now, hourly(fmt.Sprintf("other-%d", i)))
	}
	if outs, _ := m.Take(ctx, now, hourly("idle")); !outs[0].Allowed {
		t.Error("idle key survived a flood of 64 times the bound: the store is not bounded by recency")
	}
}

// BenchmarkMemoryNewKey: the cost of a new key in a full store of
// MemoryKeys unexpired buckets (the old store scanned its shard, about 1ms
// at 2.1M keys).
func BenchmarkMemoryNewKey(b *testing.B) {
	for _, size := range []int{1 << 10, ratelimit.MemoryKeys} {
		b.Run(fmt.Sprint(size), func(b *testing.B) {
			m := ratelimit.NewMemorySize(size)
			ctx, now := context.Background(), time.Unix(1_700_000_000, 0)
			for i := range size {
				_, _ = m.Take(ctx, now, hourly(fmt.Sprintf("fill-%d", i)))
			}
			keys := make([]string, 4096)
			for i := range keys {
				keys[i] = fmt.Sprintf("new-%d", i)
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				keys[i%len(keys)] = keys[i%len(keys)][:4] + fmt.Sprint(i)
				_, _ = m.Take(ctx, now, hourly(keys[i%len(keys)]))
				i++
			}
		})
	}
}
