package policy_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/wardenauthz/warden/internal/token"
	"github.com/wardenauthz/warden/policy"
)

// FuzzExplain: for any request, the explanation's conclusion is Decide's
// decision, and writing it never panics.
func FuzzExplain(f *testing.F) {
	f.Add("DELETE", "/orders/42", "localhost:8080", "", "admins", "")
	f.Add("GET", "/orders/42/..%2F43", "localhost", "orders", "readers", "mfa")
	f.Add("PATCH", "/Orders/42/", "x", "orders", "", "pwd")
	src := `
@id("all-admins") permit (principal in Group::"dev|admins", action, resource);
@id("readers") permit (principal in Group::"dev|readers", action in Action::"read", resource in Service::"orders");
@id("mfa") @step_up_acr("mfa") forbid (principal, action in Action::"write", resource) unless { context.token.acr == "mfa" };
@id("hide") @status("404") forbid (principal, action, resource == Order::"43");
@id("fresh") @step_up_max_age("600") forbid (principal, action == Action::"DELETE /orders/{id}", resource) when { false };
@id("owner") permit (principal, action, resource is Order) when { resource.owner == principal };`
	sets := []*policy.Set{}
	for _, o := range []func(*policy.Source){nil, func(s *policy.Source) { s.SkipErrors, s.AllowUnrouted = true, true }} {
		ps := policy.Source{FS: mapFS("p.cedar", src, "entities.json", `[{"uid": {"type": "Order", "id": "42"}, "attrs": {"owner": {"__entity": {"type": "User", "id": "dev|alice"}}}, "parents": []}]`), Dir: ".", Name: "p"}
		if o != nil {
			o(&ps)
		}
		s, err := policy.Load(ps, quickRoutes)
		if err != nil {
			f.Fatal(err)
		}
		sets = append(sets, s)
	}
	now := time.Unix(1_800_000_000, 0)
	f.Fuzz(func(t *testing.T, method, path, host, service, groups, acr string) {
		r := &policy.Request{Principal: policy.Principal{Type: "User", ID: "dev|alice"}, Method: method, Path: path, Host: host, Time: now}
		for _, g := range strings.Split(groups, ",") {
			if g != "" {
				r.Principal.Groups = append(r.Principal.Groups, "dev|"+g)
			}
		}
		if service != "" {
			r.Extensions = map[string]string{"service": service}
		}
		if acr != "" {
			r.Token = &token.View{Iss: "dev", Sub: "alice", Acr: acr, AuthTime: now.Add(-time.Duration(len(acr)) * time.Minute)}
		}
		for _, s := range sets {
			e := s.Explain(r)
			if err := e.Agrees(s.Decide(r)); err != nil {
				t.Fatal(err)
			}
			var b bytes.Buffer
			e.WriteText(&b, "")
			if !strings.Contains(b.String(), "decided:") {
				t.Fatalf("no decided line:\n%s", b.String())
			}
		}
	})
}
