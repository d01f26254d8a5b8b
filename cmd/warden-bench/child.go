package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"syscall"

	"github.com/KimMachineGun/automemlimit/memlimit"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"

	"github.com/wardenauthz/warden/authz/config"
	"github.com/wardenauthz/warden/authz/server"
	"github.com/wardenauthz/warden/internal/gcconfig"
)

// The servers run as child processes of the benchmark (the benchmark binary
// started again with -child), so that their CPU and allocations are their
// own, read from their /metrics, and so that they can be pinned to a core.

// ready is what a child prints on stdout once it listens.
type ready struct {
	GRPC string `json:"grpc"`
	HTTP string `json:"http"`
}

func runChild(role, cfgFile string) error {
	if path := os.Getenv("WARDEN_BENCH_CPUPROFILE"); path != "" && role == "warden" {
		f, err := os.Create(path)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	if os.Getenv("WARDEN_BENCH_HEAPPROFILE") != "" && role == "warden" {
		runtime.MemProfileRate = 4096 // fine enough to see what each structure holds
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	go func() { // the parent closes stdin (or dies): stop
		_, _ = io.Copy(io.Discard, os.Stdin)
		if path := os.Getenv("WARDEN_BENCH_HEAPPROFILE"); path != "" && role == "warden" {
			if err := writeHeapProfile(path); err != nil {
				fmt.Fprintln(os.Stderr, "warden-bench child: heap profile:", err)
			}
		}
		stop()
	}()
	gl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	hl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	announce := func() error {
		return json.NewEncoder(os.Stdout).Encode(ready{GRPC: gl.Addr().String(), HTTP: hl.Addr().String()})
	}
	switch role {
	case "warden":
		return serveWarden(ctx, cfgFile, gl, hl, announce)
	case "noop":
		return serveNoop(ctx, gl, hl, announce)
	}
	return fmt.Errorf("unknown child role %q", role)
}

// writeHeapProfile writes the heap profile of the server as the load left
// it (before it shuts down; after a collection, so that in-use is current)
// to path, and beside it (path.memstats) the runtime's memory statistics
// and the kernel's view of the process, to compare the resident set with
// what the runtime holds.
func writeHeapProfile(path string) error {
	runtime.GC()
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := pprof.WriteHeapProfile(f); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	b, err := json.MarshalIndent(ms, "", "  ")
	if err != nil {
		return err
	}
	status, _ := os.ReadFile("/proc/self/status")
	smaps, _ := os.ReadFile("/proc/self/smaps_rollup")
	b = append(append(append(b, '\n'), status...), smaps...)
	return os.WriteFile(path+".memstats", b, 0o644)
}

// serveWarden is `warden serve --config cfgFile` on the given listeners.
func serveWarden(ctx context.Context, cfgFile string, gl, hl net.Listener, announce func() error) error {
	cfg, err := config.Load(cfgFile)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	gcconfig.Configure(log, memlimit.FromCgroup) // as warden serve
	svc, err := server.New(cfg, server.Options{Logger: log, Stdout: io.Discard})
	if err != nil {
		return err
	}
	svc.Start(ctx)
	if err := announce(); err != nil {
		return err
	}
	return svc.Serve(ctx, gl, hl, nil)
}

// noop is the ceiling: a plain grpc-go ext_authz server that allows
// everything, with the same process metrics as Warden.
type noop struct {
	authv3.UnimplementedAuthorizationServer
}

func (noop) Check(context.Context, *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	return &authv3.CheckResponse{Status: &rpcstatus.Status{}}, nil
}

func serveNoop(ctx context.Context, gl, hl net.Listener, announce func() error) error {
	g := grpc.NewServer()
	authv3.RegisterAuthorizationServer(g, noop{})
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	hs := &http.Server{Handler: mux}
	go func() { _ = hs.Serve(hl) }()
	go func() { _ = g.Serve(gl) }()
	if err := announce(); err != nil {
		return err
	}
	<-ctx.Done()
	g.Stop()
	return hs.Close()
}
