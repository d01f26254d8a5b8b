package identity

import (
	"fmt"
	"testing"
	"time"
)

// TestIntrospectionCacheBounded: the answer cache holds at most its size,
// dropping the least recently used, and keys apart by the token's hash.
func TestIntrospectionCacheBounded(t *testing.T) {
	c := newLRU(8)
	now := time.Unix(1780000000, 0)
	until := now.Add(time.Hour)
	key := func(i int) [32]byte { return hashToken(fmt.Sprint("token-", i)) }
	for i := range 8 {
		c.put(key(i), &verified{id: fmt.Sprint(i)}, nil, until)
	}
	if v, _, ok := c.get(key(0), now); !ok || v.id != "0" { // 0 is now the most recently used
		t.Fatalf("entry 0: %v %v", v, ok)
	}
	for i := 8; i < 1000; i++ {
		c.put(key(i), &verified{id: fmt.Sprint(i)}, nil, until)
		if c.len() > 8 {
			t.Fatalf("%d entries, want at most 8", c.len())
		}
	}
	if _, _, ok := c.get(key(1), now); ok {
		t.Error("a least recently used entry survived")
	}
	if v, _, ok := c.get(key(999), now); !ok || v.id != "999" {
		t.Errorf("the newest entry: %v %v", v, ok)
	}
	if _, _, ok := c.get(key(999), until); ok {
		t.Error("an entry outlived its time")
	}
}
