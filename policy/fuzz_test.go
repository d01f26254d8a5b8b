package policy

import (
	"bytes"
	"testing"
	"time"
)

// FuzzMapRequest: any method, path, host and header go through the
// request-to-Cedar mapping without panicking.
func FuzzMapRequest(f *testing.F) {
	f.Add("GET", "/a/1?x=1&x=2&%zz", "svc.example:8080", "x-n", "1")
	f.Add("DELETE", "//a/%2F/..;x", "[::1]:80", ":path", "/")
	s, err := Load(Source{FS: mapFSOf("p.cedar", `@id("a") permit(principal, action, resource) when { context.request has query };`), Dir: ".", Name: "f"}, propRoutes)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, method, path, host, hk, hv string) {
		s.Decide(&Request{Principal: Principal{Type: "User", ID: "u"}, Method: method, Path: path, Host: host,
			Headers: []Header{{hk, hv}}, Time: time.Unix(0, 0)})
	})
}

// FuzzLoad: any policy file, entities file and schema either load (and
// then decide without panicking) or fail with an error that names the
// file; never a panic, never a set that half-loaded.
func FuzzLoad(f *testing.F) {
	f.Add(`@id("a") permit(principal in Group::"g", action == Action::"GET /orders/{id}", resource) when { context.request.path like "/orders/*" };`,
		`[{"uid":{"type":"Group","id":"g"},"attrs":{},"parents":[]}]`, "")
	f.Add(`@id("b") @status("401") forbid(principal, action, resource) unless { context has token && context.token.acr == "mfa" };`,
		`[]`, `entity User in [Group]; entity Group; action "GET" appliesTo { principal: [User], resource: [Service] };`)
	f.Add(`@id("c")`+"\n"+`permit(principal, action, resource) when { ip("10.0.0.0/8").isInRange(context.source.ip) && context.now > datetime("2026-01-01") };`, ``, ``)
	f.Fuzz(func(t *testing.T, cedarSrc, entities, schema string) {
		files := map[string]string{"p.cedar": cedarSrc}
		if entities != "" {
			files["entities.json"] = entities
		}
		if schema != "" {
			files["schema.cedarschema"] = schema
		}
		s, err := load(t, files, RouteConfig{Method: "GET", Path: "/orders/{id}", Resource: `Order::"{id}"`})
		if err != nil {
			if s != nil {
				t.Fatal("a set came back with an error")
			}
			if !bytes.Contains([]byte(err.Error()), []byte("policies/")) {
				t.Fatalf("error names no file: %v", err)
			}
			return
		}
		s.Decide(&Request{Principal: Principal{Type: "User", ID: "u", Groups: []string{"g"}}, Method: "GET", Path: "/orders/1", Host: "h", Time: time.Unix(0, 0)})
	})
}
