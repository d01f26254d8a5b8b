package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPolicyTestCLI: `warden policy test` on the quick start's tests
// passes (exit 0); a failing expectation exits 1 naming file:line and what
// was decided; a broken test file exits 2 naming file:line, after the other
// files ran.
func TestPolicyTestCLI(t *testing.T) {
	t.Setenv("WARDEN_CONFIG", "")
	code, out, errs := runCLI(t, "policy", "test", "-v", "../../examples/quickstart/tests")
	if code != 0 || !strings.Contains(out, "20 passed, 0 failed") || strings.Contains(out, "FAIL") {
		t.Fatalf("quick start tests: exit %d\n%s%s", code, out, errs)
	}
	if !strings.Contains(out, "ok    ../../examples/quickstart/tests/orders.yaml:5: admins read any order") {
		t.Errorf("-v does not list the passing tests:\n%s", out)
	}

	dir := t.TempDir()
	failing := filepath.Join(dir, "failing.yaml")
	if err := os.WriteFile(failing, []byte(`- name: readers delete
  method: DELETE
  url: http://localhost:8080/orders/42
  token_claims: {sub: bob, groups: [readers]}
  decision: allow
`), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errs = runCLI(t, "policy", "test", failing)
	if code != 1 || !strings.Contains(out, "FAIL  "+failing+":1: readers delete") ||
		!strings.Contains(out, "decision deny, want allow") ||
		!strings.Contains(out, "got: deny 403 policy_deny [orders-delete-needs-mfa]") ||
		!strings.Contains(out, "0 passed, 1 failed") {
		t.Errorf("failing test: exit %d\n%s%s", code, out, errs)
	}

	broken := filepath.Join(dir, "broken.yaml")
	if err := os.WriteFile(broken, []byte("- url: /orders\n  decison: allow\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errs = runCLI(t, "policy", "test", dir)
	if code != 2 || !strings.Contains(errs, broken+`:2: unknown key "decison"`) || !strings.Contains(out, "0 passed, 1 failed, 1 file not run") {
		t.Errorf("broken file: exit %d\n%s%s", code, out, errs)
	}

	if code, _, errs := runCLI(t, "policy", "test"); code != 2 || !strings.Contains(errs, "Usage: warden policy test") {
		t.Errorf("no PATH: exit %d, %s", code, errs)
	}
	if code, _, errs := runCLI(t, "policy", "test", filepath.Join(dir, "missing")); code != 2 || !strings.Contains(errs, "no such file") {
		t.Errorf("missing PATH: exit %d, %s", code, errs)
	}
}
