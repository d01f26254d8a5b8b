package main

import (
	"log/slog"
	"math"
	"os"
	"runtime/debug"

	"github.com/KimMachineGun/automemlimit/memlimit"
)

// defaultGOGC is the GOGC warden serve runs with unless GOGC is set.
// Measured at 10,000 policies and 100,000 entities (BENCHMARKS.md, "GC
// settings"): 200 saves about a fifth of the CPU per Check and costs 40%
// more resident memory, over the 150 MB budget; 400 saves no more CPU and
// doubles the memory again. Go's own default is the server's too.
const defaultGOGC = 100

// memLimitRatio is the share of the container's memory limit given to
// the Go runtime as its soft limit (GOMEMLIMIT); the rest is headroom for
// what the runtime does not count (stacks of threads, cgo, page tables).
// AUTOMEMLIMIT=<ratio> overrides it, AUTOMEMLIMIT=off turns it off.
const memLimitRatio = 0.9

// configureGC sets the garbage collector up for a server: GOGC
// defaultGOGC unless the GOGC environment variable is set, and a soft
// memory limit of memLimitRatio of the cgroup's (container's) memory
// limit unless GOMEMLIMIT is set. It logs the effective settings.
func configureGC(log *slog.Logger, provider memlimit.Provider) {
	gogcFrom := "GOGC"
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(defaultGOGC)
		gogcFrom = "default"
	}
	gogc := debug.SetGCPercent(-1)
	debug.SetGCPercent(gogc)

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
	if limit <= 0 || limit == math.MaxInt64 {
		attrs = append(attrs, "memory_limit", "none")
	} else {
		attrs = append(attrs, "memory_limit_bytes", limit)
	}
	log.Info("garbage collector", attrs...)
}
