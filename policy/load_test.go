package policy

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
)

func load(t testing.TB, files map[string]string, routes ...RouteConfig) (*Set, error) {
	t.Helper()
	m := fstest.MapFS{}
	for name, body := range files {
		m["p/"+name] = &fstest.MapFile{Data: []byte(body)}
	}
	return Load(Source{FS: m, Dir: "p", Name: "policies"}, routes)
}

func TestLoadErrorsNameFileLineColumn(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files map[string]string
		want  []string
	}{
		{"syntax error", map[string]string{"a.cedar": "@id(\"a\")\npermit(principal, action, resource);\n\n@id(\"b\")\npermit(principal action, resource);\n"},
			[]string{`policies/a.cedar:5:18: got "action", want ","`}},
		{"unclosed brace", map[string]string{"a.cedar": "@id(\"a\")\npermit(principal, action, resource) when {\n  \"}\" == \"x\"\n\n@id(\"b\")\npermit(principal, action, resource);"},
			[]string{`policies/a.cedar:2:42: "{" is never closed: the next policy starts at 5:1`}},
		{"unclosed at the end", map[string]string{"a.cedar": "@id(\"a\")\npermit(principal, action, resource) when {\n  principal.level > 1\n"},
			[]string{`policies/a.cedar:2:42: "{" is never closed: the file ends before its "}"`}},
		{"wrong closer", map[string]string{"a.cedar": "@id(\"a\")\npermit(principal, action, resource) when {\n  principal.level > 1;\n\n@id(\"b\")\npermit(principal, action, resource);\n"},
			[]string{`policies/a.cedar:3:22: got ";", want "}"`}},
		{"missing @id", map[string]string{"a.cedar": "\n  permit(principal, action, resource);"},
			[]string{`policies/a.cedar:2:3: policy has no @id`}},
		{"duplicate @id across files", map[string]string{
			"a.cedar": `@id("x") permit(principal, action, resource);`,
			"b.cedar": "\n@id(\"x\") forbid(principal, action, resource);"},
			[]string{`policies/b.cedar:2:1: duplicate @id("x"), first used at policies/a.cedar:1:1`}},
		{"bad annotations", map[string]string{"a.cedar": `@id("a") @status("200") forbid(principal, action, resource);
@id("b") @step_up_acr("mfa") permit(principal, action, resource);
@id("c") @step_up_max_age("soon") forbid(principal, action, resource);`},
			[]string{`a.cedar:1:1: @status("200")`, `a.cedar:2:1: @step_up_acr applies to forbid`, `a.cedar:3:1: @step_up_max_age("soon")`}},
		{"unknown action", map[string]string{"a.cedar": "@id(\"a\")\npermit(principal, action == Action::\"GET /ordrs/{id}\", resource);"},
			[]string{`policies/a.cedar:1:1: policy "a": unknown action Action::"GET /ordrs/{id}"`}},
		{"entities syntax", map[string]string{"a.cedar": `@id("a") permit(principal, action, resource);`,
			"entities.json": "[\n  {\"uid\": {\"type\": \"Group\", \"id\": \"g\"},\n   \"parents\": [}\n]"},
			[]string{"policies/entities.json:3:"}},
		{"entities bad entity", map[string]string{"a.cedar": `@id("a") permit(principal, action, resource);`,
			"entities.json": "[\n  {\"uid\": {\"type\": \"Group\", \"id\": \"g\"}},\n  {\"uid\": 7}\n]"},
			[]string{`policies/entities.json:3:3: entity 2: uid: want {"type": ..., "id": ...}, got 7`, `policies/entities.json:2:3: entity Group::"g": invalid entity: "parents" is missing or null`}},
		{"no policies", map[string]string{"entities.json": "[]"}, []string{"no *.cedar policy files"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := load(t, tc.files, RouteConfig{Method: "GET", Path: "/orders/{id}"})
			if err == nil {
				t.Fatal("want an error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
}

func TestSchemaValidation(t *testing.T) {
	schema := `
entity Group;
entity User in [Group];
entity Service;
entity Order in [Service] { owner: User };
action "GET /orders/{id}" appliesTo { principal: [User], resource: [Order], context: {} };
`
	good := `@id("a") permit(principal in Group::"admins", action == Action::"GET /orders/{id}", resource);`
	route := RouteConfig{Method: "GET", Path: "/orders/{id}", Resource: `Order::"{id}"`}
	if _, err := load(t, map[string]string{"a.cedar": good, SchemaFile: schema}, route); err != nil {
		t.Fatalf("valid against schema: %v", err)
	}
	bad := "@id(\"a\")\npermit(principal, action == Action::\"GET /orders/{id}\", resource) when { resource.owner == 3 };"
	_, err := load(t, map[string]string{"a.cedar": bad, SchemaFile: schema}, route)
	if err == nil || !strings.Contains(err.Error(), `policies/a.cedar:2:74: policy "a": the types Long and User are not compatible`) {
		t.Fatalf("type error: got %v", err)
	}
	// Warden's model declares the route actions the schema does not.
	if _, err = load(t, map[string]string{"a.cedar": good, SchemaFile: schema}, route, RouteConfig{Method: "POST", Path: "/orders"}); err != nil {
		t.Fatalf("a route action the schema leaves to Warden's model: %v", err)
	}
}

// TestHeadIsGet: a HEAD request is decided as the GET it reads, on a GET
// route, a "*" route and without a route; a policy naming Action::"HEAD"
// would never apply, so it is a load error unless a route is declared for
// HEAD alone (whose action it then is).
func TestHeadIsGet(t *testing.T) {
	allow := `@id("all") permit(principal, action, resource);`
	s, err := Load(Source{FS: mapFSOf("p.cedar", allow), Dir: ".", Name: "p", AllowUnrouted: true},
		[]RouteConfig{{Method: "GET", Path: "/a"}, {Method: "*", Path: "/b"}, {Method: "HEAD", Path: "/c"}})
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{"/a": `Action::"GET /a"`, "/b": `Action::"GET /b"`, "/c": `Action::"HEAD /c"`, "/d": `Action::"GET"`} {
		res := s.Decide(&Request{Principal: Principal{Type: "Anonymous", ID: "anonymous"}, Method: "head", Host: "h", Path: path})
		if got := res.Action.String(); got != want {
			t.Errorf("HEAD %s: action %s, want %s", path, got, want)
		}
	}
	_, err = load(t, map[string]string{"a.cedar": "@id(\"h\")\nforbid(principal, action == Action::\"HEAD\", resource);"}, RouteConfig{Method: "GET", Path: "/a"})
	if err == nil || !strings.Contains(err.Error(), `policies/a.cedar:1:1: policy "h": no request is decided as Action::"HEAD"`) {
		t.Errorf("a policy on HEAD: got %v", err)
	}
	if _, err = load(t, map[string]string{"a.cedar": `@id("h") forbid(principal, action == Action::"HEAD /b", resource);`}, RouteConfig{Method: "*", Path: "/b"}); err == nil {
		t.Error(`Action::"HEAD /b" of a "*" route loaded`)
	}
}

// TestHostsCompareOneWay: a route's host and the request's compare without
// case, port or trailing dot, and an IDN in either form.
func TestHostsCompareOneWay(t *testing.T) {
	s, err := Load(Source{FS: mapFSOf("p.cedar", `@id("all") permit(principal, action, resource);`), Dir: ".", Name: "p"},
		[]RouteConfig{{Method: "GET", Path: "/a", Host: "API.example.com."}, {Method: "GET", Path: "/b", Host: "bücher.example"}})
	if err != nil {
		t.Fatal(err)
	}
	for host, path := range map[string]string{"api.example.com": "/a", "Api.Example.Com.:8443": "/a", "api.example.com..": "/a",
		"xn--bcher-kva.example": "/b", "BÜCHER.example": "/b", "bücher.example.:443": "/b"} {
		res := s.Decide(&Request{Principal: Principal{Type: "Anonymous", ID: "anonymous"}, Method: "GET", Host: host, Path: path})
		if res.Template != path {
			t.Errorf("%s %s: route %q", host, path, res.Template)
		}
	}
}

// TestLoadSubdirectories: *.cedar files in subdirectories are read, in
// lexical order of their paths; errors name them by path under the
// directory as given; names starting with "." are skipped, so a Kubernetes
// ConfigMap volume's ..data and ..TIMESTAMP copies are not read twice.
func TestLoadSubdirectories(t *testing.T) {
	s, err := load(t, map[string]string{
		"top.cedar":                       `@id("top") permit(principal, action, resource);`,
		"teams/orders/orders.cedar":       `@id("orders") permit(principal, action, resource);`,
		"teams/billing.cedar":             `@id("billing") forbid(principal, action, resource);`,
		"..2026_11_28_10_00_00.1/x.cedar": `@id("top") permit(principal, action, resource);`,
		"..data/x.cedar":                  `@id("top") permit(principal, action, resource);`,
		".hidden/y.cedar":                 `not cedar`,
		"teams/notes.txt":                 `not cedar`,
	})
	if err != nil {
		t.Fatal(err)
	}
	if s.Len() != 3 {
		t.Errorf("%d policies, want 3 (top, teams/billing, teams/orders/orders)", s.Len())
	}
	_, err = load(t, map[string]string{
		"a.cedar":            `@id("x") permit(principal, action, resource);`,
		"sub/deeper/b.cedar": "\n@id(\"x\") forbid(principal, action, resource);",
		"sub/c.cedar":        "@id(\"c\") permit(principal action, resource);",
	})
	for _, want := range []string{
		`policies/sub/deeper/b.cedar:2:1: duplicate @id("x"), first used at policies/a.cedar:1:1`,
		`policies/sub/c.cedar:1:`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("want %q in:\n%v", want, err)
		}
	}
	// Deterministic: sub/c.cedar (sorted before sub/deeper/) is reported first.
	if err != nil && strings.Index(err.Error(), "sub/c.cedar") > strings.Index(err.Error(), "sub/deeper/b.cedar") {
		t.Errorf("not in path order:\n%v", err)
	}
}

// TestLoadConfigMapVolume: a Kubernetes ConfigMap volume on disk (files are
// links into ..data, a link to the current ..TIMESTAMP directory) loads each
// policy once.
func TestLoadConfigMapVolume(t *testing.T) {
	dir := t.TempDir()
	ts := filepath.Join(dir, "..2026_11_28_10_00_00.123")
	if err := os.Mkdir(ts, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{
		"orders.cedar":  `@id("orders") permit(principal, action, resource);`,
		"billing.cedar": `@id("billing") forbid(principal, action, resource);`,
	} {
		if err := os.WriteFile(filepath.Join(ts, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(filepath.Join("..data", name), filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(filepath.Base(ts), filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	s, err := Load(Source{FS: os.DirFS(dir), Dir: ".", Name: dir}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s.Len() != 2 {
		t.Errorf("%d policies, want 2", s.Len())
	}
}
