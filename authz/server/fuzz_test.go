package server_test

import (
	"context"
	"strings"
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/protobuf/proto"
)

// FuzzCheckRequest feeds arbitrary methods, paths, hosts, headers, peers and
// context extensions through the whole pipeline (CheckRequest → identity →
// Cedar mapping → response). Nothing may panic (the pipeline would turn a
// panic into a 503 "internal error", which the fuzzer treats as a failure),
// and every header Warden emits must be valid.
func FuzzCheckRequest(f *testing.F) {
	e := start(f)
	base := sample(f, "01-get-bearer-jwt.json", e.token(f, "alice", "staff"))
	f.Add("GET", "/v1/orders/42?x=1", "api.example.com", "x-warden-a", "v", "spiffe://cluster.local/ns/a/sa/b", "service", "orders", true)
	f.Add("DELETE", "/admin/users/%2e%2e/x", "admin.example.com:443", "cookie", "a=b", "CN=x", "", "", false)
	f.Add("PROPFIND", "//", "[::1]:80", "x", "\x00", "spiffe://", "k", "v", true)
	f.Fuzz(func(t *testing.T, method, path, host, hk, hv, peer, ek, ev string, keepAuth bool) {
		r := proto.Clone(base).(*authv3.CheckRequest)
		h := r.Attributes.Request.Http
		h.Method, h.Path, h.Host = method, path, host
		h.Headers[":path"], h.Headers[":method"], h.Headers[":authority"] = path, method, host
		if hk != "" {
			h.Headers[strings.ToLower(hk)] = hv
		}
		if !keepAuth {
			delete(h.Headers, "authorization")
		}
		r.Attributes.Source.Principal = peer
		if ek != "" {
			r.Attributes.ContextExtensions = map[string]string{ek: ev}
		}
		out := e.svc.Authorizer.Evaluate(context.Background(), r)
		if out.Record.Detail == "internal error" {
			t.Fatalf("internal error (panic) for %q %q %q", method, path, host)
		}
		if out.Response == nil || out.Response.Status == nil {
			t.Fatal("no response")
		}
		for _, hv := range out.Response.GetOkResponse().GetHeaders() {
			for _, c := range hv.GetHeader().GetValue() {
				if c < 0x20 && c != '\t' || c == 0x7f {
					t.Fatalf("invalid header value %q", hv.GetHeader().GetValue())
				}
			}
		}
	})
}
