package interop_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/wardenauthz/warden/identity"
)

const resOpaque = "https://opaque.example"

// TestProviderIntrospection: oidc-provider's opaque access tokens are
// judged at its introspection endpoint (endpoint from discovery,
// client_secret_basic), as plain JSON and as RFC 9701 signed answers;
// a token the provider revoked, and one for another audience, are refused.
func TestProviderIntrospection(t *testing.T) {
	p := startProvider(t, newKeys(t, 0, "k1"))
	t.Setenv("WARDEN_TEST_INTROSPECT", "warden-secret-for-tests-only")
	for _, signed := range []bool{false, true} {
		t.Run(map[bool]string{false: "json", true: "jwt"}[signed], func(t *testing.T) {
			skew := 30 * time.Second
			cfg := identity.Config{Issuers: []identity.IssuerConfig{{
				Name: "op", Issuer: p.Issuer, Audiences: []string{resOpaque}, Algorithms: []string{"RS256"}, ClockSkew: &skew,
				InsecureHTTP:  true,
				Introspection: &identity.IntrospectionConfig{ClientID: "warden", ClientSecretEnv: "WARDEN_TEST_INTROSPECT", JWTResponse: signed},
			}}}
			a, err := identity.New(cfg, identity.Options{})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			t.Cleanup(cancel)
			a.Start(ctx)
			deadline := time.Now().Add(10 * time.Second)
			for len(a.NotReady()) > 0 && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			tok := p.ClientCredentials(t, resOpaque)
			if strings.Count(tok, ".") >= 2 {
				t.Fatalf("the provider issued a JWT, not an opaque token")
			}
			id, err := check(a, tok)
			if err != nil {
				t.Fatalf("opaque token: %v", err)
			}
			if id.Kind != identity.Client || id.ID != "op|svc" || !id.Token.Introspected || strings.Join(id.Token.Scopes, " ") != "orders:read" {
				t.Errorf("got %v %q %+v", id.Kind, id.ID, id.Token)
			}
			if _, err := check(a, tok+"x"); err == nil {
				t.Error("an unknown token was accepted")
			}
			other := p.ClientCredentials(t, resRS) // a JWT for another audience
			if _, err := check(a, other); err == nil {
				t.Error("a token for another audience was accepted")
			}
		})
	}
}
