package authz

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"testing/fstest"
	"time"
	"unsafe"
	"weak"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/protobuf/proto"

	"github.com/wardenauthz/warden/authz/decisionlog"
	"github.com/wardenauthz/warden/identity"
	"github.com/wardenauthz/warden/policy"
)

// TestWireRequestNotRetained: a request decoded from the wire keeps its
// strings in one allocation (decodeCheckRequest), so anything that
// outlives the Check and holds one of them keeps the whole request. After
// Checks of workloads, with extensions, routes and a decision log that
// keeps records in a Ring, none is kept: the policy set's principal and
// context caches and the log hold copies.
func TestWireRequestNotRetained(t *testing.T) {
	now := time.Date(2026, 6, 2, 14, 30, 0, 0, time.UTC)
	authn, err := identity.New(identity.Config{}, identity.Options{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	fsys := fstest.MapFS{"policies/p.cedar": {Data: []byte(`
@id("checkout")
permit(principal == Workload::"spiffe://cluster.local/ns/shop/sa/checkout-1", action, resource)
when { context.route.service like "*" };
`)}}
	policies, err := policy.NewEngine(policy.Source{FS: fsys, Dir: "policies", Name: "policies"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ring := decisionlog.NewRing(1000, 0)
	log := decisionlog.New(decisionlog.Options{Size: 1000, Keep: ring})
	a := New(Options{Authenticator: authn, Policies: policies, Now: func() time.Time { return now }, Recorder: log})

	var held []weak.Pointer[byte]
	for i := range 200 {
		b, err := proto.Marshal(&authv3.CheckRequest{Attributes: &authv3.AttributeContext{
			Source: &authv3.AttributeContext_Peer{Principal: fmt.Sprintf("spiffe://cluster.local/ns/shop/sa/checkout-%d", i%3),
				Address: &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{Address: "10.0.0.7", PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: uint32(40000 + i%2)}}}}},
			ContextExtensions: map[string]string{"service": fmt.Sprintf("svc-%d", i%2)},
			Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
				Method: "POST", Host: "orders", Path: fmt.Sprintf("/orders/%d", i), Scheme: "https", Protocol: "HTTP/1.1",
				Headers: map[string]string{"x-request-id": fmt.Sprint(i), "x-padding": string(make([]byte, 4096))},
			}},
		}})
		if err != nil {
			t.Fatal(err)
		}
		ci, n, err := decodeCheckRequest(b, Limits{})
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, weak.Make(unsafe.StringData(ci.principal)))
		out := a.evaluate(context.Background(), ci, n)
		if want := i%3 == 1; (out.Record.Decision == Allow) != want {
			t.Fatalf("check %d: %s %s", i, out.Record.Decision, out.Record.Reason)
		}
	}
	if err := log.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n, _ := ring.Len(); n == 0 {
		t.Fatal("the ring kept no records: the test does not reach it")
	}
	runtime.GC()
	runtime.GC()
	kept := 0
	for _, w := range held {
		if w.Value() != nil {
			kept++
		}
	}
	if kept > 0 {
		t.Errorf("%d of %d requests' strings still held after their Checks", kept, len(held))
	}
	runtime.KeepAlive(a)
	runtime.KeepAlive(ring)
}
