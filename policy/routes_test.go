package policy

import (
	"fmt"
	"testing"
	"testing/fstest"
)

func TestRouteMatch(t *testing.T) {
	for _, tc := range []struct {
		tmpl, method, path string
		want               string // "" = no match, else params as k=v,...
	}{
		{"/orders/{id}", "GET", "/orders/42", "id=42"},
		{"/orders/{id}", "GET", "/orders/42/", "-"},
		{"/orders/{id}", "GET", "/orders/", "-"},
		{"/orders/{id}", "GET", "/orders", "-"},
		{"/orders/{id}", "GET", "/orders/42/items", "-"},
		{"/orders/{id}", "GET", "/orders/a%2Fb", "id=a/b"},
		{"/orders/{id}", "GET", "/orders/caf%C3%A9", "id=café"},
		{"/orders/{id}", "GET", "/orders/%zz", "-"},
		{"/orders/{id}", "POST", "/orders/42", "-"},
		{"/orders", "GET", "/orders", ""},
		{"/orders", "GET", "/orders/", "-"},
		{"/files/{rest...}", "GET", "/files/a/b/c", "rest=a/b/c"},
		{"/files/{rest...}", "GET", "/files/", "rest="},
		{"/files/{rest...}", "GET", "/files", "-"},
		{"/static/", "GET", "/static/x/y", ""},
		{"/static/", "GET", "/static", "-"},
		{"/", "GET", "/", ""},
		{"/", "GET", "/x", "-"},
		{"/{a}/{b}", "GET", "/x/y", "a=x,b=y"},
		{"/{a}/{b}", "GET", "//y", "-"},
		{"/caf%C3%A9", "GET", "/café", ""},
	} {
		t.Run(fmt.Sprintf("%s %s %s", tc.method, tc.tmpl, tc.path), func(t *testing.T) {
			r, err := compileRoute(RouteConfig{Method: "GET", Path: tc.tmpl})
			if err != nil {
				t.Fatal(err)
			}
			params, ok := r.match(tc.method, "h", "", tc.path, nil, false)
			got := "-"
			if ok {
				got = ""
				for i, p := range params {
					if i > 0 {
						got += ","
					}
					got += p.Name + "=" + p.Value
				}
			}
			if got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestRouteHostAndService(t *testing.T) {
	r, err := compileRoute(RouteConfig{Method: "*", Path: "/x", Host: "API.example.com", Service: "orders"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		host, service string
		want          bool
	}{
		{"api.example.com", "", true},
		{"api.example.com", "orders", true},
		{"api.example.com", "billing", false},
		{"other.example.com", "", false},
	} {
		if _, ok := r.match("DELETE", tc.host, tc.service, "/x", nil, false); ok != tc.want {
			t.Errorf("host %q service %q: got %v, want %v", tc.host, tc.service, ok, tc.want)
		}
	}
}

// TestCompileRouteErrors: each bad route is refused for its own reason,
// under the key it is about.
func TestCompileRouteErrors(t *testing.T) {
	for _, tc := range []struct {
		rc         RouteConfig
		path, want string // the field error's key and message
	}{
		{RouteConfig{Method: "GET", Path: "orders"}, "path", `"orders" must start with /`},
		{RouteConfig{Method: "GE T", Path: "/x"}, "method", `"GE T" is not an HTTP method`},
		{RouteConfig{Method: "GET", Path: "/x/{rest...}/y"}, "path", `"/x/{rest...}/y": {name...} must be the last segment`},
		{RouteConfig{Method: "GET", Path: "/x/{a}{b}"}, "path", `"/x/{a}{b}": bad parameter name "a}{b"`},
		{RouteConfig{Method: "GET", Path: "/x/{a}/{a}"}, "path", `"/x/{a}/{a}": parameter "a" used twice`},
		{RouteConfig{Method: "GET", Path: "/x?y=1"}, "path", `"/x?y=1" must not contain a query or fragment`},
		{RouteConfig{Method: "GET", Path: "/x", Host: "h:80"}, "host", `"h:80" must not have a port`},
		{RouteConfig{Method: "GET", Path: "/x/{id}", Resource: "Order::{id}"}, "resource", `"Order::{id}" is not of the form Type::"id"`},
		{RouteConfig{Method: "GET", Path: "/x/{id}", Resource: `Order::"{other}"`}, "resource", `"Order::\"{other}\"": {other} is not a parameter of path "/x/{id}"`},
	} {
		r, err := compileRoute(tc.rc)
		if err == nil || err.Path != tc.path || err.Message != tc.want {
			t.Errorf("%+v: got %v, %v; want the error %s: %s", tc.rc, r, err, tc.path, tc.want)
		}
	}
	// The same routes, mended, compile.
	for _, rc := range []RouteConfig{
		{Method: "GET", Path: "/orders"},
		{Method: "get", Path: "/x"},
		{Method: "*", Path: "/x/{rest...}"},
		{Method: "GET", Path: "/x/{a}/{b}"},
		{Method: "GET", Path: "/x", Host: "h"},
		{Method: "GET", Path: "/x/{id}", Resource: `Order::"{id}"`},
	} {
		if _, err := compileRoute(rc); err != nil {
			t.Errorf("%+v: %v", rc, err)
		}
	}
}

func FuzzRouteMatch(f *testing.F) {
	f.Add("/orders/{id}", "/orders/42")
	f.Add("/files/{rest...}", "/files/a/%2e%2e/b")
	f.Add("/static/", "//static//x")
	f.Fuzz(func(t *testing.T, tmpl, path string) {
		r, err := compileRoute(RouteConfig{Method: "GET", Path: tmpl})
		if err != nil {
			return
		}
		params, ok := r.match("GET", "h", "", path, nil, false)
		if !ok && len(params) != 0 {
			t.Fatal("params returned without a match")
		}
		if ok && r.hasRes {
			r.resource(params)
		}
	})
}

func mapFSOf(kv ...string) fstest.MapFS {
	m := fstest.MapFS{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = &fstest.MapFile{Data: []byte(kv[i+1])}
	}
	return m
}

// TestShadowedRoutes: a route matching nothing an earlier one does not is
// refused with both routes' indexes; routes that only overlap load.
func TestShadowedRoutes(t *testing.T) {
	for _, tc := range []struct {
		first, second RouteConfig
		shadowed      bool
	}{
		{RouteConfig{Method: "GET", Path: "/a/{id}"}, RouteConfig{Method: "GET", Path: "/a/export"}, true},
		{RouteConfig{Method: "GET", Path: "/a/{id}"}, RouteConfig{Method: "GET", Path: "/a/{x}"}, true},
		{RouteConfig{Method: "*", Path: "/a"}, RouteConfig{Method: "DELETE", Path: "/a"}, true},
		{RouteConfig{Method: "GET", Path: "/a"}, RouteConfig{Method: "HEAD", Path: "/a"}, true},
		{RouteConfig{Method: "GET", Path: "/files/"}, RouteConfig{Method: "GET", Path: "/files/{p...}"}, true},
		{RouteConfig{Method: "GET", Path: "/files/"}, RouteConfig{Method: "GET", Path: "/files/x/y"}, true},
		{RouteConfig{Method: "GET", Path: "/a"}, RouteConfig{Method: "GET", Path: "/a", Host: "h.example"}, true},
		{RouteConfig{Method: "GET", Path: "/a", Host: "H.example."}, RouteConfig{Method: "GET", Path: "/a", Host: "h.example"}, true},
		{RouteConfig{Method: "GET", Path: "/a/export"}, RouteConfig{Method: "GET", Path: "/a/{id}"}, false},
		{RouteConfig{Method: "HEAD", Path: "/a"}, RouteConfig{Method: "GET", Path: "/a"}, false},
		{RouteConfig{Method: "GET", Path: "/a", Host: "h.example"}, RouteConfig{Method: "GET", Path: "/a"}, false},
		{RouteConfig{Method: "GET", Path: "/files/"}, RouteConfig{Method: "GET", Path: "/files"}, false},
		{RouteConfig{Method: "GET", Path: "/files/{p...}"}, RouteConfig{Method: "GET", Path: "/files"}, false},
		{RouteConfig{Method: "GET", Path: "/{a}/b"}, RouteConfig{Method: "GET", Path: "//b"}, false},
		{RouteConfig{Service: "x", Method: "GET", Path: "/a"}, RouteConfig{Service: "y", Method: "GET", Path: "/a"}, false},
		{RouteConfig{Method: "GET", Path: "/a/{id}"}, RouteConfig{Method: "POST", Path: "/a/export"}, false},
	} {
		_, err := compileRoutes([]RouteConfig{tc.first, tc.second})
		if got := err != nil; got != tc.shadowed {
			t.Errorf("%+v then %+v: error %v, want shadowed %v", tc.first, tc.second, err, tc.shadowed)
		}
	}
}
