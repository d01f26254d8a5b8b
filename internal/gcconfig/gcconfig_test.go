package gcconfig

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strings"
	"testing"
	"time"

	"github.com/KimMachineGun/automemlimit/memlimit"
	"github.com/wardenauthz/warden/internal/testwait"
)

// restoreGC puts the GC settings back after a test of Configure.
func restoreGC(t *testing.T) {
	gogc := currentGOGC()
	limit := debug.SetMemoryLimit(-1)
	t.Cleanup(func() {
		debug.SetGCPercent(gogc)
		debug.SetMemoryLimit(limit)
	})
}

func gcLog(t *testing.T, provider memlimit.Provider) string {
	t.Helper()
	var buf bytes.Buffer
	stop := Configure(slog.New(slog.NewJSONHandler(&buf, nil)), provider)
	t.Cleanup(stop)
	return buf.String()
}

func TestConfigureGCFromCgroup(t *testing.T) {
	restoreGC(t)
	for _, k := range []string{"GOMEMLIMIT", "AUTOMEMLIMIT", "GOGC"} {
		unsetenv(t, k)
	}
	debug.SetGCPercent(50) // Configure must set the default
	out := gcLog(t, memlimit.Limit(1000<<20))
	if got, want := debug.SetMemoryLimit(-1), int64(900<<20); got != want {
		t.Errorf("memory limit %d, want %d (0.9 of the cgroup's)", got, want)
	}
	if got := currentGOGC(); got < DefaultGOGC {
		t.Errorf("GOGC %d, want at least the default %d", got, DefaultGOGC)
	}
	for _, want := range []string{`"memory_limit_bytes":943718400`, `"memory_limit_from":"cgroup"`, `"gogc_from":"default"`, `"gogc_min":100`, `"min_headroom_bytes":33554432`, `"small_heap_goal_bytes":100663296`} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %s:\n%s", want, out)
		}
	}
}

func TestConfigureGCUserWins(t *testing.T) {
	restoreGC(t)
	debug.SetMemoryLimit(123 << 20) // as the runtime read them at start
	debug.SetGCPercent(50)
	t.Setenv("GOMEMLIMIT", "123MiB")
	t.Setenv("GOGC", "50")
	out := gcLog(t, memlimit.Limit(1000<<20))
	if got := debug.SetMemoryLimit(-1); got != 123<<20 {
		t.Errorf("memory limit %d, want GOMEMLIMIT's %d", got, 123<<20)
	}
	if got := debug.SetGCPercent(-1); got != 50 {
		t.Errorf("GOGC %d, want GOGC's 50", got)
	}
	for _, want := range []string{`"memory_limit_from":"GOMEMLIMIT"`, `"gogc":50`, `"gogc_from":"GOGC"`} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %s:\n%s", want, out)
		}
	}
}

func TestConfigureGCRatioOverride(t *testing.T) {
	restoreGC(t)
	unsetenv(t, "GOMEMLIMIT")
	t.Setenv("AUTOMEMLIMIT", "0.5")
	gcLog(t, memlimit.Limit(1000<<20))
	if got, want := debug.SetMemoryLimit(-1), int64(500<<20); got != want {
		t.Errorf("memory limit %d, want %d (AUTOMEMLIMIT=0.5)", got, want)
	}
}

func TestConfigureGCNoCgroup(t *testing.T) {
	restoreGC(t)
	unsetenv(t, "GOMEMLIMIT")
	unsetenv(t, "AUTOMEMLIMIT")
	before := debug.SetMemoryLimit(-1)
	out := gcLog(t, func() (uint64, error) { return 0, errors.New("no cgroup") })
	if got := debug.SetMemoryLimit(-1); got != before {
		t.Errorf("memory limit changed to %d without a cgroup", got)
	}
	if !strings.Contains(out, `"memory_limit":"none"`) || !strings.Contains(out, "no memory limit set") {
		t.Errorf("log does not say there is no limit:\n%s", out)
	}
}

// unsetenv removes k for the test and puts it back after.
func unsetenv(t *testing.T, k string) {
	t.Setenv(k, "") // records the old value for restoring
	os.Unsetenv(k)
}

func liveHeap() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

func TestGOGCFor(t *testing.T) {
	for _, c := range []struct {
		live uint64
		want int
	}{
		{0, DefaultGOGC},           // before the first collection
		{1, maxGOGC},               // bounded
		{1 << 20, 9300},            // 1 MiB live: a goal of 94 MiB
		{6 << 20, 1300},            // the load benchmark's 1,000 policies: 84 MiB
		{16 << 20, 300},            // 64 MiB
		{24 << 20, 133},            // from here on, MinHeadroom of growth
		{29 << 20, 110},            // 10,000 policies and 100,000 entities
		{MinHeadroom - 1, 100},     // rounds down to the default, never below
		{MinHeadroom, DefaultGOGC}, // from here on, Go's own ratio
		{57 << 20, DefaultGOGC},
		{8 << 30, DefaultGOGC},
	} {
		if got := gogcFor(c.live); got != c.want {
			t.Errorf("gogcFor(%d) = %d, want %d", c.live, got, c.want)
		}
	}
	// Between the bounds (maxGOGC for a live heap of about 96 KiB), the
	// growth GOGC allows is MinHeadroom or what brings the goal to
	// SmallHeapGoal - 2 × live, whichever is more, short only by gogcFor's
	// rounding down (under 1% of the live heap).
	for live := uint64(SmallHeapGoal/maxGOGC*100 + 1); live < MinHeadroom; live += 4093 {
		g := uint64(gogcFor(live))
		want := uint64(MinHeadroom)
		if 3*live < SmallHeapGoal {
			want = max(want, SmallHeapGoal-3*live)
		}
		if grow := live * g / 100; grow > want || grow+live/100+1 < want {
			t.Fatalf("gogcFor(%d) = %d lets the heap grow %d bytes, want about %d", live, g, grow, want)
		}
	}
}

// TestTunerFollowsLiveHeap runs the real tuner against the runtime: a
// small live heap raises GOGC after a collection, a live heap past
// MinHeadroom brings it back to the default, and stop ends it.
func TestTunerFollowsLiveHeap(t *testing.T) {
	restoreGC(t)
	unsetenv(t, "GOGC")
	unsetenv(t, "GOMEMLIMIT")
	t.Setenv("AUTOMEMLIMIT", "off")
	debug.SetGCPercent(DefaultGOGC)
	stop := Configure(slog.New(slog.DiscardHandler), memlimit.Limit(1<<40))
	defer stop()

	settled := func(what string, ok func(g int) bool) {
		t.Helper()
		testwait.Until(t, 5*time.Second, what, func() bool {
			runtime.GC()
			return ok(currentGOGC())
		})
	}
	settled("GOGC raised for a small live heap", func(g int) bool {
		return g > DefaultGOGC && g == gogcFor(liveHeap())
	})

	ballast := make([]byte, 2*MinHeadroom)
	for i := range ballast {
		ballast[i] = byte(i)
	}
	settled("GOGC back at the default for a live heap past MinHeadroom", func(g int) bool { return g == DefaultGOGC })
	runtime.KeepAlive(ballast)
	ballast = nil

	settled("GOGC raised again once the heap shrinks", func(g int) bool { return g > DefaultGOGC })

	stop()
	debug.SetGCPercent(77)
	for range 3 {
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
	if g := currentGOGC(); g != 77 {
		t.Errorf("GOGC %d after stop, want 77 (left alone)", g)
	}
}

// TestTunerOffWithGOGC: an operator's GOGC is kept, collection after
// collection.
func TestTunerOffWithGOGC(t *testing.T) {
	restoreGC(t)
	t.Setenv("GOGC", "50")
	debug.SetGCPercent(50)
	gcLog(t, memlimit.Limit(1<<40))
	for range 3 {
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
	if g := currentGOGC(); g != 50 {
		t.Errorf("GOGC %d, want the operator's 50", g)
	}
}
