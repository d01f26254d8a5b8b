package authz_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	"testing/fstest"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/wardenauthz/warden/authz"
	"github.com/wardenauthz/warden/identity"
	"github.com/wardenauthz/warden/policy"
)

// An Authorizer answers Envoy's CheckRequests: it authenticates the caller
// (here a token of the built-in dev issuer, and a SPIFFE workload from the
// mTLS peer certificate), asks the Cedar policies, and returns an OK
// response with identity headers or a denied one with its HTTP status.
func ExampleAuthorizer_Check() {
	now := time.Date(2026, 6, 2, 14, 30, 0, 0, time.UTC)
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		fmt.Println(err)
		return
	}
	authn, err := identity.New(identity.Config{DevIssuer: identity.DevIssuerConfig{Enabled: true}},
		identity.Options{DevKey: key, Now: func() time.Time { return now }})
	if err != nil {
		fmt.Println(err)
		return
	}
	fsys := fstest.MapFS{"policies/orders.cedar": {Data: []byte(`
@id("staff-read")
permit(principal in Group::"dev|staff", action == Action::"GET", resource);

@id("checkout-writes")
permit(principal == Workload::"spiffe://cluster.local/ns/shop/sa/checkout", action == Action::"POST", resource);
`)}}
	policies, err := policy.NewEngine(policy.Source{FS: fsys, Dir: "policies", Name: "policies"}, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	a := authz.New(authz.Options{Authenticator: authn, Policies: policies, Now: func() time.Time { return now }})

	token, err := identity.SignDevToken(key, identity.DevTokenOptions{Subject: "alice", Groups: []string{"staff"}, Now: now})
	if err != nil {
		fmt.Println(err)
		return
	}
	check := func(method, authorization, peer string) {
		req := &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
			Source: &authv3.AttributeContext_Peer{Principal: peer, Address: &corev3.Address{}},
			Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
				Method: method, Host: "orders", Path: "/orders/42", Scheme: "https", Protocol: "HTTP/1.1",
			}},
		}}
		if authorization != "" {
			req.Attributes.Request.Http.Headers = map[string]string{"authorization": authorization}
		}
		resp, _ := a.Check(context.Background(), req)
		if ok := resp.GetOkResponse(); ok != nil {
			for _, h := range ok.GetHeaders() {
				if h.GetHeader().GetKey() == "x-warden-principal" {
					fmt.Println(method, "allowed:", h.GetHeader().GetValue())
				}
			}
			return
		}
		fmt.Println(method, "denied:", resp.GetDeniedResponse().GetStatus().GetCode(),
			resp.GetDynamicMetadata().GetFields()["reason"].GetStringValue())
	}
	check("GET", "Bearer "+token, "")
	check("POST", "Bearer "+token, "")
	check("GET", "Bearer not.a.token", "")
	check("POST", "", "spiffe://cluster.local/ns/shop/sa/checkout")
	check("POST", "", "spiffe://cluster.local/ns/shop/sa/web")
	// Output:
	// GET allowed: User::"dev|alice"
	// POST denied: Forbidden policy_deny
	// GET denied: Unauthorized token_invalid
	// POST allowed: Workload::"spiffe://cluster.local/ns/shop/sa/checkout"
	// POST denied: Forbidden policy_deny
}
