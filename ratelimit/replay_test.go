package ratelimit_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wardenauthz/warden/ratelimit"
	"github.com/wardenauthz/warden/ratelimit/redistest"
)

// TestReplayConformance: both stores remember a DPoP proof key for its ttl,
// answer "seen" to the second and every later Seen, concurrently exactly
// once "new", and refuse keys that are empty or over the bound.
func TestReplayConformance(t *testing.T) {
	for name, mk := range map[string]func(t *testing.T) ratelimit.Replays{
		"memory": func(*testing.T) ratelimit.Replays { return ratelimit.NewMemory() },
		"redis":  func(t *testing.T) ratelimit.Replays { return newRedis(t, redistest.Start(t), 5*time.Second) },
	} {
		t.Run(name, func(t *testing.T) {
			s := mk(t)
			ctx := context.Background()
			for i, want := range []bool{false, true, true} {
				seen, err := s.Seen(ctx, "k1", time.Minute)
				if err != nil || seen != want {
					t.Fatalf("call %d: %v %v, want %v", i, seen, err, want)
				}
			}
			if seen, err := s.Seen(ctx, "k2", time.Minute); seen || err != nil {
				t.Fatalf("another key: %v %v", seen, err)
			}
			var news atomic.Int32
			var wg sync.WaitGroup
			for range 16 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if seen, err := s.Seen(ctx, "race", time.Minute); err == nil && !seen {
						news.Add(1)
					}
				}()
			}
			wg.Wait()
			if n := news.Load(); n != 1 {
				t.Fatalf("16 concurrent first uses: %d accepted, want 1", n)
			}
			for _, k := range []string{"", strings.Repeat("k", 129)} {
				if _, err := s.Seen(ctx, k, time.Minute); err == nil {
					t.Errorf("key of %d bytes accepted", len(k))
				}
			}
		})
	}
}

// TestReplayAcrossRedisReplicas: a proof one replica accepted is seen by
// another sharing the redis-server; a paused Redis makes Seen fail within
// its deadline (the proof refused, never accepted unremembered).
func TestReplayAcrossRedisReplicas(t *testing.T) {
	srv := redistest.Start(t)
	a, b := newRedis(t, srv, 5*time.Second), newRedis(t, srv, 5*time.Second)
	ctx := context.Background()
	if seen, err := a.Seen(ctx, "proof", time.Minute); seen || err != nil {
		t.Fatalf("first use on a: %v %v", seen, err)
	}
	if seen, err := b.Seen(ctx, "proof", time.Minute); !seen || err != nil {
		t.Fatalf("replay on b: %v %v", seen, err)
	}
	srv.Pause(true)
	defer srv.Pause(false)
	if _, err := a.Seen(ctx, "other", time.Minute); err == nil {
		t.Fatal("paused Redis: want an error")
	}
}

// TestMemoryReplayBounded: the memory cache holds at most MaxReplayKeys
// live keys; past that Seen fails rather than forget a live proof.
func TestMemoryReplayBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("fills a million keys")
	}
	m := ratelimit.NewMemory()
	ctx := context.Background()
	for i := range ratelimit.MaxReplayKeys {
		if _, err := m.Seen(ctx, fmt.Sprint(i), time.Hour); err != nil {
			t.Fatalf("key %d: %v", i, err)
		}
	}
	if _, err := m.Seen(ctx, "one more", time.Hour); !errors.Is(err, ratelimit.ErrReplayFull) {
		t.Fatalf("over the bound: %v", err)
	}
	if seen, err := m.Seen(ctx, "0", time.Hour); !seen || err != nil {
		t.Fatalf("a live key after the bound: %v %v", seen, err)
	}
}
