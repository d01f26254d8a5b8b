package identity_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/wardenauthz/warden/identity"
	"github.com/wardenauthz/warden/identity/oidctest"
)

const introSecret = "s3cret/with+special&chars"

// introAuth is an Authenticator whose issuer introspects opaque tokens at
// is's real endpoint (from discovery), with a client secret from a file.
func introAuth(t *testing.T, is *oidctest.Issuer, mutate ...func(*identity.IntrospectionConfig)) (*identity.Authenticator, *clock) {
	t.Helper()
	is.EnableIntrospection("warden", introSecret)
	f := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(f, []byte(introSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return newAuth(t, is, func(c *identity.Config) {
		ic := &identity.IntrospectionConfig{ClientID: "warden", ClientSecretFile: f}
		for _, m := range mutate {
			m(ic)
		}
		c.Issuers[0].Introspection = ic
	})
}

func introClaims(is *oidctest.Issuer, sub string) map[string]any {
	c := is.Claims(sub, aud)
	c["client_id"] = "app"
	c["scope"] = "orders:read"
	return c
}

func TestIntrospectedTokenIsMappedLikeAJWT(t *testing.T) {
	is := oidctest.New(t)
	a, _ := introAuth(t, is)
	c := introClaims(is, "alice")
	c["groups"] = []any{"admins"}
	tok := is.Opaque(c)
	id, err := a.Authenticate(context.Background(), bearer(tok))
	if err != nil {
		t.Fatal(err)
	}
	if id.Kind != identity.User || id.ID != "corp|alice" || id.Token == nil || !id.Token.Introspected {
		t.Fatalf("got %v %q %+v, want an introspected User corp|alice", id.Kind, id.ID, id.Token)
	}
	if id.Credential != identity.CredentialIntrospected {
		t.Errorf("credential kind %q", id.Credential)
	}
	if strings.Join(id.Token.Scopes, " ") != "orders:read" || id.Token.ClientID != "app" || strings.Join(id.Groups, ",") != "corp|admins" {
		t.Errorf("claims not mapped: scopes %v client %q groups %v", id.Token.Scopes, id.Token.ClientID, id.Groups)
	}
	forms := is.IntrospectionForms()
	if len(forms) != 1 || forms[0]["token"][0] != tok || forms[0]["token_type_hint"][0] != "access_token" {
		t.Errorf("forms %v", forms)
	}
	// Cached: a second Check does not call again.
	if _, err := a.Authenticate(context.Background(), bearer(tok)); err != nil {
		t.Fatal(err)
	}
	if n := is.IntrospectionCalls(); n != 1 {
		t.Errorf("%d introspection calls, want 1 (cached)", n)
	}
	// A client-credentials answer (no sub) is a Client.
	cc := introClaims(is, "")
	delete(cc, "sub")
	id, err = a.Authenticate(context.Background(), bearer(is.Opaque(cc)))
	if err != nil || id.Kind != identity.Client || id.ID != "corp|app" {
		t.Errorf("client credentials: %v %q %v", id.Kind, id.ID, err)
	}
}

// TestIntrospectionRefusals: every answer that is not an unambiguous
// active: true for this issuer, audience and time is a refusal (401) or,
// when the answer is unusable, unavailable (503); never an identity.
func TestIntrospectionRefusals(t *testing.T) {
	is := oidctest.New(t)
	a, clk := introAuth(t, is)
	good := func() map[string]any { return introClaims(is, "alice") }
	raw := func(body string) string {
		tok := is.Opaque(nil)
		is.SetIntrospectionAnswer(tok, []byte(body))
		return tok
	}
	with := func(k string, v any) string {
		c := good()
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
		return is.Opaque(c)
	}
	inactive := is.Opaque(good())
	is.Deactivate(inactive)
	now := clk.Now()
	for _, tc := range []struct {
		name        string
		tok         string
		unavailable bool
	}{
		{"active false", inactive, false},
		{"unknown token", "op_never_issued", false},
		{"missing active", raw(`{"sub":"alice","iss":"` + is.URL + `","aud":"` + aud + `","exp":9999999999}`), true},
		{"active as string", raw(`{"active":"true","sub":"alice","iss":"` + is.URL + `","aud":"` + aud + `","exp":9999999999}`), true},
		{"active as 1", raw(`{"active":1,"sub":"alice","iss":"` + is.URL + `","aud":"` + aud + `","exp":9999999999}`), true},
		{"active twice", raw(`{"active":false,"active":true,"sub":"alice","iss":"` + is.URL + `","aud":"` + aud + `","exp":9999999999}`), true},
		{"Active in other case", raw(`{"Active":true,"active":true,"sub":"alice","iss":"` + is.URL + `","aud":"` + aud + `","exp":9999999999}`), true},
		{"not an object", raw(`[true]`), true},
		{"garbage", raw(`<html>`), true},
		{"iss mismatch", with("iss", "https://evil.example"), false},
		{"no iss", with("iss", nil), false},
		{"expired", with("exp", now.Add(-time.Hour).Unix()), false},
		{"no exp", with("exp", nil), false},
		{"not yet valid", with("nbf", now.Add(time.Hour).Unix()), false},
		{"wrong audience", with("aud", "api://other"), false},
		{"no audience", with("aud", nil), false},
		{"sender-constrained", with("cnf", map[string]any{"jkt": "abc"}), false},
		{"control character in sub", with("sub", "al\nice"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id, err := a.Authenticate(context.Background(), bearer(tc.tok))
			if err == nil {
				t.Fatalf("accepted as %v %q", id.Kind, id.ID)
			}
			if identity.IsUnavailable(err) != tc.unavailable {
				t.Errorf("unavailable %v, want %v (%v)", identity.IsUnavailable(err), tc.unavailable, err)
			}
			if strings.Contains(err.Error(), tc.tok) {
				t.Errorf("error holds the token: %v", err)
			}
		})
	}
}

func TestIntrospectionEndpointDownIs503AndNotCached(t *testing.T) {
	is := oidctest.New(t)
	a, _ := introAuth(t, is)
	tok := is.Opaque(introClaims(is, "alice"))
	is.SetIntrospectionDown(true)
	_, err := a.Authenticate(context.Background(), bearer(tok))
	if !identity.IsUnavailable(err) || identity.RetryAfter(err, 0) <= 0 {
		t.Fatalf("endpoint down: %v, want unavailable with a Retry-After", err)
	}
	is.SetIntrospectionDown(false)
	if _, err := a.Authenticate(context.Background(), bearer(tok)); err != nil {
		t.Fatalf("endpoint back: %v (an outage must not be cached)", err)
	}
}

func TestIntrospectionUnreachableIs503(t *testing.T) {
	is := oidctest.New(t)
	a, _ := introAuth(t, is, func(c *identity.IntrospectionConfig) { c.Endpoint = "http://127.0.0.1:1/introspect" })
	_, err := a.Authenticate(context.Background(), bearer(is.Opaque(introClaims(is, "alice"))))
	if !identity.IsUnavailable(err) {
		t.Fatalf("unreachable: %v, want unavailable", err)
	}
}

// TestIntrospectionSlowEndpointIsBounded: at most max_concurrent calls are
// under way at once, and a slow endpoint costs each Check at most the
// timeout (then 503).
func TestIntrospectionSlowEndpointIsBounded(t *testing.T) {
	is := oidctest.New(t)
	a, _ := introAuth(t, is, func(c *identity.IntrospectionConfig) {
		c.Timeout = 10 * time.Second
		c.MaxConcurrent = 2
	})
	run := func(n int) []error {
		var wg sync.WaitGroup
		errs := make([]error, n)
		for i := range n {
			wg.Go(func() {
				_, errs[i] = a.Authenticate(context.Background(), bearer(is.Opaque(introClaims(is, fmt.Sprint("u", i)))))
			})
		}
		wg.Wait()
		return errs
	}
	is.SetIntrospectionDelay(20 * time.Millisecond)
	for i, err := range run(8) {
		if err != nil {
			t.Errorf("call %d: %v", i, err)
		}
	}
	if c := is.IntrospectionMaxInFlight(); c > 2 {
		t.Errorf("%d calls were under way at once, want at most max_concurrent (2)", c)
	}
	b, _ := introAuth(t, is, func(c *identity.IntrospectionConfig) { c.Timeout = 100 * time.Millisecond })
	a = b
	is.SetIntrospectionDelay(time.Hour)
	for i, err := range run(4) {
		if !identity.IsUnavailable(err) {
			t.Errorf("slow endpoint, call %d: %v, want unavailable", i, err)
		}
	}
}

// TestIntrospectionSingleFlight: concurrent Checks with one token make one
// call; with different tokens, each gets its own answer (no poisoning).
func TestIntrospectionSingleFlightAndNoPoisoning(t *testing.T) {
	is := oidctest.New(t)
	a, _ := introAuth(t, is)
	is.SetIntrospectionDelay(50 * time.Millisecond)
	alice := is.Opaque(introClaims(is, "alice"))
	bob := is.Opaque(introClaims(is, "bob"))
	dead := is.Opaque(introClaims(is, "mallory"))
	is.Deactivate(dead)
	var wg sync.WaitGroup
	ids := make([]string, 30)
	for i := range ids {
		tok := []string{alice, bob, dead}[i%3]
		wg.Go(func() {
			id, err := a.Authenticate(context.Background(), bearer(tok))
			if err != nil {
				ids[i] = "refused"
				return
			}
			ids[i] = id.ID
		})
	}
	wg.Wait()
	for i, got := range ids {
		want := []string{"corp|alice", "corp|bob", "refused"}[i%3]
		if got != want {
			t.Errorf("check %d: %s, want %s", i, got, want)
		}
	}
	if c := is.IntrospectionCalls(); c != 3 {
		t.Errorf("%d calls, want 3 (one per token)", c)
	}
}

func TestIntrospectionCacheLifetime(t *testing.T) {
	is := oidctest.New(t)
	a, clk := introAuth(t, is, func(c *identity.IntrospectionConfig) {
		c.CacheTTL = time.Minute
		c.NegativeTTL = 5 * time.Second
	})
	tok := is.Opaque(introClaims(is, "alice"))
	if _, err := a.Authenticate(context.Background(), bearer(tok)); err != nil {
		t.Fatal(err)
	}
	is.Deactivate(tok) // revoked at the issuer
	clk.Add(30 * time.Second)
	if _, err := a.Authenticate(context.Background(), bearer(tok)); err != nil {
		t.Fatalf("within cache_ttl: %v", err)
	}
	clk.Add(31 * time.Second)
	if _, err := a.Authenticate(context.Background(), bearer(tok)); !errors.Is(err, identity.ErrInactive) {
		t.Fatalf("after cache_ttl: %v, want inactive", err)
	}
	calls := is.IntrospectionCalls()
	clk.Add(4 * time.Second)
	_, _ = a.Authenticate(context.Background(), bearer(tok))
	if is.IntrospectionCalls() != calls {
		t.Errorf("negative answer not cached")
	}
	// A token expiring before cache_ttl is cached until its exp only.
	c := introClaims(is, "bob")
	c["exp"] = clk.Now().Add(10 * time.Second).Unix()
	short := is.Opaque(c)
	if _, err := a.Authenticate(context.Background(), bearer(short)); err != nil {
		t.Fatal(err)
	}
	calls = is.IntrospectionCalls()
	clk.Add(11 * time.Second)
	_, _ = a.Authenticate(context.Background(), bearer(short))
	if is.IntrospectionCalls() != calls+1 {
		t.Fatal("answered from the cache after the token's exp")
	}
}

func TestIntrospectionWrongClientSecretIs503(t *testing.T) {
	is := oidctest.New(t)
	a, _ := introAuth(t, is)
	is.EnableIntrospection("warden", "another secret")
	_, err := a.Authenticate(context.Background(), bearer(is.Opaque(introClaims(is, "alice"))))
	if !identity.IsUnavailable(err) {
		t.Fatalf("endpoint refused our client: %v, want unavailable", err)
	}
}

func TestIntrospectionPrivateKeyJWT(t *testing.T) {
	is := oidctest.New(t)
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "client.pem")
	if err := os.WriteFile(f, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	is.EnableIntrospectionKey("warden", jose.JSONWebKey{Key: k.Public()})
	a, _ := newAuth(t, is, func(c *identity.Config) {
		c.Issuers[0].Introspection = &identity.IntrospectionConfig{ClientID: "warden", PrivateKeyJWT: &identity.PrivateKeyJWTConfig{KeyFile: f}}
	})
	id, err := a.Authenticate(context.Background(), bearer(is.Opaque(introClaims(is, "alice"))))
	if err != nil || id.ID != "corp|alice" {
		t.Fatalf("private_key_jwt: %v %q", err, id.ID)
	}
	// Another key is refused by the endpoint: 503, never an allow.
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	is.EnableIntrospectionKey("warden", jose.JSONWebKey{Key: other.Public()})
	if _, err := a.Authenticate(context.Background(), bearer(is.Opaque(introClaims(is, "bob")))); !identity.IsUnavailable(err) {
		t.Fatalf("assertion with another key: %v, want unavailable", err)
	}
}

// TestIntrospectionJWTResponse: RFC 9701 signed answers, verified with the
// issuer's keys; with jwt_response: true, a plain JSON answer is refused.
func TestIntrospectionJWTResponse(t *testing.T) {
	is := oidctest.New(t)
	a, _ := introAuth(t, is, func(c *identity.IntrospectionConfig) { c.JWTResponse = true })
	id, err := a.Authenticate(context.Background(), bearer(is.Opaque(introClaims(is, "alice"))))
	if err != nil || id.ID != "corp|alice" {
		t.Fatalf("signed answer: %v %q", err, id.ID)
	}
	tok := is.Opaque(nil)
	is.SetIntrospectionAnswer(tok, []byte(`{"active":true,"sub":"mallory","iss":"`+is.URL+`","aud":"`+aud+`","exp":9999999999}`))
	if _, err := a.Authenticate(context.Background(), bearer(tok)); !identity.IsUnavailable(err) {
		t.Fatalf("plain JSON with jwt_response: %v, want unavailable", err)
	}
	// Signed by a key the issuer does not publish: unusable.
	is.SetIntrospectionSigner(oidctest.RSAKey("k1", 2))
	if _, err := a.Authenticate(context.Background(), bearer(is.Opaque(introClaims(is, "bob")))); !identity.IsUnavailable(err) {
		t.Fatalf("answer signed by another key: %v, want unavailable", err)
	}
}

func TestOpaqueTokenWithoutIntrospectionIsMalformed(t *testing.T) {
	is := oidctest.New(t)
	a, _ := newAuth(t, is)
	if _, err := a.Authenticate(context.Background(), bearer("op_abcdef")); !errors.Is(err, identity.ErrMalformed) {
		t.Fatalf("got %v, want malformed", err)
	}
}

// TestIntrospectionConfigErrors: config mistakes are key-path errors.
func TestIntrospectionConfigErrors(t *testing.T) {
	cfg := identity.Config{Issuers: []identity.IssuerConfig{
		{Name: "a", Issuer: "https://a.example", Audiences: []string{aud}, Introspection: &identity.IntrospectionConfig{ClientID: "w", ClientSecretEnv: "X", ClientSecretFile: "f"}},
		{Name: "b", Issuer: "https://b.example", Audiences: []string{aud}, Introspection: &identity.IntrospectionConfig{Endpoint: "http://b.example/i", ClientSecretEnv: "X"}},
	}}
	cfg.SetDefaults()
	err := cfg.Validate()
	for _, want := range []string{
		"issuers[0].introspection: set exactly one of",
		"issuers[1].introspection.endpoint:",
		"issuers[1].introspection.client_id: is required",
		"issuers[1].introspection.tokens: opaque tokens carry no issuer",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in %v", want, err)
		}
	}
}
