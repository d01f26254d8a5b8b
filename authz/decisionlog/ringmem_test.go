package decisionlog

import (
	"runtime"
	"testing"
)

// TestRingCostCoversHeap: a record the Ring keeps costs at most what it is
// counted against decision_log.memory_bytes (measured: an allow record of
// warden-bench's, 716 heap bytes against 1,174 counted; with its Cedar
// section, 5,312 against 9,003), so that the bound is a bound on memory.
func TestRingCostCoversHeap(t *testing.T) {
	for _, withCedar := range []bool{false, true} {
		ring := NewRing(10000, 0)
		l := New(Options{Size: 1, Keep: ring})
		var buf []byte
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		for range 10000 {
			buf = l.write(buf, benchRecord(withCedar))
		}
		buf = nil
		runtime.GC()
		runtime.ReadMemStats(&after)
		n, counted := ring.Len()
		heap := int64(after.HeapAlloc) - int64(before.HeapAlloc)
		t.Logf("cedar %v: %d records, counted %d B each, heap %d B each", withCedar, n, counted/n, heap/int64(n))
		if n != 10000 || heap > int64(counted) {
			t.Errorf("cedar %v: %d records hold %d heap bytes, counted %d", withCedar, n, heap, counted)
		}
		runtime.KeepAlive(ring)
		if err := l.Close(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
}
