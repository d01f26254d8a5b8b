package server_test

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/wardenauthz/warden/authz/config"
	"github.com/wardenauthz/warden/internal/envoysim"
	"github.com/wardenauthz/warden/policy"
)

// upstream records what reaches the service behind Envoy.
type upstream struct {
	mu   sync.Mutex
	reqs []*http.Request
	srv  *httptest.Server
}

func newUpstream(t *testing.T) *upstream {
	u := &upstream{}
	u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		u.reqs = append(u.reqs, r)
		u.mu.Unlock()
		w.Header().Set("x-upstream", "echo")
		_, _ = io.WriteString(w, "hello from upstream\n")
	}))
	t.Cleanup(u.srv.Close)
	return u
}

func (u *upstream) take() []*http.Request {
	u.mu.Lock()
	defer u.mu.Unlock()
	r := u.reqs
	u.reqs = nil
	return r
}

// front puts the Envoy stand-in, configured from the shipped
// envoy/front-proxy/envoy.yaml (its ext_authz timeout, failure_mode_allow,
// status_on_error, and routes), before up.
func front(t *testing.T, authz authv3.AuthorizationClient, up *upstream) string {
	u, _ := url.Parse(up.srv.URL)
	f, err := envoysim.FromFile("../../envoy/front-proxy/envoy.yaml", authz, u)
	if err != nil {
		t.Fatal(err)
	}
	s := httptest.NewServer(f)
	t.Cleanup(s.Close)
	return s.URL
}

func do(t *testing.T, method, u string, headers ...string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(method, u, nil)
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ": ")
		req.Header.Add(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b)
}

// TestThroughEnvoy: requests through an Envoy-behaving front to a real
// upstream that records what it receives.
func TestThroughEnvoy(t *testing.T) {
	for _, forward := range []bool{false, true} {
		name := "forward_authorization=false"
		if forward {
			name = "forward_authorization=true"
		}
		t.Run(name, func(t *testing.T) {
			e := start(t, func(c *config.Config) {
				c.Response.ForwardAuthorization = &forward
				// The front proxy's API: /orders/{id} of service orders.
				c.Policy.Routes = append(c.Policy.Routes, policy.RouteConfig{Service: "orders", Method: "*", Path: "/orders/{id}", Resource: `Order::"{id}"`})
			})
			up := newUpstream(t)
			base := front(t, e.client, up)
			tok := e.token(t, "alice", "staff")

			// Allowed: identity headers arrive, spoofed ones do not, the
			// client's authorization is forwarded only when configured.
			resp, body := do(t, "GET", base+"/orders/42?x=1", "authorization: Bearer "+tok,
				"x-warden-principal: User::\"corp|root\"", "x-warden-admin: true", "x-trace: a", "x-trace: b")
			if resp.StatusCode != 200 || body != "hello from upstream\n" {
				t.Fatalf("allowed: %d %q", resp.StatusCode, body)
			}
			if resp.Header.Get("ratelimit") == "" || resp.Header.Get("x-upstream") != "echo" {
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
			if got.Get("x-warden-decision-id") == "" || got.Get("x-request-id") == "" {
				t.Errorf("decision id / request id missing: %v", got)
			}
			if strings.Join(got.Values("x-trace"), ",") != "a,b" {
				t.Errorf("client headers changed: %q", got.Values("x-trace"))
			}
			if has := got.Get("authorization") != ""; has != forward {
				t.Errorf("authorization upstream: %v, want %v", has, forward)
			}
			if reqs[0].URL.RequestURI() != "/orders/42?x=1" {
				t.Errorf("path upstream: %s", reqs[0].URL.RequestURI())
			}

			// Denied by policy: 403 problem+json to the client; nothing upstream.
			resp, body = do(t, "DELETE", base+"/orders/42", "authorization: Bearer "+e.token(t, "mallory"))
			if resp.StatusCode != 403 || resp.Header.Get("content-type") != "application/problem+json" || !strings.Contains(body, `"decision_id"`) {
				t.Errorf("denied: %d %s %q", resp.StatusCode, resp.Header, body)
			}
			checkEnvoyRejects(t, base, tok, up)
		})
	}
}

// TestEnvoyWhenWardenIsDown: a gRPC failure is not a denial: Envoy answers
// status_on_error (503 in the shipped config) with an empty body and never
// lets the request through (failure_mode_allow: false).
func TestEnvoyWhenWardenIsDown(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens here
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	up := newUpstream(t)
	base := front(t, authv3.NewAuthorizationClient(conn), up)
	resp, body := do(t, "GET", base+"/orders/42", "authorization: Bearer x")
	if resp.StatusCode != 503 || body != "" || len(up.take()) != 0 {
		t.Errorf("warden down: %d %q", resp.StatusCode, body)
	}
}

// checkEnvoyRejects: through the Envoy front at base, a request without
// credentials gets 401 with a Bearer challenge and a forged token (tok with
// its signature's tail replaced) 401 invalid_token; no denied request
// reached up (taken since the caller's last take); the health route skips
// authorization.
func checkEnvoyRejects(t *testing.T, base, tok string, up *upstream) {
	t.Helper()
	resp, _ := do(t, "GET", base+"/orders/42")
	if resp.StatusCode != 401 || !strings.HasPrefix(resp.Header.Get("www-authenticate"), "Bearer") {
		t.Errorf("anonymous: %d %v", resp.StatusCode, resp.Header)
	}
	resp, _ = do(t, "GET", base+"/orders/42", "authorization: Bearer "+tok[:len(tok)-4]+"AAAA")
	if resp.StatusCode != 401 || !strings.Contains(resp.Header.Get("www-authenticate"), `error="invalid_token"`) {
		t.Errorf("forged: %d %v", resp.StatusCode, resp.Header)
	}
	if n := len(up.take()); n != 0 {
		t.Errorf("%d denied requests reached the upstream", n)
	}
	if resp, _ := do(t, "GET", base+"/healthz"); resp.StatusCode != 200 || len(up.take()) != 1 {
		t.Errorf("health route: %d", resp.StatusCode)
	}
}
