// Command warden-bench is Warden's load benchmark (SPEC §11). It starts
// Warden and a no-op ext_authz server as child processes (pinned to one core
// when the machine has two or more, the load generator on the others), a
// real OIDC issuer over HTTP and, for -store redis, a private redis-server;
// it sends an Envoy-shaped request mix over gRPC and reports requests/s,
// latency percentiles, the server's CPU and allocations per Check (from the
// server's own /metrics), and the ratio to the no-op ceiling measured in the
// same run.
//
//	warden-bench [-mode load|memory|reload] [-store memory|redis] [-runs 3] ...
//
// Run by `go tool task bench`; BENCHMARKS.md has the figures.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/wardenauthz/warden/identity/oidctest"
)

type options struct {
	mode           string
	store          string
	runs           int
	warmup, window time.Duration
	conns, conc    int
	rate           float64
	interleave     int // load mode: slices per run that the targets take turns in (1: one window each)
	policies       int
	entities       int
	users          int
	mix            map[string]int
	pin            bool
	reloadEvery    time.Duration
	jsonOut        string
	opaEnvoy       string // an opa-envoy-plugin binary: also measure OPA-Envoy (load mode)
}

func main() {
	role := flag.String("child", "", "internal: run as the warden or noop server")
	cfgFile := flag.String("config", "", "internal: the child's config")
	var o options
	mix := flag.String("mix", "reader=50,admin=20,denied=15,anonymous=10,expired=5", "request mix: kind=weight,...")
	flag.StringVar(&o.mode, "mode", "load", "load: Warden vs the no-op ceiling; memory: RSS with many policies and entities; reload: policies replaced under load")
	flag.StringVar(&o.store, "store", "memory", "Warden's store: memory or redis (a private redis-server)")
	flag.IntVar(&o.runs, "runs", 3, "runs (each measures the ceiling and Warden); figures are medians with the range")
	flag.DurationVar(&o.warmup, "warmup", 2*time.Second, "load before each measured window")
	flag.DurationVar(&o.window, "duration", 5*time.Second, "measured window per target and run")
	flag.IntVar(&o.conns, "conns", 4, "gRPC connections (M)")
	flag.IntVar(&o.conc, "concurrency", 64, "concurrent calls in flight (N)")
	flag.Float64Var(&o.rate, "rate", 0, "offered requests/s (open loop); 0: as fast as the server answers")
	flag.IntVar(&o.interleave, "interleave", 1, "load mode: split each run's window into this many slices that the targets take in turns (all servers started once per run), so that each meets the same noise on a shared machine; 1: one window per target")
	flag.IntVar(&o.policies, "policies", 1000, "policies in the set (3 application policies, the rest tenant policies)")
	flag.IntVar(&o.entities, "entities", 0, "User entities in entities.json")
	flag.IntVar(&o.users, "users", 200, "distinct users (tokens) per kind of request")
	flag.BoolVar(&o.pin, "pin", true, "pin the servers to CPU 0 and the load generator to the rest (needs taskset and 2+ CPUs)")
	flag.DurationVar(&o.reloadEvery, "reload-every", 2*time.Second, "reload mode: how often the policy file is replaced")
	flag.StringVar(&o.jsonOut, "json", "", "also write the results as JSON to this file")
	flag.StringVar(&o.opaEnvoy, "opa-envoy", "", "path to an opa-envoy-plugin binary: also measure OPA-Envoy with opa/empty.rego (opa-empty) and opa/rbac.rego (opa-rbac), load mode only (BENCHMARKS.md)")
	flag.Parse()

	if *role != "" {
		if err := runChild(*role, *cfgFile); err != nil {
			fmt.Fprintln(os.Stderr, "warden-bench child:", err)
			os.Exit(1)
		}
		return
	}
	o.mix = map[string]int{}
	for part := range strings.SplitSeq(*mix, ",") {
		k, v, _ := strings.Cut(part, "=")
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			fmt.Fprintf(os.Stderr, "warden-bench: -mix: bad weight in %q\n", part)
			os.Exit(2)
		}
		o.mix[strings.TrimSpace(k)] = n
	}
	if o.mode == "memory" || o.mode == "reload" {
		if !flagSet("policies") {
			o.policies = 10000
		}
		if !flagSet("entities") && o.mode == "memory" {
			o.entities = 100000
		}
	}
	c := placement(o.pin)
	if err := pinSelf(c); err != nil {
		fmt.Fprintln(os.Stderr, "warden-bench:", err)
		os.Exit(1)
	}
	if err := run(o, c, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "warden-bench:", err)
		os.Exit(1)
	}
}

func flagSet(name string) bool {
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// measure is one target's figures in one window.
type measure struct {
	Target    string  `json:"target"`
	Run       int     `json:"run"`
	RPS       float64 `json:"rps"`
	P50       float64 `json:"p50_us"`
	P90       float64 `json:"p90_us"`
	P99       float64 `json:"p99_us"`
	P999      float64 `json:"p999_us"`
	CPU       float64 `json:"cpu_us_per_check"`
	Allocs    float64 `json:"allocs_per_check"`
	Calls     int64   `json:"calls"`
	Errors    int64   `json:"errors"`
	Timeouts  int64   `json:"timeouts,omitempty"` // of the errors, Checks past Envoy's deadline
	Wrong     int64   `json:"wrong_answers"`
	ClientCPU float64 `json:"client_cores_busy"`
	RSS       float64 `json:"rss_mb,omitempty"`
	PeakRSS   float64 `json:"peak_rss_mb,omitempty"`
	HeapLive  float64 `json:"heap_alloc_mb,omitempty"`
	HeapSys   float64 `json:"heap_sys_mb,omitempty"`
	Reloads   float64 `json:"reloads,omitempty"`
	ReloadErr float64 `json:"reload_errors,omitempty"`
	ReloadAvg float64 `json:"reload_mean_s,omitempty"`
	ReloadMax float64 `json:"reload_max_bucket_s,omitempty"`
}

func run(o options, c cpus, out io.Writer) error {
	dir, err := os.MkdirTemp("", "warden-bench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	is := oidctest.Start()
	defer is.Close()
	redisAddr := ""
	if o.store == "redis" {
		addr, stop, err := redisServer(c, dir)
		if err != nil {
			return err
		}
		defer stop()
		redisAddr = addr
	} else if o.store != "memory" {
		return fmt.Errorf("-store: memory or redis, not %q", o.store)
	}
	f, err := newFixture(dir, o, is, redisAddr)
	if err != nil {
		return err
	}
	targets := []string{"noop", "warden"}
	if o.opaEnvoy != "" {
		if o.mode != "load" {
			return fmt.Errorf("-opa-envoy: only with -mode load")
		}
		if err := writeOPAData(dir, is); err != nil {
			return err
		}
		targets = append(targets, "opa-empty", "opa-rbac")
	}
	if o.mode != "load" {
		targets, o.runs = []string{"warden"}, max(o.runs, 1)
	}
	header(out, o, c, f)
	var all []measure
	if o.interleave > 1 && o.mode != "load" {
		return fmt.Errorf("-interleave: only with -mode load")
	}
	for r := 1; r <= o.runs; r++ {
		if o.interleave > 1 {
			ms, err := measureInterleaved(o, c, f, targets, r)
			if err != nil {
				return fmt.Errorf("run %d: %w", r, err)
			}
			for _, m := range ms {
				all = append(all, *m)
				row(out, m, targetWidth(o))
			}
			continue
		}
		for _, t := range targets {
			m, err := measureTarget(o, c, f, t, r)
			if err != nil {
				return fmt.Errorf("run %d, %s: %w", r, t, err)
			}
			all = append(all, *m)
			row(out, m, targetWidth(o))
		}
	}
	summary(out, o, all)
	if o.jsonOut != "" {
		doc := map[string]any{"mode": o.mode, "store": o.store, "policies": o.policies,
			"entities": o.entities, "rate": o.rate, "concurrency": o.conc, "conns": o.conns, "pinned": c.server != "",
			"results": all}
		if o.opaEnvoy != "" {
			doc["opa_envoy"] = opaVersion(o.opaEnvoy)
		}
		b, err := json.MarshalIndent(doc, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(o.jsonOut, b, 0o644); err != nil {
			return err
		}
	}
	for _, m := range all {
		if m.Target == "warden" && (m.Errors > 0 || m.Wrong > 0 || m.ReloadErr > 0) {
			return fmt.Errorf("failed Checks: %d errors, %d wrong answers, %.0f failed reloads", m.Errors, m.Wrong, m.ReloadErr)
		}
		// OPA-Envoy past Envoy's deadline is a finding, reported in the
		// errors column (Envoy would answer status_on_error); any other
		// error or a wrong answer fails the run.
		if isOPA(m.Target) && (m.Errors > m.Timeouts || m.Wrong > 0) {
			return fmt.Errorf("%s: failed Checks: %d errors (%d past the deadline), %d wrong answers", m.Target, m.Errors, m.Timeouts, m.Wrong)
		}
	}
	return nil
}

// checkFor is how target's answers are checked.
func checkFor(target string) checkMode {
	switch target {
	case "warden":
		return checkGRPC
	case "opa-rbac": // OPA-Envoy denies with PERMISSION_DENIED and the HTTP status in denied_response
		return checkHTTP
	}
	return checkNone
}

func startTarget(o options, c cpus, f *fixture, target string) (*child, error) {
	if isOPA(target) {
		return startOPA(c, o.opaEnvoy, f.dir, target)
	}
	return startChild(c, target, f.config)
}

// sliceWarmup is the load before each slice after a run's first (the
// servers are warm; the slice's connections are new).
const sliceWarmup = 300 * time.Millisecond

// measureInterleaved measures every target in one run of o.interleave
// slices: all servers run for the whole run, and each slice loads them in
// turn (the order reversed every other slice) for o.window/o.interleave,
// so that on a shared machine, whose noise drifts over minutes, each target
// meets the same noise. A target's figures are over all its slices.
func measureInterleaved(o options, c cpus, f *fixture, targets []string, runN int) ([]*measure, error) {
	chs := make([]*child, len(targets))
	for i, t := range targets {
		ch, err := startTarget(o, c, f, t)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", t, err)
		}
		defer ch.stop()
		chs[i] = ch
	}
	type sums struct {
		res          loadResult
		cpu, mallocs float64 // the server's, seconds and count
		client       time.Duration
	}
	acc := make([]sums, len(targets))
	slice := o.window / time.Duration(o.interleave)
	for s := range o.interleave {
		for j := range targets {
			i := j
			if s%2 == 1 {
				i = len(targets) - 1 - j
			}
			warm := sliceWarmup
			if s == 0 {
				warm = o.warmup
			}
			w := &window{ch: chs[i]}
			res, err := load(chs[i].GRPC, f, o.conns, o.conc, o.rate, warm, slice, checkFor(targets[i]), w.start, func() {
				w.usageEnd()
				w.metricsEnd()
			})
			if err == nil {
				err = w.err
			}
			if err != nil {
				return nil, fmt.Errorf("%s, slice %d: %w", targets[i], s+1, err)
			}
			a := &acc[i]
			a.res.calls += res.calls
			a.res.errors += res.errors
			a.res.timeouts += res.timeouts
			a.res.wrong += res.wrong
			a.res.elapsed += res.elapsed
			a.res.latencies = append(a.res.latencies, res.latencies...)
			a.cpu += w.diff("process_cpu_seconds_total")
			a.mallocs += w.diff("go_memstats_mallocs_total")
			a.client += w.client()
		}
	}
	ms := make([]*measure, len(targets))
	for i, t := range targets {
		a := &acc[i]
		slices.Sort(a.res.latencies)
		ms[i] = measureOf(t, runN, &a.res, a.cpu, a.mallocs, a.client)
	}
	return ms, nil
}

// measureOf is a target's figures from its load and what its server and
// the load generator spent meanwhile (CPU seconds, allocations).
func measureOf(target string, runN int, res *loadResult, cpu, mallocs float64, client time.Duration) *measure {
	us := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }
	n := float64(res.calls)
	return &measure{
		Target: target, Run: runN, RPS: n / res.elapsed.Seconds(),
		P50: us(percentile(res.latencies, 50)), P90: us(percentile(res.latencies, 90)),
		P99: us(percentile(res.latencies, 99)), P999: us(percentile(res.latencies, 99.9)),
		CPU:    cpu * 1e6 / n,
		Allocs: mallocs / n,
		Calls:  res.calls, Errors: res.errors, Timeouts: res.timeouts, Wrong: res.wrong,
		ClientCPU: client.Seconds() / res.elapsed.Seconds(),
	}
}

func measureTarget(o options, c cpus, f *fixture, target string, runN int) (*measure, error) {
	ch, err := startTarget(o, c, f, target)
	if err != nil {
		return nil, err
	}
	defer ch.stop()
	w := &window{ch: ch}
	stopReload := make(chan struct{})
	reloadDone := make(chan error, 1)
	onStart := func() {
		w.start()
		if o.mode == "reload" {
			go func() { reloadDone <- replacePolicies(f, o, stopReload) }()
		}
	}
	onEnd := func() {
		w.usageEnd()
		if o.mode == "reload" {
			close(stopReload)
			if err := <-reloadDone; err != nil && w.err == nil {
				w.err = err
			}
			time.Sleep(time.Second) // let the last reload finish before reading its metrics
		}
		w.metricsEnd()
	}
	res, err := load(ch.GRPC, f, o.conns, o.conc, o.rate, o.warmup, o.window, checkFor(target), onStart, onEnd)
	if err != nil {
		return nil, err
	}
	if w.err != nil {
		return nil, w.err
	}
	diff, after := w.diff, w.after
	m := measureOf(target, runN, res, diff("process_cpu_seconds_total"), diff("go_memstats_mallocs_total"), w.client())
	if o.mode == "memory" {
		m.RSS = after["process_resident_memory_bytes"] / (1 << 20)
		m.HeapLive = after["go_memstats_heap_alloc_bytes"] / (1 << 20)
		m.HeapSys = after["go_memstats_heap_sys_bytes"] / (1 << 20)
		if peak, err := ch.peakRSS(); err == nil {
			m.PeakRSS = float64(peak) / (1 << 20)
		}
	}
	if o.mode == "reload" {
		m.Reloads = diff(`warden_policy_reloads_total{result="ok"}`)
		m.ReloadErr = diff(`warden_policy_reloads_total{result="error"}`)
		if cnt := diff("warden_policy_reload_duration_seconds_count"); cnt > 0 {
			m.ReloadAvg = diff("warden_policy_reload_duration_seconds_sum") / cnt
			for _, le := range []string{"0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf"} {
				if diff(`warden_policy_reload_duration_seconds_bucket{le="`+le+`"}`) >= cnt {
					m.ReloadMax, _ = strconv.ParseFloat(le, 64)
					break
				}
			}
		}
		if m.Reloads == 0 {
			return nil, fmt.Errorf("no policy reload happened during the window")
		}
	}
	return m, nil
}

// window is what one measured window cost: the server's metrics at its
// start and end, and the load generator's CPU (its rusage) in between.
type window struct {
	ch            *child
	before, after map[string]float64
	ru0, ru1      syscall.Rusage
	err           error // the first scrape's (or the caller's) failure
}

func (w *window) start() {
	w.before, w.err = w.ch.metrics()
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &w.ru0)
}

// usageEnd ends the generator's CPU; metricsEnd reads the server's
// metrics, which may come later (a reload finishing).
func (w *window) usageEnd() { _ = syscall.Getrusage(syscall.RUSAGE_SELF, &w.ru1) }

func (w *window) metricsEnd() {
	var err error
	if w.after, err = w.ch.metrics(); err != nil && w.err == nil {
		w.err = err
	}
}

func (w *window) diff(name string) float64 { return w.after[name] - w.before[name] }

func (w *window) client() time.Duration { return cpuTime(w.ru1) - cpuTime(w.ru0) }

func cpuTime(r syscall.Rusage) time.Duration {
	return time.Duration(r.Utime.Nano() + r.Stime.Nano())
}

// replacePolicies rewrites the policy file every o.reloadEvery, alternating
// two sets that differ only in their tenant policies' ids (same answers for
// the mix), until stop.
func replacePolicies(f *fixture, o options, stop <-chan struct{}) error {
	t := time.NewTicker(o.reloadEvery)
	defer t.Stop()
	for i := 1; ; i++ {
		select {
		case <-stop:
			return nil
		case <-t.C:
			if err := writePolicies(f.policies, o.policies, []string{"", "-b"}[i%2]); err != nil {
				return err
			}
		}
	}
}

func header(w io.Writer, o options, c cpus, f *fixture) {
	place := "not pinned (client and servers share every CPU)"
	if c.server != "" {
		place = fmt.Sprintf("servers on CPU %s, load generator on CPU %s", c.server, c.client)
	}
	fmt.Fprintf(w, "warden-bench: mode %s, store %s, %d policies, %d entities; %s\n", o.mode, o.store, o.policies, o.entities, place)
	load := "full speed (closed loop)"
	if o.rate > 0 {
		load = fmt.Sprintf("%.0f requests/s offered (open loop)", o.rate)
	}
	fmt.Fprintf(w, "load: %s, %d calls in flight over %d connections, %s warm-up + %s measured per target, %d run(s)\n",
		load, o.conc, o.conns, o.warmup, o.window, o.runs)
	if o.interleave > 1 {
		fmt.Fprintf(w, "interleaved: the targets take turns in %d slices of %s a run (each after %s of warm-up, the first after %s), the order reversed every other slice\n",
			o.interleave, o.window/time.Duration(o.interleave), sliceWarmup, o.warmup)
	}
	var parts []string
	for _, k := range f.kinds {
		parts = append(parts, fmt.Sprintf("%s %d (%d B)", k.name, k.weight, k.size))
	}
	fmt.Fprintf(w, "mix: %s\n", strings.Join(parts, ", "))
	if o.opaEnvoy != "" {
		fmt.Fprintf(w, "OPA-Envoy: %s (%s); opa-empty: opa/empty.rego, opa-rbac: opa/rbac.rego, answers checked as HTTP statuses\n", o.opaEnvoy, opaVersion(o.opaEnvoy))
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "%-3s %-*s %9s %8s %8s %8s %8s %9s %9s %7s %6s %6s\n",
		"run", targetWidth(o), "target", "req/s", "p50 µs", "p90 µs", "p99 µs", "p99.9 µs", "CPU µs/op", "allocs/op", "client", "errors", "wrong")
}

// targetWidth is the target column's width: 7, or 9 with OPA-Envoy's names.
func targetWidth(o options) int {
	if o.opaEnvoy != "" {
		return 9
	}
	return 7
}

func row(w io.Writer, m *measure, width int) {
	fmt.Fprintf(w, "%-3d %-*s %9.0f %8.0f %8.0f %8.0f %8.0f %9.1f %9.1f %6.2fc %6d %6d", m.Run, width, m.Target, m.RPS,
		m.P50, m.P90, m.P99, m.P999, m.CPU, m.Allocs, m.ClientCPU, m.Errors, m.Wrong)
	if m.RSS > 0 {
		fmt.Fprintf(w, "  RSS %.0f MB (peak %.0f MB; Go heap %.0f MB allocated of %.0f MB)", m.RSS, m.PeakRSS, m.HeapLive, m.HeapSys)
	}
	if m.Reloads > 0 {
		fmt.Fprintf(w, "  reloads %.0f ok, %.0f failed, mean %.0f ms, max ≤ %g s", m.Reloads, m.ReloadErr, m.ReloadAvg*1e3, m.ReloadMax)
	}
	fmt.Fprintln(w)
}

// stat is a median with its range.
type stat struct{ med, lo, hi float64 }

func (s stat) String() string {
	if s.lo == s.hi {
		return fmt.Sprintf("%.3g", s.med)
	}
	return fmt.Sprintf("%.3g (%.3g–%.3g)", s.med, s.lo, s.hi)
}

func statOf(xs []float64) stat {
	if len(xs) == 0 {
		return stat{}
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	med := s[len(s)/2]
	if len(s)%2 == 0 {
		med = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return stat{med, s[0], s[len(s)-1]}
}

func summary(w io.Writer, o options, all []measure) {
	by := func(target string, get func(measure) float64) stat {
		var xs []float64
		for _, m := range all {
			if m.Target == target {
				xs = append(xs, get(m))
			}
		}
		return statOf(xs)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "median (min–max) over runs:")
	for _, t := range []string{"noop", "warden", "opa-empty", "opa-rbac"} {
		if by(t, func(m measure) float64 { return m.RPS }).med == 0 {
			continue
		}
		fmt.Fprintf(w, "  %-*s req/s %s; p99 %s µs; CPU %s µs/Check; allocs %s/Check\n", targetWidth(o), t,
			by(t, func(m measure) float64 { return m.RPS }), by(t, func(m measure) float64 { return m.P99 }),
			by(t, func(m measure) float64 { return m.CPU }), by(t, func(m measure) float64 { return m.Allocs }))
	}
	if o.mode != "load" {
		return
	}
	// pairs: for each run where both targets ran, f(a, b).
	pairs := func(a, b string, f func(a, b measure) float64) stat {
		var xs []float64
		for _, m := range all {
			if m.Target != a {
				continue
			}
			for _, n := range all {
				if n.Target == b && n.Run == m.Run {
					xs = append(xs, f(m, n))
				}
			}
		}
		return statOf(xs)
	}
	rps := func(a, b measure) float64 { return a.RPS / b.RPS }
	cpuOver := func(a, b measure) float64 { return a.CPU - b.CPU }
	p99Over := func(a, b measure) float64 { return a.P99 - b.P99 }
	fmt.Fprintf(w, "  warden/noop throughput %s; CPU above the no-op server %s µs/Check; p99 above the no-op's %s µs\n",
		pairs("warden", "noop", rps), pairs("warden", "noop", cpuOver), pairs("warden", "noop", p99Over))
	if o.opaEnvoy == "" {
		return
	}
	cpuRatio := func(a, b measure) float64 { return a.CPU / b.CPU }
	allocRatio := func(a, b measure) float64 { return a.Allocs / b.Allocs }
	fmt.Fprintln(w, "ratios to the no-op in the same run (throughput; CPU per Check; allocations per Check; p99):")
	for _, t := range []string{"warden", "opa-empty", "opa-rbac"} {
		fmt.Fprintf(w, "  %-9s %s; %s; %s; %s\n", t, pairs(t, "noop", rps), pairs(t, "noop", cpuRatio),
			pairs(t, "noop", allocRatio), pairs(t, "noop", func(a, b measure) float64 { return a.P99 / b.P99 }))
	}
	fmt.Fprintf(w, "  warden/opa-rbac throughput %s; warden/opa-empty %s\n", pairs("warden", "opa-rbac", rps), pairs("warden", "opa-empty", rps))
	for _, t := range []string{"opa-empty", "opa-rbac"} {
		var timeouts, calls int64
		for _, m := range all {
			if m.Target == t {
				timeouts, calls = timeouts+m.Timeouts, calls+m.Calls
			}
		}
		if timeouts > 0 {
			fmt.Fprintf(w, "  %s: %d of %d Checks past Envoy's %v deadline (the errors column; Envoy answers them with status_on_error)\n", t, timeouts, calls, envoyTimeout)
		}
	}
}
