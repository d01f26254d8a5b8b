package policy_test

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/cedar-policy/cedar-go"

	"github.com/wardenauthz/warden/internal/token"
	"github.com/wardenauthz/warden/policy"
)

func explainSet(t *testing.T, src string, o func(*policy.Source)) *policy.Set {
	t.Helper()
	ps := policy.Source{FS: mapFS("p.cedar", src, "entities.json", `[{"uid": {"type": "Order", "id": "42"}, "attrs": {"owner": {"__entity": {"type": "User", "id": "dev|alice"}}}, "parents": []}]`), Dir: ".", Name: "p"}
	if o != nil {
		o(&ps)
	}
	s, err := policy.Load(ps, quickRoutes)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestExplainDecisiveLine: each kind of decision is explained by its rule,
// and the explanation's conclusion is Decide's.
func TestExplainDecisiveLine(t *testing.T) {
	qs := quickSet(t)
	mfa := &token.View{Iss: "dev", Sub: "alice", Acr: "mfa"}
	errSet := explainSet(t, `
@id("all") permit (principal, action, resource);
@id("needs-acr") forbid (principal, action, resource) unless { context.token.acr == "mfa" };`, nil)
	skipSet := explainSet(t, `
@id("all") permit (principal, action, resource);
@id("needs-acr") forbid (principal, action, resource) unless { context.token.acr == "mfa" };`, func(s *policy.Source) { s.SkipErrors = true })
	maxAgeSet := explainSet(t, `
@id("all") permit (principal, action, resource);
@id("fresh") @step_up_max_age("60") forbid (principal, action == Action::"DELETE /orders/{id}", resource) when { false };`, nil)
	now := time.Now().Truncate(time.Second)
	old := &token.View{Iss: "dev", Sub: "alice", AuthTime: now.Add(-time.Hour)}
	fresh := &token.View{Iss: "dev", Sub: "alice", AuthTime: now.Add(-time.Second)}
	for _, tc := range []struct {
		name   string
		set    *policy.Set
		req    policy.Request
		reason string
		rule   string
	}{
		{"allow", qs, policy.Request{Principal: user("bob", "readers"), Method: "GET", Path: "/orders"}, "policy_allow", "permit orders-readers-read applies and no forbid"},
		{"plain deny", qs, policy.Request{Principal: user("bob", "readers"), Method: "POST", Path: "/orders"}, "policy_deny", "no permit matched: default deny"},
		{"forbid", qs, policy.Request{Principal: user("bob", "readers"), Method: "DELETE", Path: "/orders/42"}, "policy_deny", "forbid orders-delete-needs-mfa applies"},
		{"step-up", qs, policy.Request{Principal: user("alice", "admins"), Method: "DELETE", Path: "/orders/42"}, "step_up", "forbid orders-delete-needs-mfa applies, and only it: permit orders-admins-all would allow; step-up asked"},
		{"step-up cured", qs, policy.Request{Principal: user("alice", "admins"), Method: "DELETE", Path: "/orders/42", Token: mfa}, "policy_allow", "permit orders-admins-all applies and no forbid"},
		{"route_unknown", qs, policy.Request{Principal: user("alice", "admins"), Method: "GET", Path: "/nope", Host: "localhost"}, "route_unknown", `no route of service "localhost" matches, and policy.unrouted is deny`},
		{"ambiguous path", qs, policy.Request{Principal: user("alice", "admins"), Method: "GET", Path: "/orders/42/..%2f43", Host: "localhost"}, "request_invalid", "the request path is refused before any policy (400)"},
		{"step_up_max_age", maxAgeSet, policy.Request{Principal: user("alice"), Method: "DELETE", Path: "/orders/42", Token: old}, "step_up", "permit all applies, but the request is in the scope of forbid fresh, whose @step_up_max_age (60s) is not met (the token's auth_time is 1h0m0s old)"},
		{"step_up_max_age met", maxAgeSet, policy.Request{Principal: user("alice"), Method: "DELETE", Path: "/orders/42", Token: fresh}, "policy_allow", "permit all applies and no forbid"},
		{"erroring forbid", errSet, policy.Request{Principal: user("alice"), Method: "GET", Path: "/orders"}, "policy_error", "forbid needs-acr errored: policy_error (policy.on_error: deny)"},
		{"erroring forbid skipped", skipSet, policy.Request{Principal: user("alice"), Method: "GET", Path: "/orders"}, "policy_allow", "permit all applies and no forbid (forbid needs-acr errored and is ignored: policy.on_error: skip)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.req
			if r.Host == "" {
				r.Host = "localhost:8080"
			}
			r.Time = now
			res := tc.set.Decide(&r)
			e := tc.set.Explain(&r)
			if err := e.Agrees(res); err != nil {
				t.Error(err)
			}
			if e.Reason != tc.reason || !strings.Contains(e.Rule, tc.rule) {
				t.Errorf("reason %s rule %q; want %s, %q", e.Reason, e.Rule, tc.reason, tc.rule)
			}
		})
	}
}

// TestExplainDetails: the route, the entities' ancestors and each policy's
// scope and conditions are shown as evaluated.
func TestExplainDetails(t *testing.T) {
	s := quickSet(t)
	e := s.Explain(&policy.Request{Principal: user("carol", "writers"), Method: "GET", Path: "/orders/42", Host: "localhost:8080", Time: time.Now()})
	if !e.Route.Matched || e.Route.Path != "/orders/{id}" || e.Route.Resource != `Order::"{id}"` || len(e.Route.Params) != 1 || e.Route.Params[0].Value != "42" {
		t.Errorf("route: %+v", e.Route)
	}
	if e.Principal.UID != `User::"dev|carol"` || !strings.Contains(strings.Join(e.Principal.Ancestors, " "), `Group::"dev|writers"`) ||
		!strings.Contains(strings.Join(e.Principal.Ancestors, " "), `Group::"dev|readers"`) {
		t.Errorf("principal: %+v", e.Principal)
	}
	if e.Action.UID != `Action::"GET /orders/{id}"` || !strings.Contains(strings.Join(e.Action.Ancestors, " "), `Action::"read"`) {
		t.Errorf("action: %+v", e.Action)
	}
	if e.Resource.UID != `Order::"42"` || strings.Join(e.Resource.Ancestors, " ") != `Service::"orders"` {
		t.Errorf("resource: %+v", e.Resource)
	}
	byID := map[string]policy.PolicyExplanation{}
	for _, p := range e.Policies {
		byID[p.ID] = p
	}
	if p := byID["orders-readers-read"]; p.Outcome != policy.OutcomeApplies || !p.Scope.Matched {
		t.Errorf("orders-readers-read: %+v", p)
	}
	// carol's principal is not the owner: the condition is false.
	if p := byID["orders-owner-read"]; p.Outcome != policy.OutcomeConditionFalse || len(p.Conditions) != 1 || p.Conditions[0].Result != "false" ||
		!strings.Contains(p.Conditions[0].Text, "resource.owner == principal") {
		t.Errorf("orders-owner-read: %+v", p)
	}
	if _, ok := byID["orders-admins-all"]; ok {
		t.Error("orders-admins-all: its principal scope cannot match; the index should rule it out")
	}
	if e.Skipped == 0 || len(e.Policies)+e.Skipped != s.Len() {
		t.Errorf("%d candidates, %d skipped of %d", len(e.Policies), e.Skipped, s.Len())
	}
	// No route: the routes considered, each with why it did not match.
	e = s.Explain(&policy.Request{Principal: user("carol"), Method: "PATCH", Path: "/orders/42", Host: "localhost:8080", Extensions: map[string]string{"service": "orders"}})
	if e.Route.Matched || len(e.Route.Considered) != len(quickRoutes) || !strings.Contains(e.Route.Note, "route_unknown") {
		t.Fatalf("unrouted: %+v", e.Route)
	}
	if c := e.Route.Considered[3]; c.Route != "GET /orders/{id}" || c.Why != "method PATCH, the route's is GET" {
		t.Errorf("considered: %+v", c)
	}
	e = s.Explain(&policy.Request{Principal: user("carol"), Method: "GET", Path: "/order/42", Host: "localhost:8080", Extensions: map[string]string{"service": "orders"}})
	if c := e.Route.Considered[3]; c.Why != `segment 1 is "order", the route's is "orders"` {
		t.Errorf("considered: %+v", c)
	}
	// A scope that does not match says which part.
	rs := explainSet(t, `@id("r") permit (principal, action, resource == Order::"43") when { false };`, nil)
	e = rs.Explain(&policy.Request{Principal: user("alice"), Method: "GET", Path: "/orders/42", Host: "x"})
	if p := e.Policies[0]; p.Outcome != policy.OutcomeScopeMismatch || p.Scope.Principal != "matched" || p.Scope.Resource != "no" || p.Conditions[0].Result != "not_evaluated" {
		t.Errorf("scope: %+v", p)
	}
	// An erroring condition carries its error.
	es := explainSet(t, `@id("f") forbid (principal, action, resource) when { context.token.acr == "mfa" };`, nil)
	e = es.Explain(&policy.Request{Principal: user("alice"), Method: "GET", Path: "/orders", Host: "x"})
	if len(e.Policies) != 1 || e.Policies[0].Outcome != policy.OutcomeError || e.Policies[0].Conditions[0].Result != "error" || e.Policies[0].Error == "" {
		t.Errorf("error: %+v", e.Policies)
	}
}

// TestExplainAgreesWithDecide: over generated policy sets and requests, the
// explanation's conclusion is always Decide's decision (and ExplainCedar's
// Authorize's).
func TestExplainAgreesWithDecide(t *testing.T) {
	rnd := rand.New(rand.NewPCG(19, 2))
	pick := func(xs ...string) string { return xs[rnd.IntN(len(xs))] }
	principals := []policy.Principal{user("alice", "admins"), user("alice"), user("bob", "readers"), user("carol", "writers"), {Type: "Anonymous", ID: "anonymous"}}
	methods := []string{"GET", "POST", "PUT", "DELETE", "PATCH"}
	paths := []string{"/orders", "/orders/42", "/orders/43", "/healthz", "/x", "/orders/42/", "/ORDERS/42"}
	tokens := []*token.View{nil, {Iss: "dev", Sub: "alice", Acr: "mfa"}, {Iss: "dev", Sub: "alice", Acr: "pwd"}}
	checked := 0
	for n := 0; n < 250; n++ {
		var b strings.Builder
		for i := 0; i < 1+rnd.IntN(5); i++ {
			effect := pick("permit", "forbid")
			if effect == "forbid" {
				b.WriteString(pick("", `@status("404") `, `@step_up_acr("mfa") `, `@step_up_acr("mfa") @step_up_max_age("300") `))
			}
			fmt.Fprintf(&b, "@id(\"p%d\") %s (%s, %s, %s)", i, effect,
				pick("principal", `principal == User::"dev|alice"`, `principal in Group::"dev|readers"`, `principal in Group::"dev|admins"`, "principal is User", "principal is Anonymous"),
				pick("action", `action == Action::"GET /orders/{id}"`, `action in Action::"read"`, `action in Action::"write"`, `action in [Action::"DELETE /orders/{id}", Action::"POST /orders"]`, `action == Action::"GET"`),
				pick("resource", `resource in Service::"orders"`, "resource is Order", `resource == Order::"42"`))
			for j := 0; j < rnd.IntN(3); j++ {
				fmt.Fprintf(&b, " %s { %s }", pick("when", "unless"), pick(
					"true", "false", `context.request.method == "GET"`, "resource.owner == principal", `context.token.acr == "mfa"`,
					`context has token && context.token.acr == "mfa"`, "9223372036854775807 + 1 > 0", `principal has email`, `resource has owner`))
			}
			b.WriteString(";\n")
		}
		src := b.String()
		skip, unrouted := rnd.IntN(3) == 0, rnd.IntN(3) == 0
		s := explainSet(t, src, func(ps *policy.Source) { ps.SkipErrors, ps.AllowUnrouted = skip, unrouted })
		for k := 0; k < 30; k++ {
			r := &policy.Request{Principal: principals[rnd.IntN(len(principals))], Method: pick(methods...), Path: pick(paths...),
				Host: pick("localhost:8080", "other"), Token: tokens[rnd.IntN(len(tokens))], Time: time.Now()}
			if rnd.IntN(2) == 0 {
				r.Extensions = map[string]string{"service": "orders"}
			}
			res := s.Decide(r)
			if err := s.Explain(r).Agrees(res); err != nil {
				t.Fatalf("%v\npolicies:\n%s\nrequest: %+v", err, src, r)
			}
			req := cedar.Request{Principal: res.Principal, Action: res.Action, Resource: res.Resource, Context: res.Context}
			if err := s.ExplainCedar(nil, req).Agrees(s.Authorize(nil, req)); err != nil {
				t.Fatalf("cedar: %v\npolicies:\n%s\nrequest: %+v", err, src, req)
			}
			checked++
		}
	}
	t.Logf("%d requests explained", checked)
}
