package policy

import (
	"errors"
	"net/url"
	"regexp"
	"slices"
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
		// Case beyond ASCII: "ſ" (U+017F) folds to "s", "ı" upper-cases to "I".
		{"/api/u%C5%BFers", "ambiguous"},
		{"/api/u\u017fers", "ambiguous"},
		{"/adm%C4%B1n/x", "ambiguous"},
		{"/orders/%C5%BF/items", "/orders/{id}/items"}, // in a parameter: the parameter's
		{"/public/caf%C3%A9", "/public/{rest...}"},
		// Combined readings (issue 15): each alone routes the same, together not.
		{"/Orders/42/", "ambiguous"},    // case + trailing slash
		{"/Orders;x/42", "ambiguous"},   // case + ; parameters
		{"/ADMIN;x/users", "ambiguous"}, // case + ; parameters
		{"/Public/x/..;/../admin/y", "ambiguous"},
		{"/api/users;a/", "ambiguous"}, // ; parameters + trailing slash
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

// FuzzPathReadings is differential: routeFor (the closure of the readings,
// each also matched without case) against a brute-force model of how an
// upstream may read a path: every sequence of up to five rewrites, with
// repetition, written here independently (decode %2F, %5C and "\" as "/";
// drop ";" parameters; merge "/" runs; resolve dot-segments; drop trailing
// slashes), each result matched with and without case (Unicode's, whatever
// letters the path has: routeFor reads without case only the paths that
// may fold, see mayFoldPath). routeFor must route
// exactly when the model finds one route and parameters for every reading
// (a reading reached only by dropping a trailing slash counts only when it
// routes), and then to that route.
func FuzzPathReadings(f *testing.F) {
	for _, p := range []string{"/orders/42", "/public/../admin/x", "/a//b", "/x%2Fy", "/a;b/c/", "/ADMIN/x", `/a\b`, "/%2e%2E/",
		"/Orders/42/", "/Orders;x/42", "/api/users;a/", "/Files/", "/orders/42/.;x/", "/public%2F..%2Fadmin/x",
		"/api/u\u017fers", "/api/u%C5%BFers/", "/adm\u0131n/x", "/%E2%84%AA/x", "/orders/42/item%C5%BF"} {
		f.Add(p)
	}
	set, err := load(f, map[string]string{"p.cedar": `@id("all") permit(principal, action, resource);`}, pathRoutes...)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, path string) {
		if len(path) > 64 {
			return // the model is exponential in the rewrites, not the length; keep runs fast
		}
		rt, params, err := set.routeFor("GET", "h", "", path, nil)
		if pathSyntax(path) != nil {
			if err == nil || rt != nil {
				t.Fatal("a malformed path was routed")
			}
			return
		}
		mrt, mparams, ambiguous := modelRoute(set, path)
		switch {
		case errors.Is(err, errTooManyReadings), errors.Is(err, errTooLongToRead):
			// refused for its cost: fail-closed, whatever the model says
		case err != nil && !ambiguous:
			t.Fatalf("%q refused (%v), but every reading of the model routes to %v %v", path, err, tmpl(mrt), mparams)
		case err == nil && ambiguous:
			t.Fatalf("%q routed to %v %v, but the model reads it more than one way", path, tmpl(rt), params)
		case err == nil && (rt != mrt || !slices.Equal(params, mparams)):
			t.Fatalf("%q routed to %v %v, the model to %v %v", path, tmpl(rt), params, tmpl(mrt), mparams)
		}
	})
}

var modelMatrix, modelSlashes = regexp.MustCompile(`;[^/]*`), regexp.MustCompile(`/{2,}`)

// modelRoute is the model of FuzzPathReadings.
func modelRoute(set *Set, path string) (*Route, []Param, bool) {
	rewrites := []func(string) string{
		func(p string) string {
			for _, e := range []string{"%2f", "%2F", "%5c", "%5C", `\`} {
				p = strings.ReplaceAll(p, e, "/")
			}
			return p
		},
		func(p string) string { return modelMatrix.ReplaceAllString(p, "") },
		func(p string) string { return modelSlashes.ReplaceAllString(p, "/") },
		removeDots,
		func(p string) string { return strings.TrimRight(p, "/") },
	}
	const trailing = 4
	// reached: every path a sequence leads to, and whether one without the
	// trailing rewrite does.
	reached := map[string]bool{path: true}
	var walk func(p string, depth int, keepsTrailing bool)
	walk = func(p string, depth int, keepsTrailing bool) {
		if depth == 5 {
			return
		}
		for i, rw := range rewrites {
			q := rw(p)
			if q == "" {
				continue
			}
			k := keepsTrailing && i != trailing
			reached[q] = reached[q] || k
			walk(q, depth+1, k)
		}
	}
	walk(path, 0, true)
	rt, params := set.firstRoute("GET", "h", "", path, nil, false)
	for p, keeps := range reached {
		for _, fold := range []bool{false, true} {
			rt2, p2 := set.firstRoute("GET", "h", "", p, nil, fold)
			if !keeps && rt2 == nil {
				continue
			}
			if rt2 != rt || !slices.Equal(p2, params) {
				return rt, params, true
			}
		}
	}
	return rt, params, false
}

func tmpl(r *Route) string {
	if r == nil {
		return "<none>"
	}
	return r.Template
}

// BenchmarkRouteForWorstPath: a path with every feature, as long as Warden
// reads such a path (maxReadPath): what one hostile request costs.
func BenchmarkRouteForWorstPath(b *testing.B) {
	set, err := load(b, map[string]string{"p.cedar": `@id("all") permit(principal, action, resource);`}, pathRoutes...)
	if err != nil {
		b.Fatal(err)
	}
	path := "/" + strings.Repeat("a;x/./..//%2F%5C\\B/", maxReadPath/20) + "/"
	if len(path) > maxReadPath {
		path = path[:maxReadPath-1] + "/"
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		set.routeFor("GET", "h", "", path, nil)
	}
}

// FuzzQueryReadsOneWay is differential: a query querySyntax accepts reads
// the same to net/url (what context.request.query is built from) and to a
// model of the lenient readers upstreams use (WHATWG URLSearchParams,
// Node's querystring, Python's parse_qsl: split on "&" — and, for some,
// ";" — then on the first "=", "+" as space, each %-escape decoded, a bad
// one kept as written): the same names with the same values. One it
// refuses is one the readers could disagree on, or that has a raw
// control character or too many pairs.
func FuzzQueryReadsOneWay(f *testing.F) {
	for _, q := range []string{"a=1", "debug=%", "x=%GG", "x=1;debug=1", "a=1&&b", "q=na%C3%AFve+coffee&tags=a%2Cb&tags=c&empty=&flag", "%64ebug=1", "x=1%", "a=%0A"} {
		f.Add(q)
	}
	f.Fuzz(func(t *testing.T, q string) {
		if err := querySyntax(q); err != nil {
			if !errors.Is(err, ErrQueryMalformed) {
				t.Fatalf("%q: %v is not ErrQueryMalformed", q, err)
			}
			return
		}
		got, err := url.ParseQuery(q)
		if err != nil {
			t.Fatalf("%q accepted, but net/url reads it with %v", q, err)
		}
		want := url.Values{}
		for _, pair := range strings.FieldsFunc(q, func(r rune) bool { return r == '&' || r == ';' }) {
			k, v, _ := strings.Cut(pair, "=")
			want[modelUnescape(k)] = append(want[modelUnescape(k)], modelUnescape(v))
		}
		if len(got) != len(want) {
			t.Fatalf("%q: net/url reads %v, the lenient model %v", q, got, want)
		}
		for k, vs := range want {
			if !slices.Equal(got[k], vs) {
				t.Fatalf("%q: %q is %q to net/url, %q to the lenient model", q, k, got[k], vs)
			}
		}
	})
}

// modelUnescape decodes as WHATWG does: "+" is a space, a %-escape of two
// hex digits its byte, any other "%" itself.
func modelUnescape(s string) string {
	var b []byte
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '+':
			b = append(b, ' ')
		case c == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]):
			b = append(b, unhex(s[i+1])<<4|unhex(s[i+2]))
			i += 2
		default:
			b = append(b, c)
		}
	}
	return string(b)
}
