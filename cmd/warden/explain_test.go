package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wardenauthz/warden/ratelimit/redistest"
)

func devToken(t *testing.T, args ...string) string {
	t.Helper()
	code, out, errs := runCLI(t, append([]string{"dev", "token"}, args...)...)
	if code != 0 {
		t.Fatalf("dev token: %d %s", code, errs)
	}
	return strings.TrimSpace(out)
}

// TestCheckExplain: `warden check --explain` shows the route, the
// entities, each policy that could apply and the deciding rule, in text and
// in JSON; it runs in-process (with no --config, on the embedded quick
// start) and refuses --server.
func TestCheckExplain(t *testing.T) {
	t.Setenv("XDG_STATE_HOME", t.TempDir())
	t.Setenv("WARDEN_CONFIG", "")
	reader := devToken(t, "--sub", "bob", "--groups", "readers")
	admin := devToken(t, "--sub", "alice", "--groups", "admins")
	cfg, addr := quickstartCopy(t)
	for _, tc := range []struct {
		name string
		args []string
		code int
		want []string
	}{
		{"forbid", []string{"--config", cfg, "--method", "DELETE", "--url", "http://localhost:8080/orders/42", "--header", "authorization: Bearer " + reader}, 1, []string{
			"route:      DELETE /orders/{id} (service orders) -> resource Order::\"{id}\", id=42",
			"principal:  User::\"dev|bob\" in Group::\"dev|readers\"",
			"action:     Action::\"DELETE /orders/{id}\" in Action::\"DELETE\", Action::\"write\"",
			"resource:   Order::\"42\" in Service::\"orders\"",
			"forbid orders-delete-needs-mfa",
			"=> false, passes",
			"decided:    deny: forbid orders-delete-needs-mfa applies",
		}},
		{"plain deny, embedded quick start", []string{"--method", "POST", "--url", "http://localhost:8080/orders", "--header", "authorization: Bearer " + reader}, 1, []string{
			"decided:    deny: no permit matched: default deny",
		}},
		{"allow", []string{"--config", cfg, "--url", "http://localhost:8080/orders/42", "--header", "authorization: Bearer " + admin}, 0, []string{
			"permit orders-admins-all",
			"decided:    allow: permit orders-admins-all, orders-owner-read applies and no forbid",
		}},
		{"step-up", []string{"--config", cfg, "--method", "DELETE", "--url", "http://localhost:8080/orders/42", "--header", "authorization: Bearer " + admin}, 1, []string{
			"step-up asked",
		}},
		{"route_unknown", []string{"--config", cfg, "--method", "PATCH", "--url", "http://localhost:8080/orders/42", "--context-ext", "service=orders", "--header", "authorization: Bearer " + admin}, 1, []string{
			"route:      none: no route matches, and policy.unrouted is deny: route_unknown",
			"GET /orders/{id}: method PATCH, the route's is GET",
			"decided:    deny: no route of service \"orders\" matches",
		}},
		{"anonymous", []string{"--config", cfg, "--url", "http://localhost:8080/orders"}, 1, []string{
			"decided:    deny: no permit matched: default deny",
			"then:       deny 401 the principal is anonymous",
		}},
		{"before policy", []string{"--config", cfg, "--url", "http://localhost:8080/orders", "--header", "authorization: Bearer nope"}, 1, []string{
			"decided before any policy: token_invalid (401)",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errs := runCLI(t, append([]string{"check", "--explain"}, tc.args...)...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\n%s%s", code, tc.code, out, errs)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("missing %q in\n%s", w, out)
				}
			}
		})
	}

	code, out, errs := runCLI(t, "check", "--explain", "--output", "json", "--config", cfg, "--method", "DELETE", "--url", "http://localhost:8080/orders/42", "--header", "authorization: Bearer "+admin)
	var r struct {
		Decision    string
		Reason      string
		Explanation struct {
			Stage  string
			Policy struct {
				Decision, Reason, Rule string
				Determining            []string
				Route                  struct{ Matched bool }
				Policies               []struct {
					ID, Outcome string
					Conditions  []struct{ Kind, Result string }
				}
			}
		}
	}
	if err := json.Unmarshal([]byte(out), &r); code != 1 || err != nil {
		t.Fatalf("json: exit %d %v\n%s%s", code, err, out, errs)
	}
	p := r.Explanation.Policy
	if r.Reason != "step_up" || r.Explanation.Stage != "policy" || p.Reason != "step_up" || !p.Route.Matched ||
		len(p.Determining) != 1 || p.Determining[0] != "orders-delete-needs-mfa" || len(p.Policies) != 2 {
		t.Errorf("json: %+v", r)
	}

	if code, _, errs := runCLI(t, "check", "--explain", "--server", addr, "--url", "http://localhost:8080/orders"); code != 2 || !strings.Contains(errs, "--explain evaluates in-process") {
		t.Errorf("--explain --server: exit %d %s", code, errs)
	}
}

// TestPolicyTestVerboseExplainsFailures: `warden policy test -v` explains
// each failing test.
func TestPolicyTestVerboseExplainsFailures(t *testing.T) {
	t.Setenv("WARDEN_CONFIG", "")
	dir := t.TempDir()
	failing := filepath.Join(dir, "failing.yaml")
	if err := os.WriteFile(failing, []byte("- name: readers create\n  method: POST\n  url: http://localhost:8080/orders\n  token_claims: {sub: bob, groups: [readers]}\n  decision: allow\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cedarFailing := filepath.Join(dir, "failing.json")
	if err := os.WriteFile(cedarFailing, []byte(`[{"name": "readers delete", "request": {"principal": "User::\"dev|bob\"", "action": "Action::\"DELETE /orders/{id}\"", "resource": "Order::\"42\"", "context": {}},
  "entities": [{"uid": {"type": "User", "id": "dev|bob"}, "attrs": {}, "parents": [{"type": "Group", "id": "dev|readers"}]},
    {"uid": {"type": "Order", "id": "42"}, "attrs": {}, "parents": [{"type": "Service", "id": "orders"}]}], "decision": "allow"}]`), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errs := runCLI(t, "policy", "test", "-v", dir)
	for _, w := range []string{
		"explanation:",
		"route:      POST /orders (service orders)",
		"decided:    deny: no permit matched: default deny",
		"decided:    deny: forbid orders-delete-needs-mfa applies",
	} {
		if !strings.Contains(out, w) {
			t.Errorf("missing %q", w)
		}
	}
	if code != 1 {
		t.Errorf("exit %d\n%s%s", code, out, errs)
	}
	if code, out, _ := runCLI(t, "policy", "test", dir); code != 1 || strings.Contains(out, "explanation:") {
		t.Errorf("without -v: exit %d, explained:\n%s", code, out)
	}
}

// TestCheckConfigRedisStore: `warden check --config` with a Redis store
// reads the revocations before deciding (it used to answer 503: the
// revocation mirror was never filled), sees a revocation made through
// Redis, and exits 2 naming Redis when it is unreachable.
func TestCheckConfigRedisStore(t *testing.T) {
	t.Setenv("XDG_STATE_HOME", t.TempDir())
	srv := redistest.Start(t)
	cfg, _ := quickstartCopy(t)
	rewrite(t, cfg, "store: {kind: memory}", "store: {kind: redis, redis: {addrs: ['"+srv.Addr+"']}}")
	admin := devToken(t, "--sub", "alice", "--groups", "admins")
	check := func() (int, string, string) {
		return runCLI(t, "check", "--config", cfg, "--output", "json", "--url", "http://localhost:8080/orders/42", "--header", "authorization: Bearer "+admin)
	}
	code, out, errs := check()
	if code != 0 || !strings.Contains(out, `"reason": "policy_allow"`) {
		t.Fatalf("redis store: exit %d\n%s%s", code, out, errs)
	}
	if code, _, errs := runCLI(t, "revoke", "--config", cfg, "--subject", "dev|alice"); code != 0 {
		t.Fatalf("revoke: %d %s", code, errs)
	}
	if code, out, errs := check(); code != 1 || !strings.Contains(out, `"reason": "token_revoked"`) {
		t.Errorf("after revoke: exit %d\n%s%s", code, out, errs)
	}
	srv.Kill()
	code, out, errs = check()
	if code != 2 || out != "" || !strings.Contains(errs, "store: Redis at "+srv.Addr+" is unreachable") {
		t.Errorf("redis down: exit %d\n%s%s", code, out, errs)
	}
}
