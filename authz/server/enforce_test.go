package server_test

import (
	"context"
	"strings"
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/wardenauthz/warden/authz/checkreq"
	"github.com/wardenauthz/warden/authz/config"
	"github.com/wardenauthz/warden/policy"
)

// checkHTTP sends the CheckRequest Envoy builds for one HTTP request over
// the real gRPC Check and returns the response.
func checkHTTP(t *testing.T, e *env, h checkreq.HTTP) *authv3.CheckResponse {
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

func reasonOf(resp *authv3.CheckResponse) string {
	return resp.GetDynamicMetadata().GetFields()["reason"].GetStringValue()
}

func deniedHeader(resp *authv3.CheckResponse, name string) string {
	for _, hv := range resp.GetDeniedResponse().GetHeaders() {
		if hv.GetHeader().GetKey() == name {
			return hv.GetHeader().GetValue()
		}
	}
	return ""
}

// TestBearerAnyWhitespace: whatever follows the Bearer scheme (a tab,
// several spaces and a tab, a no-break space, a vertical tab, a comma, or a
// later comma-joined element), an attempt at Bearer credentials is judged:
// a forged or malformed one is 401 invalid_token — never anonymous, not
// even on a route anonymous callers may use (public-catalog), and not
// through the Envoy-behaving front either.
func TestBearerAnyWhitespace(t *testing.T) {
	e := start(t, func(c *config.Config) {
		c.Policy.Routes = append(c.Policy.Routes, policy.RouteConfig{Service: "orders", Method: "*", Path: "/orders/{id}", Resource: `Order::"{id}"`})
	})
	good := e.token(t, "alice", "staff")
	forged := good[:len(good)-4] + "AAAA"
	for _, v := range []string{
		"Bearer\t" + forged, "bearer \t" + forged, "BEARER\t\t" + good, "Bearer\u00a0" + forged,
		"Bearer\v" + forged, "Bearer\f" + forged, "Bearer\r" + forged, "\tBearer\t" + forged,
		"Bearer," + forged, "Bearer", "bEaReR ", "Basic dXNlcjpwYXNz,Bearer " + forged,
		"Bearer " + good + ",Bearer " + forged, "Bearer " + good + " x",
	} {
		resp := checkHTTP(t, e, checkreq.HTTP{Method: "GET", URL: "http://api.example.com/catalog/search/x", Headers: []string{"authorization: " + v}})
		if code := resp.GetDeniedResponse().GetStatus().GetCode(); code != 401 || reasonOf(resp) != "token_invalid" ||
			!strings.Contains(deniedHeader(resp, "www-authenticate"), `error="invalid_token"`) {
			t.Errorf("authorization %q: %d %s (%s)", v, code, reasonOf(resp), deniedHeader(resp, "www-authenticate"))
		}
	}
	// The exact grammar still works, in any case and with several spaces;
	// other schemes are not Bearer credentials (anonymous may search).
	for _, v := range []string{"Bearer " + good, "bearer   " + good, "BEARER " + good, "Basic dXNlcjpwYXNz", "Bearerx " + forged} {
		resp := checkHTTP(t, e, checkreq.HTTP{Method: "GET", URL: "http://api.example.com/catalog/search/x", Headers: []string{"authorization: " + v}})
		if reasonOf(resp) == "token_invalid" || resp.GetDeniedResponse() != nil {
			t.Errorf("authorization %q: %s", v, reasonOf(resp))
		}
	}

	// Through the front with the shipped Envoy config.
	up := newUpstream(t)
	base := front(t, e.client, up)
	for _, v := range []string{"Bearer\t" + forged, "Bearer \t " + forged, "bearer\u00a0" + forged} {
		resp, _ := do(t, "GET", base+"/orders/42", "authorization: "+v)
		if resp.StatusCode != 401 || !strings.Contains(resp.Header.Get("www-authenticate"), `error="invalid_token"`) {
			t.Errorf("front, authorization %q: %d %s", v, resp.StatusCode, resp.Header.Get("www-authenticate"))
		}
	}
	if n := len(up.take()); n != 0 {
		t.Errorf("%d requests reached the upstream", n)
	}
}
