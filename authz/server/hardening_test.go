package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc/codes"

	"github.com/wardenauthz/warden/authz"
	"github.com/wardenauthz/warden/authz/checkreq"
	"github.com/wardenauthz/warden/authz/config"
	"github.com/wardenauthz/warden/policy"
)

// check sends h to e and returns the response.
func (e *env) check(t testing.TB, h checkreq.HTTP) *authv3.CheckResponse {
	t.Helper()
	req, err := checkreq.Build(h)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := e.client.Check(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// denied reports the HTTP status and problem detail of a denial (0 when
// allowed).
func denied(t testing.TB, resp *authv3.CheckResponse) (int, string) {
	t.Helper()
	d := resp.GetDeniedResponse()
	if codes.Code(resp.GetStatus().GetCode()) == codes.OK {
		return 0, ""
	}
	var p struct{ Detail string }
	if err := json.Unmarshal([]byte(d.GetBody()), &p); err != nil {
		t.Fatalf("denial body: %v: %q", err, d.GetBody())
	}
	return int(d.GetStatus().GetCode()), p.Detail
}

// withOrders adds the front proxy's API to the test config.
func withOrders(c *config.Config) {
	c.Policy.Routes = append(c.Policy.Routes,
		policy.RouteConfig{Service: "orders", Method: "*", Path: "/orders/{id}", Resource: `Order::"{id}"`},
		policy.RouteConfig{Service: "orders", Method: "*", Path: "/orders/{id}/items"})
}

// TestPathsReadOneWay: an Envoy without path normalisation (its default)
// forwards paths an upstream may read another way than Warden; Warden
// refuses them with a 400 rather than guessing the route.
func TestPathsReadOneWay(t *testing.T) {
	e := start(t, withOrders)
	tok := e.token(t, "alice", "staff")
	for _, tc := range []struct {
		path   string
		status int // 0: allowed
		detail string
	}{
		{"/orders/42", 0, ""},
		{"/orders/42?next=/x/../y", 0, ""},
		{"/orders/%34%32", 0, ""},
		{"/orders/7/../42", 400, "dot-segments"},
		{"/orders/42/%2e%2e/7", 400, "dot-segments"},
		{"/orders//42", 400, "repeated slashes"},
		{"/orders/42%2Fitems", 400, "slashes as separators"},
		{"/orders/42;v=1", 400, "; parameters"},
		{"/orders/42/", 400, "trailing slash"},
		{"/ORDERS/42", 400, "without case"},
		{"/orders/%zz", 400, "bad %-escape"},
		{"/orders/%00", 400, "control character"},
	} {
		t.Run(tc.path, func(t *testing.T) {
			// Built for a clean path, then given the raw one (as Envoy
			// forwards a target its codec accepted, undecoded).
			req, err := checkreq.Build(checkreq.HTTP{Method: "GET", URL: "http://api.example.com/",
				Headers: []string{"authorization: Bearer " + tok}, ContextExtensions: map[string]string{"service": "orders"}})
			if err != nil {
				t.Fatal(err)
			}
			h := req.GetAttributes().GetRequest().GetHttp()
			h.Path, h.Headers[":path"] = tc.path, tc.path
			resp, err := e.client.Check(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			status, detail := denied(t, resp)
			if status != tc.status || !strings.Contains(detail, tc.detail) {
				t.Errorf("got %d %q, want %d %q", status, detail, tc.status, tc.detail)
			}
			if reason := resp.GetDynamicMetadata().GetFields()["reason"].GetStringValue(); status == 400 && reason != "request_invalid" {
				t.Errorf("reason %q", reason)
			}
		})
	}
}

// rawGet sends a request line as written (no client-side cleaning).
func rawGet(t *testing.T, base, target, token string) (int, error) {
	u, _ := url.Parse(base)
	c, err := net.Dial("tcp", u.Host)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nConnection: close\r\n\r\n", target, u.Host, token)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// TestPathsThroughShippedEnvoy: the shipped front proxy normalises paths
// (normalize_path, merge_slashes) and rejects escaped slashes before
// ext_authz, so Warden and the upstream read each path the same one way.
func TestPathsThroughShippedEnvoy(t *testing.T) {
	e := start(t, withOrders)
	up := newUpstream(t)
	base := front(t, e.client, up)
	tok := e.token(t, "alice", "staff")
	for _, tc := range []struct {
		target   string
		status   int
		upstream string // the path the upstream got; "" when none
	}{
		{"/orders/42", 200, "/orders/42"},
		{"/orders/7/../42", 200, "/orders/42"},
		{"/orders/7/%2e%2e/42", 200, "/orders/42"},
		{"/orders//42", 200, "/orders/42"},
		{"/orders/./42", 200, "/orders/42"},
		{"/orders/42%2Fitems", 400, ""}, // Envoy: escaped slash rejected
		{"/orders/42/", 400, ""},        // Warden: could be /orders/42
	} {
		t.Run(tc.target, func(t *testing.T) {
			status, err := rawGet(t, base, tc.target, tok)
			if err != nil {
				t.Fatal(err)
			}
			reqs := up.take()
			got := ""
			if len(reqs) == 1 {
				got = reqs[0].URL.EscapedPath()
			}
			if status != tc.status || got != tc.upstream {
				t.Errorf("got %d, upstream %q; want %d, %q", status, got, tc.status, tc.upstream)
			}
		})
	}
}

// TestLimits: a request over a limit is denied with the status that names
// it, before its credentials are read; the token limit is a 401.
func TestLimits(t *testing.T) {
	e := start(t, withOrders, func(c *config.Config) {
		c.Server.Limits = authz.Limits{MaxHeaders: 20, MaxHeaderBytes: 4096, MaxBodyBytes: 1000}
		c.Identity.MaxTokenBytes = 2048
	})
	tok := e.token(t, "alice", "staff")
	base := checkreq.HTTP{Method: "GET", URL: "http://api.example.com/orders/42", Headers: []string{"authorization: Bearer " + tok},
		ContextExtensions: map[string]string{"service": "orders"}}
	many := func(n int) []string {
		h := []string{"authorization: Bearer " + tok}
		for i := range n {
			h = append(h, fmt.Sprintf("x-h%d: v", i))
		}
		return h
	}
	for _, tc := range []struct {
		name   string
		mutate func(*checkreq.HTTP)
		status int
		detail string
	}{
		{"within the limits", func(h *checkreq.HTTP) { h.Headers = many(5); h.Body = strings.Repeat("a", 1000) }, 0, ""},
		{"too many headers", func(h *checkreq.HTTP) { h.Headers = many(20) }, 431, "header fields: the limit is 20"},
		{"header bytes", func(h *checkreq.HTTP) { h.Headers = append(h.Headers, "x-big: "+strings.Repeat("a", 4096)) }, 431, "bytes of headers: the limit is 4096"},
		{"body", func(h *checkreq.HTTP) { h.Body = strings.Repeat("a", 1001) }, 413, "bytes of body: the limit is 1000"},
		{"token", func(h *checkreq.HTTP) {
			h.Headers = []string{"authorization: Bearer " + e.is.Sign(t, map[string]any{"iss": e.is.URL, "sub": "alice", "aud": aud, "exp": 4102444800, "pad": strings.Repeat("a", 2048)})}
		}, 401, "token too large"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := base
			tc.mutate(&h)
			status, detail := denied(t, e.check(t, h))
			if status != tc.status || !strings.Contains(detail, tc.detail) {
				t.Errorf("got %d %q, want %d %q", status, detail, tc.status, tc.detail)
			}
		})
	}
}
