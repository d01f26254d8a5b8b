package policy_test

import (
	"fmt"
	"testing/fstest"

	"github.com/wardenauthz/warden/policy"
)

// Load reads the Cedar policies of a directory (here an in-memory fs.FS)
// with the route table that names the actions and resources; Decide then
// authorizes one request.
func ExampleSet_Decide() {
	fsys := fstest.MapFS{"policies/orders.cedar": {Data: []byte(`
@id("staff-read")
permit(principal in Group::"corp|staff", action == Action::"GET /orders/{id}", resource);

@id("no-archived")
@status("404")
forbid(principal, action, resource == Order::"archived");
`)}}
	routes := []policy.RouteConfig{
		{Service: "orders", Method: "GET", Path: "/orders/{id}", Resource: `Order::"{id}"`},
	}
	set, err := policy.Load(policy.Source{FS: fsys, Dir: "policies", Name: "policies"}, routes)
	if err != nil {
		fmt.Println(err)
		return
	}

	alice := policy.Principal{Type: "User", ID: "corp|alice", Groups: []string{"corp|staff"}}
	bob := policy.Principal{Type: "User", ID: "corp|bob"}
	for _, r := range []*policy.Request{
		{Principal: alice, Method: "GET", Host: "orders", Path: "/orders/42"},
		{Principal: bob, Method: "GET", Host: "orders", Path: "/orders/42"},
		{Principal: alice, Method: "GET", Host: "orders", Path: "/orders/archived"},
		{Principal: alice, Method: "DELETE", Host: "orders", Path: "/orders/42"},
	} {
		res := set.Decide(r)
		fmt.Println(r.Principal.ID, r.Method, r.Path, "allow:", res.Allow, res.Reasons, res.Status, res.RouteUnknown)
	}
	// Output:
	// corp|alice GET /orders/42 allow: true [staff-read] 0 false
	// corp|bob GET /orders/42 allow: false [] 0 false
	// corp|alice GET /orders/archived allow: false [no-archived] 404 false
	// corp|alice DELETE /orders/42 allow: false [] 0 true
}

// A policy that does not parse is reported by file, line and column, and
// nothing is loaded.
func ExampleLoad_error() {
	fsys := fstest.MapFS{"policies/bad.cedar": {Data: []byte("@id(\"a\")\npermit(principal, action, resource) when { context. };\n")}}
	_, err := policy.Load(policy.Source{FS: fsys, Dir: "policies", Name: "policies"}, nil)
	fmt.Println(err)
	// Output:
	// policies/bad.cedar:2:54: ";": expected ident
}
