package identity_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/wardenauthz/warden/identity"
	"github.com/wardenauthz/warden/identity/oidctest"
)

// An Authenticator trusting one OIDC issuer verifies its access tokens: the
// issuer here is a real provider on a loopback port, whose discovery
// document and JWKS the Authenticator fetches over HTTP on first use.
func ExampleAuthenticator_Authenticate() {
	is := oidctest.Start()
	defer is.Close()

	a, err := identity.New(identity.Config{Issuers: []identity.IssuerConfig{{
		Name:      "corp",
		Issuer:    is.URL,
		Audiences: []string{"api://orders"},
	}}}, identity.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}

	claims, _ := json.Marshal(map[string]any{
		"iss": is.URL, "sub": "alice", "aud": "api://orders", "groups": []string{"staff"},
		"iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix(),
	})
	token, err := oidctest.Mint(is.Key(""), claims, map[jose.HeaderKey]any{"typ": "at+jwt"})
	if err != nil {
		fmt.Println(err)
		return
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	id, err := a.Authenticate(ctx, identity.Input{Authorization: identity.Credential("Bearer " + token)})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(id.Kind, id.ID, id.Groups)

	// A token the issuer did not sign (another key under the same key id)
	// is an error, never anonymous.
	forged, _ := oidctest.Mint(oidctest.RSAKey("k1", 1), claims, map[jose.HeaderKey]any{"typ": "at+jwt"})
	_, err = a.Authenticate(ctx, identity.Input{Authorization: identity.Credential("Bearer " + forged)})
	fmt.Println(errors.Is(err, identity.ErrSignature))
	// Output:
	// User corp|alice [corp|staff]
	// true
}

// A SPIFFE identity from Envoy's peer principal (the mTLS peer certificate)
// is a workload principal when its trust domain is trusted.
func ExampleAuthenticator_Authenticate_workload() {
	a, err := identity.New(identity.Config{
		Workloads: identity.WorkloadsConfig{TrustDomains: []string{"cluster.local"}},
	}, identity.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	id, err := a.Authenticate(context.Background(), identity.Input{
		PeerPrincipal: "spiffe://cluster.local/ns/shop/sa/checkout",
	})
	fmt.Println(id.Kind, id.ID, err)

	id, err = a.Authenticate(context.Background(), identity.Input{
		PeerPrincipal: "spiffe://evil.example/ns/shop/sa/checkout",
	})
	fmt.Println(id.Kind, id.ID, err)
	// Output:
	// Workload spiffe://cluster.local/ns/shop/sa/checkout <nil>
	// Anonymous anonymous <nil>
}
