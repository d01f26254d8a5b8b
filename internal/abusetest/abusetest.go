// Package abusetest measures what a flood costs the test process (heap,
// RSS, goroutines, CPU) and checks it against a budget, for the TestAbuse*
// tests. WARDEN_ABUSE=full (go tool task abuse) runs their full counts;
// otherwise (the normal suite, CI) they run small ones.
package abusetest

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Full reports whether the abuse tests run their full counts.
func Full() bool { return os.Getenv("WARDEN_ABUSE") == "full" }

// Count is full under WARDEN_ABUSE=full, else small.
func Count(small, full int) int {
	if Full() {
		return full
	}
	return small
}

// Sample is the process's cost at one moment.
type Sample struct {
	Heap       uint64        // live heap after a GC (runtime.MemStats.HeapAlloc)
	RSS        uint64        // resident set (/proc/self/status VmRSS); 0 where unknown
	Goroutines int           // runtime.NumGoroutine
	CPU        time.Duration // user + system CPU since the process started (getrusage)
}

// Measure collects garbage, then samples.
func Measure() Sample {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return Sample{Heap: ms.HeapAlloc, RSS: rss(), Goroutines: runtime.NumGoroutine(), CPU: cpu()}
}

func rss() uint64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				return 0
			}
			return kb << 10
		}
	}
	return 0
}

func cpu() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// Budget is how much a flood may add to a Sample; a zero field is not
// checked.
type Budget struct {
	Heap, RSS  uint64
	Goroutines int
	CPU        time.Duration
}

// MiB is a mebibyte, for budgets.
const MiB = 1 << 20

// Check logs what after adds to before and fails t for each figure over
// budget. what names the moment ("during the flood", "after").
func Check(t testing.TB, what string, before, after Sample, b Budget) {
	t.Helper()
	dHeap, dRSS := int64(after.Heap)-int64(before.Heap), int64(after.RSS)-int64(before.RSS)
	dG, dCPU := after.Goroutines-before.Goroutines, after.CPU-before.CPU
	t.Logf("%s: heap %+.1f MiB (%.1f), RSS %+.1f MiB (%.1f), goroutines %+d (%d), CPU %s",
		what, mib(dHeap), mib(int64(after.Heap)), mib(dRSS), mib(int64(after.RSS)), dG, after.Goroutines, dCPU.Round(time.Millisecond))
	over := func(name string, got, budget string) {
		t.Errorf("%s: %s grew by %s, budget %s", what, name, got, budget)
	}
	if b.Heap > 0 && dHeap > int64(b.Heap) {
		over("heap", fmt.Sprintf("%.1f MiB", mib(dHeap)), fmt.Sprintf("%.0f MiB", mib(int64(b.Heap))))
	}
	if b.RSS > 0 && after.RSS > 0 && dRSS > int64(b.RSS) {
		over("RSS", fmt.Sprintf("%.1f MiB", mib(dRSS)), fmt.Sprintf("%.0f MiB", mib(int64(b.RSS))))
	}
	if b.Goroutines > 0 && dG > b.Goroutines {
		over("goroutines", strconv.Itoa(dG), strconv.Itoa(b.Goroutines))
	}
	if b.CPU > 0 && dCPU > b.CPU {
		over("CPU", dCPU.String(), b.CPU.String())
	}
}

func mib(n int64) float64 { return float64(n) / MiB }

// Race is set when the race detector is on (its costs are several times
// the plain build's): budgets are scaled by RaceFactor then.
const RaceFactor = 8

// Scale is n, times RaceFactor under the race detector.
func Scale[T ~int | ~uint64 | ~int64](n T) T {
	if Race {
		return n * RaceFactor
	}
	return n
}

// Settled waits (at most 10 s) until the process has at most goroutines
// more than before, then checks the sample against that budget under
// "after": a flood's goroutines end once its connections close.
func Settled(t testing.TB, before Sample, goroutines int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		after := Measure()
		if after.Goroutines-before.Goroutines <= goroutines {
			Check(t, "after", before, after, Budget{Goroutines: goroutines})
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines more than before, 10s after the flood", after.Goroutines-before.Goroutines)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
