package policy

import (
	"errors"
	"strings"
	"testing"
)

// pathRoutes is a route table in which every path trick of SECURITY.md
// would reach a different route (and so different policies) if Warden
// guessed.
var pathRoutes = []RouteConfig{
	{Method: "GET", Path: "/public/{rest...}"},
	{Method: "GET", Path: "/admin/{rest...}"},
	{Method: "GET", Path: "/orders/{id}", Resource: `Order::"{id}"`},
	{Method: "GET", Path: "/orders/{id}/items"},
	{Method: "GET", Path: "/files/"},
	{Method: "GET", Path: "/api/users"},
}

func TestPathReadings(t *testing.T) {
	set, err := load(t, map[string]string{"p.cedar": `@id("all") permit(principal, action, resource);`}, pathRoutes...)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path string
		want string // the route template, "-" for none, "malformed" or "ambiguous"
	}{
		// Clean paths read one way.
		{"/orders/42", "/orders/{id}"},
		{"/orders/42?x=/admin/..", "/orders/{id}"},
		{"/orders/ABC", "/orders/{id}"}, // case in a parameter is the parameter's
		{"/files/", "/files/"},          // trailing slash on a prefix route: no other route
		{"/files/a/b", "/files/"},
		{"/nowhere", "-"},
		{"/nowhere/", "-"}, // neither reading routes
		{"/public/caf%C3%A9", "/public/{rest...}"},
		{"/orders/%34%32", "/orders/{id}"}, // %-encoded unreserved characters are those characters
		// Dot-segments: the upstream resolves them (RFC 3986).
		{"/public/../admin/users", "ambiguous"},
		{"/public/%2e%2e/admin/users", "ambiguous"},
		{"/public/%2E%2e/admin/users", "ambiguous"},
		{"/public/./x", "ambiguous"}, // rest differs: "./x" or "x"
		{"/orders/42/./items", "ambiguous"},
		{"/public/..x", "/public/{rest...}"}, // not a dot-segment
		{"/../../public/x", "ambiguous"},
		// Repeated slashes: many upstreams merge them.
		{"/public//admin", "ambiguous"},
		{"//admin/users", "ambiguous"},
		{"/orders//42", "ambiguous"},
		// Encoded and back slashes: some upstreams decode them before routing.
		{"/orders/a%2Fitems", "ambiguous"},
		{"/orders/a%2fitems", "ambiguous"},
		{"/public%2F..%2Fadmin/x", "ambiguous"},
		{`/public\..\admin\x`, "ambiguous"},
		{"/orders/a%5Cb", "ambiguous"},
		// ; parameters: servlet containers drop them.
		{"/admin;x=1/users", "ambiguous"},
		{"/api/users;jsessionid=1", "ambiguous"},
		{"/orders/42;v=1", "ambiguous"}, // id differs
		// Trailing slash: an upstream may serve /api/users for /api/users/.
		{"/api/users/", "ambiguous"},
		{"/orders/42/", "ambiguous"},
		// Case: an upstream may match routes without case.
		{"/ADMIN/users", "ambiguous"},
		{"/Orders/42", "ambiguous"},
		{"/%41dmin/users", "ambiguous"},
		// Malformed: refused, never routed.
		{"orders/42", "malformed"},
		{"*", "malformed"},
		{"/orders/%zz", "malformed"},
		{"/orders/%4", "malformed"},
		{"/orders/%00", "malformed"},
		{"/orders/4\x002", "malformed"},
		{"/orders/%0d%0aX-Injected:1", "malformed"},
		{"/orders/42#frag", "malformed"},
	} {
		t.Run(tc.path, func(t *testing.T) {
			res := set.Decide(&Request{Principal: Principal{Type: "Anonymous", ID: "anonymous"}, Method: "GET", Host: "h", Path: tc.path})
			got := res.Template
			switch {
			case errors.Is(res.PathError, ErrPathMalformed):
				got = "malformed"
			case errors.Is(res.PathError, ErrPathAmbiguous):
				got = "ambiguous"
			case res.PathError != nil:
				t.Fatalf("unclassified path error %v", res.PathError)
			case got == "":
				got = "-"
			}
			if got != tc.want {
				t.Errorf("got %s (%v), want %s", got, res.PathError, tc.want)
			}
			if res.PathError != nil && res.Allow {
				t.Error("a refused path was allowed")
			}
		})
	}
}

// FuzzPathReadings: any path either reads one way, and then every other
// reading that routes routes the same, or is refused; never a panic.
func FuzzPathReadings(f *testing.F) {
	for _, p := range []string{"/orders/42", "/public/../admin/x", "/a//b", "/x%2Fy", "/a;b/c/", "/ADMIN/x", `/a\b`, "/%2e%2E/"} {
		f.Add(p)
	}
	set, err := load(f, map[string]string{"p.cedar": `@id("all") permit(principal, action, resource);`}, pathRoutes...)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, path string) {
		rt, params, err := set.routeFor("GET", "h", "", path, nil)
		if err != nil {
			if rt != nil || len(params) != 0 {
				t.Fatal("a refused path was routed")
			}
			return
		}
		if pathSyntax(path) != nil {
			t.Fatal("a malformed path was routed")
		}
		rs, _ := readings(path)
		for _, r := range rs {
			rt2, _ := set.firstRoute("GET", "h", "", r.path, nil, false)
			if rt2 != rt && !(r.routedOnly && rt2 == nil) {
				t.Fatalf("%q routes to %v but, with %s (%q), to %v", path, tmpl(rt), r.why, r.path, tmpl(rt2))
			}
		}
		if !strings.HasPrefix(path, "/") {
			t.Fatal("routed a path without a leading /")
		}
	})
}

func tmpl(r *Route) string {
	if r == nil {
		return "<none>"
	}
	return r.Template
}
