package ratelimit

import (
	"testing"
	"time"
)

// TestReplayListExpires: a key is forgotten once its ttl has passed (by the
// list's clock), and expired keys make room under the bound.
func TestReplayListExpires(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	l := &replayList{max: 2, now: func() time.Time { return now }}
	for _, k := range []string{"a", "b"} {
		if seen, err := l.seen(k, time.Minute); seen || err != nil {
			t.Fatal(k, seen, err)
		}
	}
	if _, err := l.seen("c", time.Minute); err != ErrReplayFull {
		t.Fatalf("full: %v", err)
	}
	now = now.Add(time.Minute)
	if seen, err := l.seen("a", time.Minute); seen || err != nil {
		t.Fatalf("expired key: %v %v", seen, err)
	}
	if seen, err := l.seen("c", time.Minute); seen || err != nil {
		t.Fatalf("room after expiry: %v %v", seen, err)
	}
	if seen, _ := l.seen("a", time.Minute); !seen {
		t.Fatal("a re-recorded key is seen")
	}
}
