package server_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/wardenauthz/warden/authz/config"
	"github.com/wardenauthz/warden/authz/server"
)

// A Service is a whole Warden: New assembles it from a parsed warden.yaml,
// Serve answers Envoy's Check over gRPC (and probes and metrics over HTTP)
// until its context ends. Here Envoy's part is played by a gRPC client on
// loopback, calling as two mTLS workloads.
func ExampleService_Serve() {
	dir, err := os.MkdirTemp("", "warden-example")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	if err := os.Mkdir(filepath.Join(dir, "policies"), 0o755); err != nil {
		fmt.Println(err)
		return
	}
	policy := `@id("checkout-reads") permit(principal == Workload::"spiffe://cluster.local/ns/shop/sa/checkout", action == Action::"GET", resource);`
	if err := os.WriteFile(filepath.Join(dir, "policies", "orders.cedar"), []byte(policy), 0o644); err != nil {
		fmt.Println(err)
		return
	}
	cfg, err := config.Parse("warden.yaml", []byte(`
identity:
  workloads: {trust_domains: [cluster.local]}
policy:
  dir: ./policies
  reload: "off"
decision_log:
  sinks: []
`), dir)
	if err != nil {
		fmt.Println(err)
		return
	}
	svc, err := server.New(cfg, server.Options{Stdout: io.Discard, Node: "example"})
	if err != nil {
		fmt.Println(err)
		return
	}
	grpcLis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	httpLis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, stop := context.WithCancel(context.Background())
	svc.Start(ctx)
	done := make(chan error, 1)
	go func() { done <- svc.Serve(ctx, grpcLis, httpLis, nil) }()
	defer func() { stop(); <-done }()

	conn, err := grpc.NewClient(grpcLis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer conn.Close()
	client := authv3.NewAuthorizationClient(conn)
	for _, peer := range []string{"spiffe://cluster.local/ns/shop/sa/checkout", "spiffe://cluster.local/ns/shop/sa/web"} {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		resp, err := client.Check(cctx, &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
			Source: &authv3.AttributeContext_Peer{Principal: peer},
			Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
				Method: "GET", Host: "orders", Path: "/orders/42", Scheme: "https", Protocol: "HTTP/2",
			}},
		}}, grpc.WaitForReady(true))
		cancel()
		if err != nil {
			fmt.Println(err)
			return
		}
		if resp.GetOkResponse() != nil {
			fmt.Println(peer, "allowed")
		} else {
			fmt.Println(peer, "denied", resp.GetDeniedResponse().GetStatus().GetCode())
		}
	}
	// Output:
	// spiffe://cluster.local/ns/shop/sa/checkout allowed
	// spiffe://cluster.local/ns/shop/sa/web denied Forbidden
}
