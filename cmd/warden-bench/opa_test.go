package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"

	"github.com/wardenauthz/warden/authz/checkreq"
	"github.com/wardenauthz/warden/identity/oidctest"
)

// The OPA-Envoy side by side needs an opa-envoy-plugin binary, which is not
// a dependency of this module: these tests run when
// WARDEN_BENCH_OPA_ENVOY names one (BENCHMARKS.md says how to build it;
// `go tool task bench-opa` sets it), and skip otherwise.
func opaBinary(t *testing.T) string {
	bin := os.Getenv("WARDEN_BENCH_OPA_ENVOY")
	if bin == "" {
		t.Skip("WARDEN_BENCH_OPA_ENVOY (an opa-envoy-plugin binary) not set")
	}
	return bin
}

// TestOPAEnvoySmoke: with -opa-envoy both OPA-Envoy configurations run
// after the no-op and Warden, opa-rbac's answers are checked (a wrong
// answer fails the run), and the report has their ratios.
func TestOPAEnvoySmoke(t *testing.T) {
	o := quick("load")
	o.opaEnvoy = opaBinary(t)
	var out bytes.Buffer
	if err := run(o, cpus{}, &out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	for _, want := range []string{"opa-empty", "opa-rbac", "ratios to the no-op", "warden/opa-rbac throughput", "Version "} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
	t.Log(out.String())
}

// TestOPARBACAnswers holds opa/rbac.rego to Warden's answers for every kind
// of request in the mix, and to 401 or 403 for tokens and requests the mix
// never sends (forged, wrong issuer or audience, unsigned, missing scope or
// MFA, another route), so that opa-rbac measures a policy that checks what
// Warden checks.
func TestOPARBACAnswers(t *testing.T) {
	bin := opaBinary(t)
	is := oidctest.Start()
	defer is.Close()
	dir := t.TempDir()
	o := quick("load")
	f, err := newFixture(dir, o, is, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := writeOPAData(dir, is); err != nil {
		t.Fatal(err)
	}
	ch, err := startOPA(cpus{}, bin, dir, "opa-rbac")
	if err != nil {
		t.Fatal(err)
	}
	defer ch.stop()
	conn, err := grpc.NewClient(ch.GRPC, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.ForceCodec(rawCodec{})))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ask := func(req []byte) (grpcCode, httpStatus int32) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var reply []byte
		if err := conn.Invoke(ctx, checkMethod, &req, &reply); err != nil {
			t.Fatal(err)
		}
		c, ok := statusCode(reply)
		h, ok2 := httpAnswer(reply)
		if !ok || !ok2 {
			t.Fatalf("unreadable CheckResponse %x", reply)
		}
		return c, h
	}
	for _, k := range f.kinds {
		for i, req := range k.reqs {
			c, h := ask(req)
			if h != k.wantHTTP || (c == 0) != (k.want == 0) {
				t.Errorf("%s #%d: status %d, HTTP %d; want HTTP %d (Warden: status %d)", k.name, i, c, h, k.wantHTTP, k.want)
			}
		}
	}

	now := time.Now()
	claims := func(edit func(map[string]any)) map[string]any {
		c := map[string]any{"iss": is.URL, "sub": "admin-1", "aud": "api://orders", "iat": now.Unix(), "nbf": now.Unix(),
			"exp": now.Add(time.Hour).Unix(), "groups": []string{"admins"}, "scope": "openid orders:read", "acr": "mfa"}
		if edit != nil {
			edit(c)
		}
		return c
	}
	at := map[jose.HeaderKey]any{"typ": "at+jwt"}
	issuerKey := is.Key("")
	forged := oidctest.RSAKey(issuerKey.ID, 1) // the issuer's kid, another key
	jwks, err := json.Marshal(is.JWKS())       // what OPA is given as "cert"
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, method, path, token string
		want                      int32
	}{
		{"admin DELETE (control)", "DELETE", "/v1/orders/7", oidctest.SignWith(t, issuerKey, claims(nil), at), 200},
		{"admin POST /v1/orders", "POST", "/v1/orders", oidctest.SignWith(t, issuerKey, claims(nil), at), 200},
		{"forged signature", "DELETE", "/v1/orders/7", oidctest.SignWith(t, forged, claims(nil), at), 401},
		{"ES256 key not in the JWKS", "DELETE", "/v1/orders/7", oidctest.SignWith(t, oidctest.ECKey(issuerKey.ID), claims(nil), at), 401},
		{"HS256 keyed with the JWKS text", "DELETE", "/v1/orders/7", oidctest.SignJWS(t, jose.HS256, jwks, claims(nil), map[jose.HeaderKey]any{"kid": issuerKey.ID}), 401},
		{"wrong issuer", "DELETE", "/v1/orders/7", oidctest.SignWith(t, issuerKey, claims(func(c map[string]any) { c["iss"] = "https://evil.example" }), at), 401},
		{"wrong audience", "DELETE", "/v1/orders/7", oidctest.SignWith(t, issuerKey, claims(func(c map[string]any) { c["aud"] = "api://other" }), at), 401},
		{"not yet valid", "DELETE", "/v1/orders/7", oidctest.SignWith(t, issuerKey, claims(func(c map[string]any) { c["nbf"] = now.Add(time.Hour).Unix() }), at), 401},
		{"expired", "GET", "/v1/orders/7", oidctest.SignWith(t, issuerKey, claims(func(c map[string]any) { c["exp"] = now.Add(-time.Minute).Unix() }), at), 401},
		{"not a bearer token", "GET", "/v1/orders/7", "", 401},
		{"admin DELETE without MFA", "DELETE", "/v1/orders/7", oidctest.SignWith(t, issuerKey, claims(func(c map[string]any) { delete(c, "acr") }), at), 403},
		{"reader GET without orders:read", "GET", "/v1/orders/7", oidctest.SignWith(t, issuerKey, claims(func(c map[string]any) { c["groups"] = []string{"readers"}; c["scope"] = "openid" }), at), 403},
		{"reader POST", "POST", "/v1/orders", oidctest.SignWith(t, issuerKey, claims(func(c map[string]any) { c["groups"] = []string{"readers"} }), at), 403},
		{"no groups", "GET", "/v1/orders/7", oidctest.SignWith(t, issuerKey, claims(func(c map[string]any) { delete(c, "groups") }), at), 403},
		{"another service", "GET", "/v1/users/7", oidctest.SignWith(t, issuerKey, claims(nil), at), 403},
		{"a deeper path", "GET", "/v1/orders/7/items", oidctest.SignWith(t, issuerKey, claims(nil), at), 403},
	} {
		h := []string{"accept: application/json"}
		if tc.token != "" {
			h = append(h, "authorization: Bearer "+tc.token)
		} else {
			h = append(h, "authorization: Basic YWRtaW46YWRtaW4=")
		}
		r, err := checkreq.Build(checkreq.HTTP{Method: tc.method, URL: "https://api.example.com" + tc.path, Headers: h})
		if err != nil {
			t.Fatal(err)
		}
		b, err := proto.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		if _, got := ask(b); got != tc.want {
			t.Errorf("%s: HTTP %d, want %d", tc.name, got, tc.want)
		}
	}
}

// httpAnswer reads what Envoy would send from a CheckResponse.
func TestHTTPAnswer(t *testing.T) {
	for _, tc := range []struct {
		r    *authv3.CheckResponse
		want int32
	}{
		{&authv3.CheckResponse{}, 200},
		{&authv3.CheckResponse{Status: &rpcstatus.Status{}}, 200},
		{&authv3.CheckResponse{Status: &rpcstatus.Status{Code: 7}}, 403},
		{&authv3.CheckResponse{Status: &rpcstatus.Status{Code: 7}, HttpResponse: &authv3.CheckResponse_DeniedResponse{
			DeniedResponse: &authv3.DeniedHttpResponse{Body: "x"}}}, 403},
		{&authv3.CheckResponse{Status: &rpcstatus.Status{Code: 7}, HttpResponse: &authv3.CheckResponse_DeniedResponse{
			DeniedResponse: &authv3.DeniedHttpResponse{Status: &typev3.HttpStatus{}}}}, 403},
		{&authv3.CheckResponse{Status: &rpcstatus.Status{Code: 16}, HttpResponse: &authv3.CheckResponse_DeniedResponse{
			DeniedResponse: &authv3.DeniedHttpResponse{Status: &typev3.HttpStatus{Code: typev3.StatusCode_Unauthorized}}}}, 401},
		{&authv3.CheckResponse{Status: &rpcstatus.Status{Code: 7}, HttpResponse: &authv3.CheckResponse_DeniedResponse{
			DeniedResponse: &authv3.DeniedHttpResponse{Status: &typev3.HttpStatus{Code: typev3.StatusCode_TooManyRequests}, Body: "slow down"}}}, 429},
	} {
		b, err := proto.Marshal(tc.r)
		if err != nil {
			t.Fatal(err)
		}
		if got, ok := httpAnswer(b); !ok || got != tc.want {
			t.Errorf("%v: got %d %v, want %d", tc.r, got, ok, tc.want)
		}
	}
	if _, ok := httpAnswer([]byte{0x0a, 0x05}); ok {
		t.Error("a truncated status read as an answer")
	}
}

// An OPA-Envoy that exits at once is reported as not started, without
// waiting out the 30 s start deadline.
func TestStartOPAExits(t *testing.T) {
	is := oidctest.Start()
	defer is.Close()
	dir := t.TempDir()
	if err := writeOPAData(dir, is); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	ch, err := startOPA(cpus{}, "/bin/false", dir, "opa-empty")
	if err == nil {
		ch.stop()
		t.Fatal("/bin/false started as OPA-Envoy")
	}
	if !strings.Contains(err.Error(), "did not start") || time.Since(t0) > 10*time.Second {
		t.Errorf("after %v: %v", time.Since(t0), err)
	}
}

// -opa-envoy is refused outside load mode (before any server starts).
func TestOPAEnvoyLoadOnly(t *testing.T) {
	o := quick("memory")
	o.opaEnvoy = "/bin/false"
	if err := run(o, cpus{}, io.Discard); err == nil || !strings.Contains(err.Error(), "only with -mode load") {
		t.Errorf("got %v", err)
	}
}
