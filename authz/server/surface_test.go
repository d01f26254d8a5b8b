package server_test

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cedar-policy/cedar-go"
	"github.com/cedar-policy/cedar-go/x/exp/schema/validate"

	"github.com/wardenauthz/warden/authz/checkreq"
	"github.com/wardenauthz/warden/authz/config"
	"github.com/wardenauthz/warden/authz/server"
	"github.com/wardenauthz/warden/identity/oidctest"
	"github.com/wardenauthz/warden/policy"
)

// policyDir writes policies to a fresh directory and points the config at
// it.
func policyDir(t *testing.T, cedarSrc string) func(*config.Config) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "p.cedar"), []byte(cedarSrc), 0o644); err != nil {
		t.Fatal(err)
	}
	return func(c *config.Config) { c.Policy.Dir = dir }
}

// outcome is a Check's status, reason and erroring policies.
func outcome(t *testing.T, e *env, h checkreq.HTTP) (int, string, []string) {
	t.Helper()
	r := checkreq.Describe(e.check(t, h))
	if r.Decision == "allow" {
		r.Status = 0
	}
	return r.Status, r.Reason, r.Errors
}

// TestErroringForbidDenies: a forbid whose condition errors could have
// applied, so it denies (403 policy_error) and says which policy and why;
// wherever the error comes from (a missing attribute, an extension
// function, in when or in unless). policy.on_error: skip is Cedar's own
// semantics (ignored). An erroring permit grants nothing.
func TestErroringForbidDenies(t *testing.T) {
	const permitAll = `@id("all") permit(principal, action, resource);` + "\n"
	forbids := []struct{ name, src string }{
		{"unless, missing attribute (the issue's)", `@id("mfa") forbid(principal, action, resource) unless { context.token.acr == "mfa" };`},
		{"when, missing attribute", `@id("mfa") forbid(principal, action, resource) when { context.token.acr != "mfa" };`},
		{"when, missing header", `@id("mfa") forbid(principal, action, resource) when { context.request.headers["x-absent"] == "1" };`},
		{"extension function error", `@id("mfa") forbid(principal, action, resource) when { ip(context.request.headers["x-ip"]).isLoopback() };`},
		{"type error", `@id("mfa") forbid(principal, action, resource) when { context.request.method < 3 };`},
		{"second condition", `@id("mfa") forbid(principal, action, resource) when { true } unless { context.token.acr == "mfa" };`},
	}
	req := checkreq.HTTP{Method: "GET", URL: "http://api.example.com/v1/orders", Headers: []string{"x-ip: not-an-ip"}}
	for _, f := range forbids {
		t.Run(f.name, func(t *testing.T) {
			e := start(t, policyDir(t, permitAll+f.src))
			tok := e.token(t, "alice")
			for _, withToken := range []bool{false, true} {
				h := req
				if withToken {
					h.Headers = append([]string{"authorization: Bearer " + tok}, h.Headers...)
				}
				status, reason, errs := outcome(t, e, h)
				if status != 403 || reason != "policy_error" || len(errs) != 1 || !strings.HasPrefix(errs[0], "mfa: ") {
					t.Errorf("token %v: got %d %s %q, want 403 policy_error [mfa: ...]", withToken, status, reason, errs)
				}
			}
		})
	}
	t.Run("counted by reason", func(t *testing.T) {
		e := start(t, policyDir(t, permitAll+forbids[0].src))
		outcome(t, e, req)
		resp, err := http.Get(e.http + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if want := `warden_decisions_total{decision="deny",reason="policy_error",transport="grpc"} 1`; !strings.Contains(string(b), want) {
			t.Errorf("metrics lack %s", want)
		}
	})
	t.Run("on_error skip", func(t *testing.T) {
		e := start(t, policyDir(t, permitAll+forbids[0].src), func(c *config.Config) { c.Policy.OnError = "skip" })
		if status, reason, errs := outcome(t, e, req); status != 0 || reason != "policy_allow" || len(errs) != 1 {
			t.Errorf("got %d %s %q, want the Cedar allow with the error listed", status, reason, errs)
		}
	})
	t.Run("a forbid that applies is a policy_deny", func(t *testing.T) {
		e := start(t, policyDir(t, permitAll+`@id("no") forbid(principal, action, resource) when { context.request.method == "GET" };`))
		if status, reason, _ := outcome(t, e, checkreq.HTTP{Method: "GET", URL: "http://api.example.com/v1/orders", Headers: []string{"authorization: Bearer " + e.token(t, "alice")}}); status != 403 || reason != "policy_deny" {
			t.Errorf("got %d %s", status, reason)
		}
	})
	t.Run("erroring permit grants nothing", func(t *testing.T) {
		e := start(t, policyDir(t, `@id("p") permit(principal, action, resource) when { context.token.acr == "mfa" };`))
		h := checkreq.HTTP{Method: "GET", URL: "http://api.example.com/v1/orders", Headers: []string{"authorization: Bearer " + e.token(t, "alice")}}
		if status, reason, errs := outcome(t, e, h); status != 403 || reason != "policy_deny" || len(errs) != 1 {
			t.Errorf("got %d %s %q, want 403 policy_deny with the error listed", status, reason, errs)
		}
	})
}

// quickStart runs the quick start's policies and routes (its
// policy.unrouted: deny), with the test issuer named as the dev issuer.
func quickStart(t *testing.T) func(*config.Config) {
	qs, err := config.LoadEmbedded()
	if err != nil {
		t.Fatal(err)
	}
	dir, err := filepath.Abs("../../examples/quickstart/policies")
	if err != nil {
		t.Fatal(err)
	}
	return func(c *config.Config) {
		c.Identity.Issuers[0].Name = "dev"
		c.Policy.Dir, c.Policy.Routes, c.Policy.Unrouted, c.Policy.OnError = dir, qs.Policy.Routes, qs.Policy.Unrouted, qs.Policy.OnError
	}
}

// TestQuickStartReadingsCombined: the repro. An admin without MFA
// may not DELETE an order by any spelling of its path: case, a trailing
// slash, ";" parameters, alone or combined, are refused (400) or denied,
// never allowed as the route-less Action::"DELETE". Through the shipped
// Envoy front where Envoy routes the path (its /orders prefix is case
// sensitive), and as a Check with the service's context extension where
// an Envoy routing without case would send it.
func TestQuickStartReadingsCombined(t *testing.T) {
	e := start(t, quickStart(t))
	tok := e.is.Sign(t, map[string]any{"iss": e.is.URL, "sub": "carol", "aud": aud, "iat": 1780000000, "exp": 4102444800, "groups": []string{"admins"}})
	auth := "authorization: Bearer " + tok
	for _, p := range []string{"/Orders/42/", "/Orders/42", "/orders/42/", "/Orders;x/42", "/orders;x/42", "/ORDERS/42;x/", "/orders/42;x/", "/orders/42/;x",
		"/Orders//42/", "/Orders/./42/", "/Orders/42%2F", "/orders/42/.", "/Orders/42/x/..", "/oRdErS/%34%32/", "/Orders/42//"} {
		t.Run("check "+p, func(t *testing.T) {
			req, err := checkreq.Build(checkreq.HTTP{Method: "DELETE", URL: "http://localhost:8080/", Headers: []string{auth}, ContextExtensions: map[string]string{"service": "orders"}})
			if err != nil {
				t.Fatal(err)
			}
			h := req.GetAttributes().GetRequest().GetHttp()
			h.Path, h.Headers[":path"] = p, p
			resp, err := e.client.Check(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			r := checkreq.Describe(resp)
			if r.Decision != "deny" || r.Reason == "policy_allow" {
				t.Fatalf("DELETE %s: %s %d %s (%s)", p, r.Decision, r.Status, r.Reason, r.Action)
			}
		})
	}
	// The clean path itself is a step-up (the forbid on the route applies).
	if r := checkreq.Describe(e.check(t, checkreq.HTTP{Method: "DELETE", URL: "http://localhost:8080/orders/42", Headers: []string{auth}, ContextExtensions: map[string]string{"service": "orders"}})); r.Reason != "step_up" {
		t.Errorf("DELETE /orders/42: %s %s", r.Decision, r.Reason)
	}

	up := newUpstream(t)
	base := front(t, e.client, up)
	for _, p := range []string{"/orders/42/", "/orders/42;x", "/orders/42;x/", "/orders//42/", "/orders/./42/", "/orders/42/;x", "/orders/42/.;x/"} {
		t.Run("front "+p, func(t *testing.T) {
			resp, _ := do(t, "DELETE", base+p, auth)
			if resp.StatusCode < 400 || len(up.take()) != 0 {
				t.Errorf("DELETE %s through the front: %d", p, resp.StatusCode)
			}
		})
	}
}

// TestRoutesMeanOneThing: HEAD is decided as the GET it reads (a forbid on
// a GET route, a "*" route's GET, or the route-less GET applies to it), and a host-scoped route applies to its host
// in any case, with a trailing dot or a port.
func TestRoutesMeanOneThing(t *testing.T) {
	e := start(t, policyDir(t, `@id("all") permit(principal, action, resource);
@id("no-reports") forbid(principal, action == Action::"GET /reports/{id}", resource);
@id("no-admin") forbid(principal, action == Action::"POST /admin", resource);
@id("no-files") forbid(principal, action == Action::"GET /files/{name}", resource);
@id("no-get") forbid(principal, action == Action::"GET", resource == Service::"plain");`), func(c *config.Config) {
		c.Policy.Routes = []policy.RouteConfig{
			{Service: "reports", Method: "GET", Path: "/reports/{id}"},
			{Service: "admin", Method: "POST", Path: "/admin", Host: "api.example.com"},
			{Service: "files", Method: "*", Path: "/files/{name}"},
		}
		c.Policy.Unrouted = "allow_policies" // the route-less action is what these tricks used to reach
	})
	auth := "authorization: Bearer " + e.token(t, "alice")
	for _, tc := range []struct{ method, url string }{
		{"GET", "http://h/reports/1"},
		{"HEAD", "http://h/reports/1"},
		{"head", "http://h/reports/1"},
		{"POST", "http://api.example.com/admin"},
		{"POST", "http://api.example.com./admin"},
		{"POST", "http://API.Example.COM/admin"},
		{"POST", "http://API.example.com.:8443/admin"},
		{"POST", "http://api.example.com..:443/admin"},
		{"HEAD", "http://h/files/a"}, // a "*" route: HEAD is its GET
		{"GET", "http://plain/x"},    // a service without routes: the route-less Action::"GET"
		{"HEAD", "http://plain/x"},
	} {
		t.Run(tc.method+" "+tc.url, func(t *testing.T) {
			status, reason, _ := outcome(t, e, checkreq.HTTP{Method: tc.method, URL: tc.url, Headers: []string{auth}})
			if status != 403 || reason != "policy_deny" {
				t.Errorf("got %d %s, want 403 policy_deny", status, reason)
			}
		})
	}
}

// TestUnroutedDenied: with policy.unrouted: deny (the default), a request
// to a service that has routes but matches none is 403 route_unknown before
// Cedar, even when a policy would allow every action; allow_policies keeps
// the route-less Action::"<METHOD>". A service with no routes is Cedar's.
func TestUnroutedDenied(t *testing.T) {
	for _, mode := range []string{"deny", "allow_policies"} {
		t.Run(mode, func(t *testing.T) {
			e := start(t, policyDir(t, `@id("all") permit(principal, action, resource);`), func(c *config.Config) {
				c.Policy.Routes = []policy.RouteConfig{{Service: "orders", Method: "GET", Path: "/orders/{id}"}}
				c.Policy.Unrouted = mode
			})
			auth := "authorization: Bearer " + e.token(t, "alice")
			orders := map[string]string{"service": "orders"}
			for _, tc := range []struct {
				method, url string
				ext         map[string]string
				unrouted    bool
			}{
				{"GET", "http://h/orders/1", orders, false},
				{"DELETE", "http://h/orders/1", orders, true},
				{"OPTIONS", "http://h/orders/1", orders, true},
				{"GET", "http://h/orders", orders, true},
				{"GET", "http://h/anything", orders, true},
				{"GET", "http://h/anything", map[string]string{"service": "billing"}, false},
			} {
				status, reason, _ := outcome(t, e, checkreq.HTTP{Method: tc.method, URL: tc.url, Headers: []string{auth}, ContextExtensions: tc.ext})
				wantStatus, wantReason := 0, "policy_allow"
				if tc.unrouted && mode == "deny" {
					wantStatus, wantReason = 403, "route_unknown"
				}
				if status != wantStatus || reason != wantReason {
					t.Errorf("%s %s %v: got %d %s, want %d %s", tc.method, tc.url, tc.ext, status, reason, wantStatus, wantReason)
				}
			}
		})
	}
}

// TestShadowedRouteRefused: a route an earlier one shadows can never match
// (a forbid keyed on it never applies): the config does not load, and says
// where.
func TestShadowedRouteRefused(t *testing.T) {
	yaml := `identity: {anonymous: true}
policy:
  routes:
    - {method: GET, path: "/orders/{id}"}
    - {method: GET, path: /orders/export}
`
	_, err := config.Parse("w.yaml", []byte(yaml), t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "w.yaml:5: policy.routes[1]") || !strings.Contains(err.Error(), "can never match") {
		t.Fatalf("got %v", err)
	}
	// The new keys take only their values.
	_, err = config.Parse("w.yaml", []byte("identity: {anonymous: true}\npolicy:\n  on_error: maybe\n  unrouted: allow\n"), t.TempDir())
	for _, want := range []string{"w.yaml:3: policy.on_error: must be deny or skip", "w.yaml:4: policy.unrouted: must be deny or allow_policies"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("got %v, want %q", err, want)
		}
	}
}

// TestContextMatchesModelSchema: the Cedar request Warden builds for every
// Envoy sample (through a real Check pipeline, whole context) conforms to
// `warden policy schema`: what the schema requires is there, nothing is
// there it does not declare, every type is the declared one. The open
// records (headers, query, extensions, custom token claims), which users
// declare themselves, are emptied first.
func TestContextMatchesModelSchema(t *testing.T) {
	is := oidctest.New(t)
	full := startOpts(t, is, server.Options{Stdout: io.Discard, FullContext: true})
	sc, err := full.svc.Policies.Current().ModelSchema()
	if err != nil {
		t.Fatal(err)
	}
	res, err := sc.Resolve()
	if err != nil {
		t.Fatal(err)
	}
	v := validate.New(res)
	staff := full.token(t, "alice", "staff")
	files, _ := filepath.Glob("testdata/checkrequests/*.json")
	if len(files) < 10 {
		t.Fatalf("%d samples", len(files))
	}
	for _, f := range files {
		out := full.svc.Authorizer.Evaluate(context.Background(), sample(t, filepath.Base(f), staff))
		r := out.Result
		if r == nil || r.PathError != nil {
			continue
		}
		req := cedar.Request{Principal: r.Principal, Action: r.Action, Resource: r.Resource, Context: closeOpen(r.Context)}
		if err := v.Request(req); err != nil {
			t.Errorf("%s: the context does not match the model schema: %v\n%v", filepath.Base(f), err, req.Context)
		}
	}
}

// closeOpen empties the records users declare (Headers, Query, Extensions)
// and drops the token's custom claims (TokenClaims).
func closeOpen(c cedar.Record) cedar.Record {
	m := c.Map()
	if rv, ok := m["request"]; ok {
		rm := rv.(cedar.Record).Map()
		for _, k := range []cedar.String{"headers", "query"} {
			if _, ok := rm[k]; ok {
				rm[k] = cedar.NewRecord(nil)
			}
		}
		m["request"] = cedar.NewRecord(rm)
	}
	if _, ok := m["extensions"]; ok {
		m["extensions"] = cedar.NewRecord(nil)
	}
	if tv, ok := m["token"]; ok {
		tm := cedar.RecordMap{}
		for k, v := range tv.(cedar.Record).All() {
			switch k {
			case "iss", "sub", "client_id", "acr", "aud", "scope", "groups", "amr", "iat", "exp", "auth_time":
				tm[k] = v
			}
		}
		m["token"] = cedar.NewRecord(tm)
	}
	return cedar.NewRecord(m)
}
