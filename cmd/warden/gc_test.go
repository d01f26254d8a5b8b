package main

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/KimMachineGun/automemlimit/memlimit"
)

// restoreGC puts the GC settings back after a test of configureGC.
func restoreGC(t *testing.T) {
	gogc := debug.SetGCPercent(-1)
	debug.SetGCPercent(gogc)
	limit := debug.SetMemoryLimit(-1)
	t.Cleanup(func() {
		debug.SetGCPercent(gogc)
		debug.SetMemoryLimit(limit)
	})
}

func gcLog(t *testing.T, provider memlimit.Provider) string {
	t.Helper()
	var buf bytes.Buffer
	configureGC(slog.New(slog.NewJSONHandler(&buf, nil)), provider)
	return buf.String()
}

func TestConfigureGCFromCgroup(t *testing.T) {
	restoreGC(t)
	for _, k := range []string{"GOMEMLIMIT", "AUTOMEMLIMIT", "GOGC"} {
		unsetenv(t, k)
	}
	debug.SetGCPercent(50) // configureGC must set the default
	out := gcLog(t, memlimit.Limit(1000<<20))
	if got, want := debug.SetMemoryLimit(-1), int64(900<<20); got != want {
		t.Errorf("memory limit %d, want %d (0.9 of the cgroup's)", got, want)
	}
	if got := debug.SetGCPercent(-1); got != defaultGOGC {
		t.Errorf("GOGC %d, want the default %d", got, defaultGOGC)
	}
	for _, want := range []string{`"memory_limit_bytes":943718400`, `"memory_limit_from":"cgroup"`, `"gogc":100`, `"gogc_from":"default"`} {
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
