// Package gcconfig sets the Go garbage collector up for a server: a soft
// memory limit from the container's cgroup, and a GOGC that never lets the
// heap grow by less than MinHeadroom between collections, and lets a
// small one grow further (SmallHeapGoal).
package gcconfig

import (
	"log/slog"
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync/atomic"

	"github.com/KimMachineGun/automemlimit/memlimit"
)

// DefaultGOGC is the least GOGC warden serve runs with unless GOGC is set.
// Measured at 10,000 policies and 100,000 entities (BENCHMARKS.md, "GC
// settings"): 200 saves about a fifth of the CPU per Check and costs 40%
// more resident memory, over the 150 MB budget; 400 saves no more CPU and
// doubles the memory again. Go's own default is the server's too.
const DefaultGOGC = 100

// MinHeadroom is the least the heap may grow between two collections
// (unless GOGC is set). Go's GOGC is a ratio of the live heap, so a small
// policy set (a few MB live) was collected every few milliseconds under
// load and spent a fifth of the CPU doing so (BENCHMARKS.md, "GC
// settings"). After each collection, GOGC is raised above DefaultGOGC
// just enough that the next one comes after MinHeadroom of allocation; a
// live heap of MinHeadroom or more runs at DefaultGOGC, so the large sets
// the RSS budget is about are unchanged. The cgroup's memory limit still
// bounds the total.
const MinHeadroom = 32 << 20

// SmallHeapGoal raises the heap goal (the size at which the next
// collection starts) of a small live heap further: a live heap of L
// bytes has a goal of at least SmallHeapGoal - 2L (84 MiB at 6 MiB live,
// GOGC 1300; nothing more from 24 MiB live on, so the large sets the RSS
// budget is about are unchanged). Each collection's mark phase (3-7 ms at
// the load benchmark's 6 MB live) slows the Checks that arrive
// meanwhile, so at a steady rate the share of the time spent marking (the
// live heap over the growth allowed) decides the tail: at 5,000 Checks/s,
// with a collection every 0.6 s (MinHeadroom alone, GOGC 533), Warden's
// p99 was 0.18 ms above the no-op server's on average over 25 interleaved
// runs; with GOGC 1300 or more (or off), 0.02 ms below it over 24, with no
// CPU measurably lost at full speed (BENCHMARKS.md, "Round five").
const SmallHeapGoal = 96 << 20

// maxGOGC bounds the raised GOGC (a live heap of about 96 KiB or less).
const maxGOGC = 100_000

// memLimitRatio is the share of the container's memory limit given to
// the Go runtime as its soft limit (GOMEMLIMIT); the rest is headroom for
// what the runtime does not count (stacks of threads, cgo, page tables).
// AUTOMEMLIMIT=<ratio> overrides it, AUTOMEMLIMIT=off turns it off.
const memLimitRatio = 0.9

// Configure sets the garbage collector up for a server: GOGC from
// gogcFor after every collection unless the GOGC environment variable
// is set, and a soft memory limit of memLimitRatio of the cgroup's
// (container's) memory limit unless GOMEMLIMIT is set. It logs the
// effective settings. stop ends the GOGC tuning (tests); the GOGC last
// set stays.
func Configure(log *slog.Logger, provider memlimit.Provider) (stop func()) {
	gogcFrom := "GOGC"
	stop = func() {}
	if _, set := os.LookupEnv("GOGC"); !set {
		t := startTuner()
		stop = t.stop
		gogcFrom = "default"
	}
	gogc := currentGOGC()

	limitFrom := "cgroup"
	_, userLimit := os.LookupEnv("GOMEMLIMIT")
	switch v, set := os.LookupEnv("AUTOMEMLIMIT"); {
	case userLimit:
		limitFrom = "GOMEMLIMIT"
	case set && v == "off":
		limitFrom = "off (AUTOMEMLIMIT)"
	case set:
		limitFrom = "cgroup, ratio from AUTOMEMLIMIT"
	}
	limit, err := memlimit.Set(memlimit.WithRatio(memLimitRatio), memlimit.WithProvider(provider))
	if err != nil {
		log.Warn("no memory limit set from the cgroup", "err", err)
		limitFrom = "none"
	}
	attrs := []any{"gogc", gogc, "gogc_from", gogcFrom, "memory_limit_from", limitFrom}
	if gogcFrom == "default" {
		attrs = append(attrs, "gogc_min", DefaultGOGC, "min_headroom_bytes", MinHeadroom, "small_heap_goal_bytes", SmallHeapGoal)
	}
	if limit <= 0 || limit == math.MaxInt64 {
		attrs = append(attrs, "memory_limit", "none")
	} else {
		attrs = append(attrs, "memory_limit_bytes", limit)
	}
	log.Info("garbage collector", attrs...)
	return stop
}

// currentGOGC is the runtime's GOGC now, read without setting it (as
// debug.SetGCPercent(-1) would, racing the tuner).
func currentGOGC() int {
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(s)
	return int(s[0].Value.Uint64())
}

// gogcFor is the GOGC that gives a live heap of live bytes at least
// MinHeadroom of growth before the next collection and a heap goal of at
// least SmallHeapGoal - 2 × live, and never less than DefaultGOGC.
func gogcFor(live uint64) int {
	if live == 0 || live >= MinHeadroom {
		return DefaultGOGC
	}
	grow := uint64(MinHeadroom)
	if 3*live < SmallHeapGoal {
		grow = max(grow, SmallHeapGoal-3*live) // a goal of SmallHeapGoal - 2 × live
	}
	g := grow * 100 / live
	switch {
	case g > maxGOGC:
		return maxGOGC
	case g < DefaultGOGC:
		return DefaultGOGC
	}
	return int(g)
}

// tuner sets GOGC from the live heap after every collection: a sentinel
// object's finalizer runs once per cycle (the cycle that finds it
// unreachable) and arms a new sentinel.
type tuner struct {
	stopped atomic.Bool
	sample  []metrics.Sample
	gogc    int // the GOGC last set
}

// sentinel is large enough not to be batched with other tiny objects,
// whose finalizer would then wait for all of them.
type sentinel struct{ _ [16]byte }

func startTuner() *tuner {
	t := &tuner{sample: []metrics.Sample{{Name: "/gc/heap/live:bytes"}}}
	t.tune()
	t.arm()
	return t
}

func (t *tuner) arm() {
	runtime.SetFinalizer(&sentinel{}, func(*sentinel) {
		if t.stopped.Load() {
			return
		}
		t.tune()
		t.arm()
	})
}

// tune runs on the finalizer goroutine, one at a time.
func (t *tuner) tune() {
	metrics.Read(t.sample)
	var live uint64
	if t.sample[0].Value.Kind() == metrics.KindUint64 {
		live = t.sample[0].Value.Uint64()
	}
	if g := gogcFor(live); g != t.gogc {
		debug.SetGCPercent(g)
		t.gogc = g
	}
}

func (t *tuner) stop() { t.stopped.Store(true) }
