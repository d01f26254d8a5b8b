package server_test

import (
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/wardenauthz/warden/authz/config"
	"github.com/wardenauthz/warden/internal/envoysim"
	"github.com/wardenauthz/warden/policy"
)

// frontHTTP puts the Envoy stand-in, configured from the shipped
// envoy/front-proxy-http/envoy.yaml (ext_authz over http_service, to
// Warden's HTTP listener at authz over h2c), before up.
func frontHTTP(t *testing.T, authz string, up *upstream) string {
	t.Helper()
	a, _ := url.Parse(authz)
	u, _ := url.Parse(up.srv.URL)
	f, err := envoysim.FromFileHTTP("../../envoy/front-proxy-http/envoy.yaml", a, u, h2cClient())
	if err != nil {
		t.Fatal(err)
	}
	// The file's 250ms is for production; under -race on a shared machine a
	// Check can take longer, and a timeout here would only make the test
	// flaky (TestEnvoyHTTPWhenWardenIsDown covers the failure path).
	f.Timeout = 10 * time.Second
	s := httptest.NewServer(f)
	t.Cleanup(s.Close)
	return s.URL
}

// TestThroughEnvoyHTTP: TestThroughEnvoy's requests through an Envoy using
// Warden's HTTP service instead of gRPC.
func TestThroughEnvoyHTTP(t *testing.T) {
	for _, forward := range []bool{false, true} {
		name := "forward_authorization=false"
		if forward {
			name = "forward_authorization=true"
		}
		t.Run(name, func(t *testing.T) {
			e := httpAuthz(t, []string{"127.0.0.1/32"}, func(c *config.Config) {
				c.Response.ForwardAuthorization = &forward
				c.Policy.Routes = append(c.Policy.Routes, policy.RouteConfig{Service: "orders", Method: "*", Path: "/orders/{id}", Resource: `Order::"{id}"`})
			})
			up := newUpstream(t)
			base := frontHTTP(t, e.httpAuthz, up)
			tok := e.token(t, "alice", "staff")

			resp, body := do(t, "GET", base+"/orders/42?x=1", "authorization: Bearer "+tok,
				"x-warden-principal: User::\"corp|root\"", "x-warden-admin: true", "x-trace: a", "x-trace: b")
			if resp.StatusCode != 200 || body != "hello from upstream\n" {
				t.Fatalf("allowed: %d %q", resp.StatusCode, body)
			}
			if resp.Header.Get("ratelimit") == "" {
				t.Errorf("client response headers: %v", resp.Header)
			}
			reqs := up.take()
			if len(reqs) != 1 {
				t.Fatalf("upstream got %d requests", len(reqs))
			}
			got := reqs[0].Header
			if v := got.Values("x-warden-principal"); len(v) != 1 || v[0] != `User::"corp|alice"` {
				t.Errorf("x-warden-principal upstream: %q", v)
			}
			if got.Get("x-warden-admin") != "" {
				t.Error("spoofed x-warden-admin reached the upstream")
			}
			if got.Get("x-warden-decision-id") == "" || strings.Join(got.Values("x-trace"), ",") != "a,b" {
				t.Errorf("upstream headers: %v", got)
			}
			if has := got.Get("authorization") != ""; has != forward {
				t.Errorf("authorization upstream: %v, want %v", has, forward)
			}
			rec := lastRecord(t, e, got.Get("x-warden-decision-id"))
			if rec.Transport != "http" || rec.Request.Path != "/orders/42" || rec.Request.SourceIP != "127.0.0.1" {
				t.Errorf("record: %+v", rec)
			}

			resp, body = do(t, "DELETE", base+"/orders/42", "authorization: Bearer "+e.token(t, "mallory"))
			if resp.StatusCode != 403 || resp.Header.Get("content-type") != "application/problem+json" || !strings.Contains(body, `"decision_id"`) || resp.Header.Get("x-warden-decision-id") == "" {
				t.Errorf("denied: %d %s %q", resp.StatusCode, resp.Header, body)
			}
			checkEnvoyRejects(t, base, tok, up)
		})
	}
}

// TestEnvoyHTTPWhenWardenIsDown: Envoy answers status_on_error (503) with
// no body, and lets nothing through.
func TestEnvoyHTTPWhenWardenIsDown(t *testing.T) {
	up := newUpstream(t)
	base := frontHTTP(t, "http://"+freePort(t), up)
	resp, body := do(t, "GET", base+"/orders/42", "authorization: Bearer x")
	if resp.StatusCode != 503 || body != "" || len(up.take()) != 0 {
		t.Errorf("warden down: %d %q", resp.StatusCode, body)
	}
}
