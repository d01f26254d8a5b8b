package server_test

import (
	"context"
	"net"
	"os/exec"
	"runtime/metrics"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/wardenauthz/warden/authz/config"
	"github.com/wardenauthz/warden/ratelimit/redistest"
)

// noop is the ceiling: an ext_authz server that allows everything.
type noop struct {
	authv3.UnimplementedAuthorizationServer
}

func (noop) Check(context.Context, *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	return &authv3.CheckResponse{Status: &rpcstatus.Status{}}, nil
}

func dial(b *testing.B, addr string) authv3.AuthorizationClient {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.Close() })
	return authv3.NewAuthorizationClient(conn)
}

// BenchmarkCheck: the full pipeline (RS256 token, cached after the first
// verification; revocation; Cedar; one rate-limit rule; memory store) in
// process and over loopback gRPC, next to the no-op ceiling over gRPC.
func BenchmarkCheck(b *testing.B) {
	// A limit that never trips: measure the allow path, limiter included.
	noLimit := func(c *config.Config) { c.RateLimit.Rules[0].Limit, c.RateLimit.Rules[0].Burst = 1e9, 1e9 }
	stores := map[string]func(*config.Config){"memory": noLimit}
	if srv := startRedisForBench(b); srv != nil {
		stores["redis"] = func(c *config.Config) {
			noLimit(c)
			c.Store.Kind, c.Store.Redis.Addrs = "redis", []string{srv.Addr}
			c.Revocation.MaxStaleness = time.Hour // the fixed test clock never advances
		}
	}
	for name, mut := range stores {
		b.Run(name, func(b *testing.B) { benchCheck(b, mut) })
	}
}

func startRedisForBench(b *testing.B) *redistest.Server {
	if _, err := exec.LookPath("redis-server"); err != nil {
		return nil
	}
	return redistest.Start(b)
}

func benchCheck(b *testing.B, mut func(*config.Config)) {
	e := start(b, mut)
	req := sample(b, "01-get-bearer-jwt.json", e.token(b, "alice", "staff"))

	b.Run("in-process", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if out := e.svc.Authorizer.Evaluate(context.Background(), req); out.Record.Decision != "allow" {
				b.Fatal(out.Record.Reason)
			}
		}
	})
	b.Run("grpc", func(b *testing.B) {
		b.ReportAllocs()
		b.SetParallelism(4)
		created := goroutinesCreated()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				resp, err := e.client.Check(context.Background(), req)
				if err != nil || resp.GetStatus().GetCode() != 0 {
					b.Fatal(err, resp.GetStatus())
				}
			}
		})
		b.ReportMetric(float64(goroutinesCreated()-created)/float64(b.N), "goroutines/op")
	})
	b.Run("noop-ceiling-grpc", func(b *testing.B) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		g := grpc.NewServer()
		authv3.RegisterAuthorizationServer(g, noop{})
		go g.Serve(l)
		defer g.Stop()
		c := dial(b, l.Addr().String())
		b.ReportAllocs()
		b.SetParallelism(4)
		b.ResetTimer()
		created := goroutinesCreated()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := c.Check(context.Background(), req); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.ReportMetric(float64(goroutinesCreated()-created)/float64(b.N), "goroutines/op")
	})
}

// goroutinesCreated is the goroutines the process has created (client and
// server: the benchmarks report them per call).
func goroutinesCreated() uint64 {
	s := []metrics.Sample{{Name: "/sched/goroutines-created:goroutines"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}
