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
			[]string{"policies/a.cedar:5:24: "}},
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
			[]string{"policies/entities.json:3:3: entity 1:"}},
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
	if err == nil || !strings.Contains(err.Error(), "policies/a.cedar:1:1: the types Long and User are not compatible") {
		t.Fatalf("type error: got %v", err)
	}
	_, err = load(t, map[string]string{"a.cedar": good, SchemaFile: schema}, route, RouteConfig{Method: "POST", Path: "/orders"})
	if err == nil || !strings.Contains(err.Error(), `action Action::"POST /orders" is not declared in the schema`) {
		t.Fatalf("route action missing from schema: got %v", err)
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
