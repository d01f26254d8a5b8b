package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRoutesImport: `warden routes import --out DIR` writes routes and a
// schema fragment that a config loads and validates as they are; a Check
// against an imported route resolves to its action and resource; it never
// overwrites.
func TestRoutesImport(t *testing.T) {
	t.Setenv("XDG_STATE_HOME", t.TempDir())
	dir := t.TempDir()
	pol := filepath.Join(dir, "policies")
	code, out, errs := runCLI(t, "routes", "import", "--service", "pets", "--out", pol, "../../policy/openapi/testdata/petstore.yaml")
	if code != 0 || !strings.Contains(out, "12 routes") || !strings.Contains(errs, `warning: ../../policy/openapi/testdata/petstore.yaml:58: paths["/reports/{name}.csv"]: skipped`) {
		t.Fatalf("import: exit %d\n%s%s", code, out, errs)
	}
	routes, err := os.ReadFile(filepath.Join(pol, "routes.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(routes), `  - {service: pets, method: GET, path: '/v1/pets/{petId}', resource: 'Pet::"{petId}"'}   # showPetById: Action::"GET /v1/pets/{petId}"`) {
		t.Errorf("routes.yaml:\n%s", routes)
	}
	// The routes nested under policy:, the schema fragment as the policy
	// directory's schema.cedarschema, a policy that reads a path parameter.
	var nested strings.Builder
	for _, l := range strings.Split(strings.TrimRight(string(routes), "\n"), "\n") {
		nested.WriteString("  " + l + "\n")
	}
	cfg := filepath.Join(dir, "warden.yaml")
	if err := os.WriteFile(cfg, []byte("identity:\n  dev_issuer: {enabled: true}\nstore: {kind: memory}\ndecision_log: {sinks: []}\nadmin: {addr: 'off'}\npolicy:\n  dir: ./policies\n"+nested.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(pol, "pets.cedar"), []byte(`@id("owners-read-pets")
permit (principal in Group::"dev|owners", action in Action::"read", resource is Pet)
when { context.path_params.petId != "" };
`), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out, errs := runCLI(t, "policy", "validate", "--config", cfg); code != 0 {
		t.Fatalf("validate: exit %d\n%s%s", code, out, errs)
	}
	owner := devToken(t, "--config", cfg, "--sub", "ann", "--groups", "owners")
	code, out, errs = runCLI(t, "check", "--config", cfg, "--explain", "--url", "http://localhost:8080/v1/pets/7", "--context-ext", "service=pets", "--header", "authorization: Bearer "+owner)
	if code != 0 || !strings.Contains(out, `action:      Action::"GET /v1/pets/{petId}"`) || !strings.Contains(out, `resource:    Pet::"7"`) ||
		!strings.Contains(out, "route:      GET /v1/pets/{petId} (service pets) -> resource Pet::\"{petId}\", petId=7") {
		t.Errorf("check: exit %d\n%s%s", code, out, errs)
	}
	code, out, errs = runCLI(t, "check", "--config", cfg, "--url", "http://localhost:8080/v1/pets/mine", "--context-ext", "service=pets", "--header", "authorization: Bearer "+owner)
	if code != 1 || !strings.Contains(out, `action:      Action::"GET /v1/pets/mine"`) {
		t.Errorf("check /pets/mine: exit %d\n%s%s", code, out, errs)
	}
	if code, _, errs := runCLI(t, "routes", "import", "--out", pol, "../../policy/openapi/testdata/petstore.yaml"); code != 2 || !strings.Contains(errs, "exists; not overwriting it") {
		t.Errorf("overwrite: exit %d %s", code, errs)
	}
	if code, out, _ := runCLI(t, "routes", "import", "--schema", "../../policy/openapi/testdata/petstore.yaml"); code != 0 || !strings.Contains(out, `action "GET /v1/pets/{petId}" in [read, GET]`) {
		t.Errorf("--schema: exit %d\n%s", code, out)
	}
	if code, _, errs := runCLI(t, "routes"); code != 2 || !strings.Contains(errs, "warden routes import [flags] OPENAPI_FILE") {
		t.Errorf("usage: exit %d %s", code, errs)
	}
}
