package policy_test

import (
	"strings"
	"testing"
	"time"

	"github.com/wardenauthz/warden/examples/quickstart"
	"github.com/wardenauthz/warden/policy"
)

var quickRoutes = []policy.RouteConfig{
	{Service: "orders", Method: "GET", Path: "/healthz"},
	{Service: "orders", Method: "GET", Path: "/orders"},
	{Service: "orders", Method: "POST", Path: "/orders"},
	{Service: "orders", Method: "GET", Path: "/orders/{id}", Resource: `Order::"{id}"`},
	{Service: "orders", Method: "PUT", Path: "/orders/{id}", Resource: `Order::"{id}"`},
	{Service: "orders", Method: "DELETE", Path: "/orders/{id}", Resource: `Order::"{id}"`},
}

func quickSet(t testing.TB) *policy.Set {
	t.Helper()
	s, err := policy.Load(policy.Source{FS: quickstart.FS, Dir: "policies", Name: "quickstart"}, quickRoutes)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func user(id string, groups ...string) policy.Principal {
	return policy.Principal{Type: "User", ID: "dev|" + id, Groups: prefix(groups)}
}

func prefix(gs []string) []string {
	out := make([]string, len(gs))
	for i, g := range gs {
		out[i] = "dev|" + g
	}
	return out
}

func TestQuickstartDecisions(t *testing.T) {
	s := quickSet(t)
	mfa := &policy.Token{Iss: "dev", Sub: "alice", Acr: "mfa"}
	for _, tc := range []struct {
		name    string
		p       policy.Principal
		method  string
		path    string
		token   *policy.Token
		peer    *policy.Workload
		allow   bool
		stepUp  bool
		reasons string
	}{
		{"admin reads", user("alice", "admins"), "GET", "/orders/42", nil, nil, true, false, "orders-admins-all,orders-owner-read"},
		{"reader reads", user("bob", "readers"), "GET", "/orders", nil, nil, true, false, "orders-readers-read"},
		{"writer is a reader (entities.json)", user("carol", "writers"), "GET", "/orders", nil, nil, true, false, "orders-readers-read"},
		{"writer creates", user("carol", "writers"), "POST", "/orders", nil, nil, true, false, "orders-writers-write"},
		{"reader cannot create", user("bob", "readers"), "POST", "/orders", nil, nil, false, false, ""},
		{"reader delete: 403, not step-up", user("bob", "readers"), "DELETE", "/orders/42", nil, nil, false, false, "orders-delete-needs-mfa"},
		{"admin delete without MFA: step-up", user("alice", "admins"), "DELETE", "/orders/42", nil, nil, false, true, "orders-delete-needs-mfa"},
		{"admin delete with MFA", user("alice", "admins"), "DELETE", "/orders/42", mfa, nil, true, false, "orders-admins-all"},
		{"owner reads own order", user("alice"), "GET", "/orders/42", nil, nil, true, false, "orders-owner-read"},
		{"owner cannot read another's order", user("alice"), "GET", "/orders/43", nil, nil, false, false, ""},
		{"invoicer reads an order", policy.Principal{Type: "Workload", ID: "spiffe://cluster.local/ns/billing/sa/invoicer"}, "GET", "/orders/42", nil,
			&policy.Workload{ID: "spiffe://cluster.local/ns/billing/sa/invoicer", TrustDomain: "cluster.local", Namespace: "billing", ServiceAccount: "invoicer"}, true, false, "billing-invoicer-reads-orders"},
		{"invoicer cannot list", policy.Principal{Type: "Workload", ID: "spiffe://cluster.local/ns/billing/sa/invoicer"}, "GET", "/orders", nil, nil, false, false, ""},
		{"anonymous health", policy.Principal{Type: "Anonymous", ID: "anonymous"}, "GET", "/healthz", nil, nil, true, false, "public-health"},
		{"anonymous orders", policy.Principal{Type: "Anonymous", ID: "anonymous"}, "GET", "/orders", nil, nil, false, false, ""},
		{"unrouted method falls back to the host service", user("alice", "admins"), "PROPFIND", "/orders/42", nil, nil, false, false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := s.Decide(&policy.Request{Principal: tc.p, Method: tc.method, Path: tc.path, Host: "localhost:8080", Token: tc.token, Workload: tc.peer, Time: time.Now()})
			if res.Allow != tc.allow || (res.StepUp != nil) != tc.stepUp || strings.Join(res.Reasons, ",") != tc.reasons {
				t.Errorf("got allow=%v stepUp=%v reasons=%q errors=%v, want allow=%v stepUp=%v reasons=%q",
					res.Allow, res.StepUp != nil, strings.Join(res.Reasons, ","), res.Errors, tc.allow, tc.stepUp, tc.reasons)
			}
		})
	}
}

func TestStatusAnnotation(t *testing.T) {
	src := `
@id("all") permit(principal, action, resource);
@id("hide") @status("404") forbid(principal, action, resource) when { context.request.path == "/secret" };
@id("plain") forbid(principal, action, resource) when { context.request.path == "/both" };
@id("hide2") @status("404") forbid(principal, action, resource) when { context.request.path == "/both" };
`
	s, err := policy.Load(policy.Source{FS: mapFS("p.cedar", src), Dir: ".", Name: "p"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r := s.Decide(&policy.Request{Principal: user("a"), Method: "GET", Path: "/secret"}); r.Status != 404 {
		t.Errorf("/secret: status %d, want 404", r.Status)
	}
	if r := s.Decide(&policy.Request{Principal: user("a"), Method: "GET", Path: "/both"}); r.Status != 0 {
		t.Errorf("/both (one forbid lacks @status): status %d, want 0", r.Status)
	}
}

// TestUserThroughWorkload: one policy can require both the user and the
// workload calling on their behalf.
func TestUserThroughWorkload(t *testing.T) {
	src := `@id("alice-via-frontend")
permit (principal == User::"corp|alice", action, resource)
when { context has workload && context.workload.id == "spiffe://cluster.local/ns/web/sa/frontend" };`
	s, err := policy.Load(policy.Source{FS: mapFS("p.cedar", src), Dir: ".", Name: "p"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	alice := policy.Principal{Type: "User", ID: "corp|alice"}
	frontend := &policy.Workload{ID: "spiffe://cluster.local/ns/web/sa/frontend", TrustDomain: "cluster.local", Namespace: "web", ServiceAccount: "frontend"}
	other := &policy.Workload{ID: "spiffe://cluster.local/ns/batch/sa/job", TrustDomain: "cluster.local"}
	for _, tc := range []struct {
		name string
		peer *policy.Workload
		want bool
	}{{"through the frontend", frontend, true}, {"through another workload", other, false}, {"directly", nil, false}} {
		if got := s.Decide(&policy.Request{Principal: alice, Method: "GET", Path: "/x", Workload: tc.peer}).Allow; got != tc.want {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestSenderConstrainedCredential: a policy can require a sender-constrained
// credential (context.credential.kind) and read the token's binding
// (context.token.cnf) for a sensitive action.
func TestSenderConstrainedCredential(t *testing.T) {
	src := `@id("any") permit (principal, action, resource);
@id("bound-deletes") forbid (principal, action == Action::"DELETE", resource)
unless { context has credential && ["dpop", "mtls_bound"].contains(context.credential.kind) };
@id("jkt-for-admin") forbid (principal, action == Action::"PUT", resource)
unless { context has token && context.token has cnf && context.token.cnf has jkt };`
	s, err := policy.Load(policy.Source{FS: mapFS("p.cedar", src), Dir: ".", Name: "p"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	alice := policy.Principal{Type: "User", ID: "corp|alice"}
	bound := &policy.Token{Iss: "https://idp", Sub: "alice", Claims: map[string]any{"cnf": map[string]any{"jkt": "abc"}}}
	plain := &policy.Token{Iss: "https://idp", Sub: "alice"}
	for _, tc := range []struct {
		name, method, kind string
		tok                *policy.Token
		want               bool
	}{
		{"dpop delete", "DELETE", "dpop", bound, true},
		{"mtls-bound delete", "DELETE", "mtls_bound", plain, true},
		{"bearer delete", "DELETE", "jwt", plain, false},
		{"no credential delete", "DELETE", "", nil, false},
		{"bearer read", "GET", "jwt", plain, true},
		{"put with jkt", "PUT", "dpop", bound, true},
		{"put without cnf", "PUT", "mtls_bound", plain, false},
	} {
		r := &policy.Request{Principal: alice, Method: tc.method, Path: "/x", Token: tc.tok, Credential: tc.kind}
		if got := s.Decide(r).Allow; got != tc.want {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}
}
