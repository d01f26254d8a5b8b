package interop_test

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/wardenauthz/warden/identity"
	"github.com/wardenauthz/warden/identity/oidctest"
	"github.com/wardenauthz/warden/internal/testpki"
	"github.com/wardenauthz/warden/ratelimit"
)

// boundWarden is a started Authenticator trusting p with the store's
// replay cache (the memory store's), as a server builds it.
func boundWarden(t *testing.T, p *provider) *identity.Authenticator {
	t.Helper()
	skew := 30 * time.Second
	cfg := identity.Config{Issuers: []identity.IssuerConfig{{
		Name: "op", Issuer: p.Issuer, Audiences: []string{resRS, resES, resEd},
		Algorithms: []string{"RS256", "ES256", "EdDSA"}, RequireTyp: "at+jwt", ClockSkew: &skew,
	}}}
	a, err := identity.New(cfg, identity.Options{Replay: ratelimit.NewMemory()})
	if err != nil {
		t.Fatal(err)
	}
	start(t, a)
	return a
}

// postToken asks p's token endpoint for a client credentials token with
// extra request headers; it returns the token and its token_type.
func postToken(t *testing.T, p *provider, id, secret, resource string, headers map[string]string) (string, string) {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}, "resource": {resource}, "scope": {"orders:read"}}
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, p.Issuer+"/token", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(id, secret)
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || out.AccessToken == "" {
		t.Fatalf("token: %s %s %s %v", resp.Status, out.Error, out.Description, err)
	}
	return out.AccessToken, out.TokenType
}

const apiURI = "https://api.example.com/orders/1"

var apiRequest = identity.Request{Method: "GET", Scheme: "https", Host: "api.example.com", Path: "/orders/1?x=1"}

// TestProviderDPoPTokens: oidc-provider issues a DPoP-bound token (cnf.jkt)
// to a client that proves its key at the token endpoint; Warden accepts it
// with a proof by that key for the request, and refuses it as a bearer
// token, with a replayed proof, or with another key's proof.
func TestProviderDPoPTokens(t *testing.T) {
	p := startProvider(t, newKeys(t, 0, "k1"))
	a := boundWarden(t, p)
	c := oidctest.NewClient()
	tokenProof := oidctest.ProofClaims("POST", p.Issuer+"/token", "", time.Now())
	delete(tokenProof, "ath") // no token yet
	tok, typ := postToken(t, p, "svc", "svc-secret-for-tests-only", resES, map[string]string{"DPoP": c.Proof(t, tokenProof, nil)})
	if cnf, _ := claims(t, tok)["cnf"].(map[string]any); typ != "DPoP" || cnf["jkt"] != c.JKT() {
		t.Fatalf("provider token: type %s, cnf %v", typ, claims(t, tok)["cnf"])
	}
	in := func(scheme string, proof string) identity.Input {
		return identity.Input{Authorization: identity.Credential(scheme + " " + tok), DPoP: proof, Request: apiRequest}
	}
	proof := c.Proof(t, oidctest.ProofClaims("GET", apiURI, tok, time.Now()), nil)
	id, err := a.Authenticate(context.Background(), in("DPoP", proof))
	if err != nil || id.Credential != identity.CredentialDPoP || id.Kind != identity.Client {
		t.Fatalf("DPoP: %+v %v", id, err)
	}
	if _, err := a.Authenticate(context.Background(), in("DPoP", proof)); !errors.Is(err, identity.ErrDPoPProof) {
		t.Fatalf("replayed proof: %v", err)
	}
	if _, err := a.Authenticate(context.Background(), in("Bearer", "")); !errors.Is(err, identity.ErrDPoPBound) {
		t.Fatalf("as bearer: %v", err)
	}
	other := oidctest.NewClient().Proof(t, oidctest.ProofClaims("GET", apiURI, tok, time.Now()), nil)
	if _, err := a.Authenticate(context.Background(), in("DPoP", other)); !errors.Is(err, identity.ErrDPoPProof) {
		t.Fatalf("another key's proof: %v", err)
	}
}

// TestProviderCertificateBoundTokens: oidc-provider binds client "bound"'s
// token to its certificate (cnf.x5t#S256); Warden accepts it over that
// certificate only.
func TestProviderCertificateBoundTokens(t *testing.T) {
	p := startProvider(t, newKeys(t, 0, "k1"))
	a := boundWarden(t, p)
	ca := testpki.NewCA(t, "ca")
	mine, theirs := ca.Client(t, "mine", "").Certificate(t), ca.Client(t, "theirs", "").Certificate(t)
	tok, _ := postToken(t, p, "bound", "bound-secret-for-tests-only", resRS, map[string]string{"x-test-client-cert": oidctest.EnvoyCert(mine)})
	if cnf, _ := claims(t, tok)["cnf"].(map[string]any); cnf["x5t#S256"] != oidctest.X5T(mine.Raw) {
		t.Fatalf("provider token cnf %v", claims(t, tok)["cnf"])
	}
	in := func(cert *x509.Certificate) identity.Input {
		i := identity.Input{Authorization: identity.Credential("Bearer " + tok)}
		if cert != nil {
			i.Certificate = oidctest.EnvoyCert(cert)
		}
		return i
	}
	if id, err := a.Authenticate(context.Background(), in(mine)); err != nil || id.Credential != identity.CredentialMTLSBound {
		t.Fatalf("own certificate: %+v %v", id, err)
	}
	for _, c := range []*x509.Certificate{theirs, nil} {
		if _, err := a.Authenticate(context.Background(), in(c)); !errors.Is(err, identity.ErrCertBound) {
			t.Fatalf("other or no certificate: %v", err)
		}
	}
}
