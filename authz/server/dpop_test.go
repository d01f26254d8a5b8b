package server_test

import (
	"context"
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/wardenauthz/warden/authz/config"
	"github.com/wardenauthz/warden/identity/oidctest"
	"github.com/wardenauthz/warden/internal/testpki"
	"github.com/wardenauthz/warden/policy"
	"github.com/wardenauthz/warden/ratelimit/redistest"
)

// The sample request's URL (01-get-bearer-jwt.json), as a proof names it.
const sampleURI = "https://api.example.com/v1/orders/42"

// dpopCfg lets the test issuer's tokens be proven with ES256 keys.
func dpopCfg(c *config.Config) {
	c.Identity.Issuers[0].DPoPAlgorithms = []string{"ES256", "RS256"}
}

// boundToken is a corp staff token for sub carrying cnf.
func (e *env) boundToken(t testing.TB, sub string, cnf map[string]any) string {
	c := map[string]any{
		"iss": e.is.URL, "sub": sub, "aud": aud, "iat": 1780000000, "exp": 4102444800,
		"jti": "jti-" + sub, "groups": []string{"staff"}, "scope": "orders:read", "cnf": cnf,
	}
	return e.is.Sign(t, c)
}

// dpopSample is the sample GET presenting token with scheme and, when not
// "", the DPoP header proof.
func dpopSample(t testing.TB, scheme, token, proof string) *authv3.CheckRequest {
	req := sample(t, "01-get-bearer-jwt.json", token)
	h := req.GetAttributes().GetRequest().GetHttp().GetHeaders()
	h["authorization"] = scheme + " " + token
	if proof != "" {
		h["dpop"] = proof
	}
	return req
}

func proofFor(t testing.TB, c *oidctest.Client, token string, mutate ...func(map[string]any)) string {
	cl := oidctest.ProofClaims("GET", sampleURI, token, fixedNow())
	for _, m := range mutate {
		m(cl)
	}
	return c.Proof(t, cl, nil)
}

// deny checks a 401 whose WWW-Authenticate starts with want.
func deny401(t testing.TB, e *env, req *authv3.CheckRequest, want string) *authv3.DeniedHttpResponse {
	t.Helper()
	resp, err := e.client.Check(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	d := resp.GetDeniedResponse()
	if d.GetStatus().GetCode() != 401 {
		t.Fatalf("status %d, want 401 (%s)", d.GetStatus().GetCode(), d.GetBody())
	}
	var www string
	for _, h := range d.GetHeaders() {
		if h.GetHeader().GetKey() == "www-authenticate" {
			www = h.GetHeader().GetValue()
		}
	}
	if !strings.HasPrefix(www, want) {
		t.Fatalf("www-authenticate %q, want it to start with %q", www, want)
	}
	return d
}

func allowed(t testing.TB, e *env, req *authv3.CheckRequest) {
	t.Helper()
	resp, err := e.client.Check(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if r := resp.GetDynamicMetadata().GetFields()["reason"].GetStringValue(); r != "policy_allow" {
		t.Fatalf("reason %s (%s)", r, resp.GetDeniedResponse().GetBody())
	}
}

// TestDPoPOverGRPC: a DPoP-bound token with its proof is allowed over a
// real gRPC Check; the proof replayed, a proof for another request, the
// token as Bearer, two DPoP headers are 401 with the RFC 9449 challenge.
func TestDPoPOverGRPC(t *testing.T) {
	e := start(t, dpopCfg)
	c := oidctest.NewClient()
	tok := e.boundToken(t, "alice", map[string]any{"jkt": c.JKT()})
	p := proofFor(t, c, tok)
	allowed(t, e, dpopSample(t, "DPoP", tok, p))
	const invalidProof = `DPoP error="invalid_dpop_proof", error_description="invalid DPoP proof", algs="ES256 RS256"`
	deny401(t, e, dpopSample(t, "DPoP", tok, p), invalidProof) // replayed
	deny401(t, e, dpopSample(t, "DPoP", tok, proofFor(t, c, tok, func(m map[string]any) { m["htm"] = "POST" })), invalidProof)
	deny401(t, e, dpopSample(t, "DPoP", tok, proofFor(t, c, tok, func(m map[string]any) { m["htu"] = sampleURI + "?x=1" })), invalidProof)
	deny401(t, e, dpopSample(t, "DPoP", tok, proofFor(t, c, tok, func(m map[string]any) { m["htu"] = "https://api.example.com:8443/v1/orders/42" })), invalidProof)
	deny401(t, e, dpopSample(t, "DPoP", tok, proofFor(t, c, tok)+","+proofFor(t, c, tok)), invalidProof)
	deny401(t, e, dpopSample(t, "DPoP", tok, ""), invalidProof)
	deny401(t, e, dpopSample(t, "Bearer", tok, proofFor(t, c, tok)), `DPoP error="invalid_token"`)
	// A plain bearer token still works (dpop: allowed).
	allowed(t, e, dpopSample(t, "Bearer", e.token(t, "bob", "staff"), ""))
}

// TestDPoPNonceOverGRPC: with dpop_nonce the first proof is answered 401
// use_dpop_nonce with a DPoP-Nonce header; a proof carrying it is allowed.
func TestDPoPNonceOverGRPC(t *testing.T) {
	e := start(t, dpopCfg, func(c *config.Config) { c.Identity.Issuers[0].DPoPNonce = true })
	c := oidctest.NewClient()
	tok := e.boundToken(t, "alice", map[string]any{"jkt": c.JKT()})
	d := deny401(t, e, dpopSample(t, "DPoP", tok, proofFor(t, c, tok)), `DPoP error="use_dpop_nonce"`)
	var nonce string
	for _, h := range d.GetHeaders() {
		if h.GetHeader().GetKey() == "dpop-nonce" {
			nonce = h.GetHeader().GetValue()
		}
	}
	if nonce == "" {
		t.Fatal("no DPoP-Nonce header")
	}
	allowed(t, e, dpopSample(t, "DPoP", tok, proofFor(t, c, tok, func(m map[string]any) { m["nonce"] = nonce })))
}

// TestDPoPReplayAcrossReplicas: a proof accepted by one Warden is refused
// by another sharing the redis-server (the replay cache is the store's).
func TestDPoPReplayAcrossReplicas(t *testing.T) {
	srv := redistest.Start(t)
	redisCfg := func(c *config.Config) {
		c.Store.Kind = "redis"
		c.Store.Redis.Addrs = []string{srv.Addr}
	}
	a := start(t, dpopCfg, redisCfg)
	b := startWith(t, a.is, dpopCfg, redisCfg)
	c := oidctest.NewClient()
	tok := a.boundToken(t, "alice", map[string]any{"jkt": c.JKT()})
	p := proofFor(t, c, tok)
	allowed(t, a, dpopSample(t, "DPoP", tok, p))
	deny401(t, b, dpopSample(t, "DPoP", tok, p), `DPoP error="invalid_dpop_proof"`)
	allowed(t, b, dpopSample(t, "DPoP", tok, proofFor(t, c, tok))) // a fresh proof
	// Redis down: the proof cannot be judged; 503, never an allow.
	srv.Pause(true)
	defer srv.Pause(false)
	resp, err := a.client.Check(context.Background(), dpopSample(t, "DPoP", tok, proofFor(t, c, tok)))
	if err != nil {
		t.Fatal(err)
	}
	if code := resp.GetDeniedResponse().GetStatus().GetCode(); code != 503 {
		t.Fatalf("Redis paused: %d, want 503", code)
	}
}

// TestCertificateBoundOverGRPC: a cnf.x5t#S256 token is allowed only with
// the certificate Envoy forwards (include_peer_certificate) matching it.
func TestCertificateBoundOverGRPC(t *testing.T) {
	e := start(t)
	ca := testpki.NewCA(t, "ca")
	mine, theirs := ca.Client(t, "mine", "").Certificate(t), ca.Client(t, "theirs", "").Certificate(t)
	tok := e.boundToken(t, "alice", map[string]any{"x5t#S256": oidctest.X5T(mine.Raw)})
	withCert := func(c *x509.Certificate) *authv3.CheckRequest {
		req := dpopSample(t, "Bearer", tok, "")
		if c != nil {
			req.Attributes.Source.Certificate = oidctest.EnvoyCert(c)
		}
		return req
	}
	allowed(t, e, withCert(mine))
	const invalid = `Bearer error="invalid_token", error_description="token bound to another client certificate"`
	deny401(t, e, withCert(theirs), invalid)
	deny401(t, e, withCert(nil), invalid)
}

// TestCredentialKindReachesPolicies: context.credential.kind is what the
// caller presented, so a policy can demand a sender-constrained token.
func TestCredentialKindReachesPolicies(t *testing.T) {
	dir := t.TempDir()
	src := `@id("bound-only") permit (principal, action, resource)
when { context has credential && ["dpop", "mtls_bound"].contains(context.credential.kind) &&
       context has token && context.token has cnf };`
	if err := os.WriteFile(filepath.Join(dir, "p.cedar"), []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	e := start(t, dpopCfg, func(c *config.Config) { c.Policy.Dir = dir })
	c := oidctest.NewClient()
	tok := e.boundToken(t, "alice", map[string]any{"jkt": c.JKT()})
	allowed(t, e, dpopSample(t, "DPoP", tok, proofFor(t, c, tok)))
	if r := e.reason(t, e.token(t, "bob", "staff")); r != "policy_deny" {
		t.Fatalf("bearer token: %s, want policy_deny", r)
	}
}

// TestDPoPThroughEnvoy: through the Envoy stand-in (shipped config), the
// proof names the URL the client used, and the 401's challenge and
// DPoP-Nonce reach the client.
func TestDPoPThroughEnvoy(t *testing.T) {
	e := start(t, dpopCfg, func(c *config.Config) {
		c.Identity.Issuers[0].DPoPNonce = true
		c.Policy.Routes = append(c.Policy.Routes, policy.RouteConfig{Service: "orders", Method: "*", Path: "/orders/{id}", Resource: `Order::"{id}"`})
	})
	up := newUpstream(t)
	base := front(t, e.client, up)
	c := oidctest.NewClient()
	tok := e.boundToken(t, "alice", map[string]any{"jkt": c.JKT()})
	proof := func(nonce string) string {
		cl := oidctest.ProofClaims("GET", base+"/orders/42", tok, fixedNow())
		if nonce != "" {
			cl["nonce"] = nonce
		}
		return c.Proof(t, cl, nil)
	}
	resp, _ := do(t, "GET", base+"/orders/42?page=1", "authorization: DPoP "+tok, "dpop: "+proof(""))
	nonce := resp.Header.Get("dpop-nonce")
	if resp.StatusCode != 401 || nonce == "" || !strings.Contains(resp.Header.Get("www-authenticate"), `error="use_dpop_nonce"`) {
		t.Fatalf("first proof: %d %v", resp.StatusCode, resp.Header)
	}
	resp, body := do(t, "GET", base+"/orders/42?page=1", "authorization: DPoP "+tok, "dpop: "+proof(nonce))
	if resp.StatusCode != 200 {
		t.Fatalf("proof with the nonce: %d %s", resp.StatusCode, body)
	}
	// Two DPoP header fields: Envoy joins them; refused.
	resp, _ = do(t, "GET", base+"/orders/42", "authorization: DPoP "+tok, "dpop: "+proof(nonce), "dpop: "+proof(nonce))
	if resp.StatusCode != 401 || !strings.Contains(resp.Header.Get("www-authenticate"), `error="invalid_dpop_proof"`) {
		t.Fatalf("two DPoP headers: %d %v", resp.StatusCode, resp.Header)
	}
	if n := len(up.take()); n != 1 {
		t.Fatalf("upstream got %d requests, want 1", n)
	}
}

// TestDPoPSchemeInvalidToken: a DPoP request whose token is invalid (here
// expired) gets the DPoP challenge, not a Bearer one (RFC 9449 §7.1).
func TestDPoPSchemeInvalidToken(t *testing.T) {
	e := start(t, dpopCfg)
	c := oidctest.NewClient()
	cl := map[string]any{"iss": e.is.URL, "sub": "alice", "aud": aud, "iat": 1700000000, "exp": 1700000300, "cnf": map[string]any{"jkt": c.JKT()}}
	tok := e.is.Sign(t, cl)
	deny401(t, e, dpopSample(t, "DPoP", tok, proofFor(t, c, tok)), `DPoP error="invalid_token", error_description="token expired"`)
}
