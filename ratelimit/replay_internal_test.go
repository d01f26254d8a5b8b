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

// TestReplayListFullAnswersAtOnce: a full list of live keys refuses a new
// one without walking them (the heap's top is live, so nothing is swept),
// and the heap holds exactly the listed keys.
func TestReplayListFullAnswersAtOnce(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	l := &replayList{max: 1000, now: func() time.Time { return now }}
	for i := range 1000 {
		// later keys expire sooner: a list swept in insertion order would
		// keep the expired ones behind a live first key
		if _, err := l.seen(string(rune('a'+i%26))+time.Duration(i).String(), time.Duration(2000-i)*time.Millisecond); err != nil {
			t.Fatal(i, err)
		}
	}
	if _, err := l.seen("new", time.Minute); err != ErrReplayFull {
		t.Fatalf("full: %v", err)
	}
	now = now.Add(1500 * time.Millisecond) // the 500 shortest have expired
	if _, err := l.seen("new", time.Minute); err != nil {
		t.Fatalf("room once the shortest expired: %v", err)
	}
	if len(l.keys) != 501 || len(l.exp) != len(l.keys) {
		t.Fatalf("%d keys, %d in the heap; want 501 of each", len(l.keys), len(l.exp))
	}
}
