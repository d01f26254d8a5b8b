package policytest_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wardenauthz/warden/authz/config"
	"github.com/wardenauthz/warden/authz/policytest"
)

// TestQuickStartTests: the quick start's own tests (both forms) pass
// against the embedded config, and each form decided what it says.
func TestQuickStartTests(t *testing.T) {
	cfg, err := config.LoadEmbedded()
	if err != nil {
		t.Fatal(err)
	}
	r, err := policytest.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	files, err := policytest.Files([]string{"../../examples/quickstart/tests"})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, f := range files {
		outs, err := r.RunFile(context.Background(), f)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range outs {
			n++
			if !o.Passed() {
				t.Errorf("%s:%d %s: %v (got %s)", o.File, o.Line, o.Name, o.Failures, o.Got)
			}
		}
	}
	if n != 20 {
		t.Errorf("%d tests ran, want the quick start's 20", n)
	}
}

// corpConfig writes a config with a real OIDC issuer (whose keys cannot be
// fetched: nothing listens there), a 2-per-minute rate limit and a
// time-window forbid, and returns its path.
func corpConfig(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	write(t, dir, "warden.yaml", `
identity:
  issuers:
    - name: corp
      issuer: https://idp.corp.invalid
      jwks_uri: http://127.0.0.1:1/jwks
      audiences: [api://orders, api://other]
      algorithms: [ES256]
      require_typ: at+jwt
      claims: {groups: roles}
  anonymous: false
policy:
  dir: ./policies
  reload: "off"
  routes:
    - {service: orders, method: GET, path: "/orders/{id}", resource: 'Order::"{id}"'}
ratelimit:
  rules:
    - {name: per-user, when: {principal_type: User}, key: [principal], limit: 2, per: 1m}
store: {kind: redis, redis: {addrs: ["127.0.0.1:1"]}}
decision_log:
  sinks: [{kind: file, path: ./never-written.log}]
`)
	write(t, dir, "policies/orders.cedar", `
@id("staff-read")
permit (principal in Group::"corp|staff", action == Action::"GET /orders/{id}", resource);

@id("freeze")
forbid (principal, action, resource)
when { context.now >= datetime("2027-01-01T00:00:00Z") };
`)
	return filepath.Join(dir, "warden.yaml")
}

func write(t *testing.T, dir, name, text string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(strings.TrimLeft(text, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func runner(t *testing.T, cfgFile string) *policytest.Runner {
	t.Helper()
	cfg, err := config.Load(cfgFile)
	if err != nil {
		t.Fatal(err)
	}
	r, err := policytest.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestIssuerTokensOffline: token_claims become tokens the configured
// issuer's checks accept (audience, typ, its groups claim) without a key
// fetch; a wrong audience is refused as in production; rate limits carry
// from test to test within a file; time: moves the clock Cedar sees; the
// config's Redis store and file sink are not touched.
func TestIssuerTokensOffline(t *testing.T) {
	cfgFile := corpConfig(t)
	r := runner(t, cfgFile)
	tests := write(t, t.TempDir(), "corp.yaml", `
- name: staff read, by the roles claim
  url: http://orders.corp/orders/1
  token_claims: {sub: ann, roles: [staff]}
  time: 2026-06-01T12:00:00Z
  decision: allow
  status: 200
  reason: policy_allow
  reasons: [staff-read]
- name: the second audience is accepted too
  url: /orders/2
  token_claims: {sub: ann, roles: [staff], aud: api://other}
  time: 2026-06-01T12:00:01Z
  decision: allow
- name: the third request within the minute is rate limited
  url: /orders/3
  token_claims: {sub: ann, roles: [staff]}
  time: 2026-06-01T12:00:02Z
  decision: deny
  status: 429
  reason: rate_limited
- name: another principal has its own count
  url: /orders/3
  token_claims: {sub: bo, roles: [staff]}
  time: 2026-06-01T12:00:03Z
  decision: allow
- name: a minute later the count is new
  url: /orders/4
  token_claims: {sub: ann, roles: [staff]}
  time: 2026-06-01T12:01:30Z
  decision: allow
- name: a token for another audience is refused
  url: /orders/1
  token_claims: {sub: cy, roles: [staff], aud: api://elsewhere}
  decision: deny
  status: 401
  reason: token_invalid
- name: the freeze
  url: /orders/1
  token_claims: {sub: dee, roles: [staff]}
  time: 2027-02-01T00:00:00Z
  decision: deny
  status: 403
  reasons: [freeze]
- name: no credentials, no anonymous principal
  url: /orders/1
  decision: deny
  status: 401
`)
	outs, err := r.RunFile(context.Background(), tests)
	if err != nil {
		t.Fatal(err)
	}
	if len(outs) != 8 {
		t.Fatalf("%d outcomes, want 8", len(outs))
	}
	for _, o := range outs {
		if !o.Passed() {
			t.Errorf("%s:%d %s: %v (got %s)", o.File, o.Line, o.Name, o.Failures, o.Got)
		}
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(cfgFile), "never-written.log")); err == nil {
		t.Error("policy test wrote the config's decision log file")
	}
}

// TestFailuresAreReported: every expectation that does not hold is named,
// with what was decided, in both forms.
func TestFailuresAreReported(t *testing.T) {
	r := runner(t, corpConfig(t))
	dir := t.TempDir()
	httpFile := write(t, dir, "wrong.yaml", `
- name: passes
  url: /orders/1
  token_claims: {sub: ann, roles: [staff]}
  decision: allow
- name: everything wrong
  url: /orders/1
  token_claims: {sub: ann, roles: [staff]}
  decision: deny
  status: 403
  reason: policy_deny
  reasons: [freeze]
`)
	outs, err := r.RunFile(context.Background(), httpFile)
	if err != nil {
		t.Fatal(err)
	}
	if len(outs) != 2 || !outs[0].Passed() || outs[1].Line != 5 {
		t.Fatalf("outcomes %+v", outs)
	}
	wantAll(t, outs[1].Failures, "decision allow, want deny", "status 200, want 403", "reasons [staff-read], want [freeze]", "reason policy_allow, want policy_deny")

	cedarFile := write(t, dir, "wrong.json", `[
  {"name": "passes", "request": {"principal": "User::\"corp|ann\"", "action": "Action::\"GET /orders/{id}\"", "resource": {"type": "Order", "id": "1"}, "context": {"now": {"__extn": {"fn": "datetime", "arg": "2026-06-01T00:00:00Z"}}}},
   "entities": [{"uid": {"type": "User", "id": "corp|ann"}, "attrs": {}, "parents": [{"type": "Group", "id": "corp|staff"}]}],
   "decision": "allow", "reason": ["staff-read"], "num_errors": 0},
  {"name": "wrong", "request": {"principal": "User::\"corp|ann\"", "action": "Action::\"GET /orders/{id}\"", "resource": "Order::\"1\"", "context": {"now": {"__extn": {"fn": "datetime", "arg": "2026-06-01T00:00:00Z"}}}},
   "decision": "allow", "reason": ["staff-read"], "num_errors": 1}
]`)
	outs, err = r.RunFile(context.Background(), cedarFile)
	if err != nil {
		t.Fatal(err)
	}
	if len(outs) != 2 || !outs[0].Passed() || outs[1].Line != 5 {
		t.Fatalf("outcomes %+v", outs)
	}
	wantAll(t, outs[1].Failures, "decision deny, want allow", "reason [], want [staff-read]", "0 errors, want 1")
}

func wantAll(t *testing.T, got []string, want ...string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("failures:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestBadFiles: a mistake in a test file is an error naming file:line, and
// no test of that file runs.
func TestBadFiles(t *testing.T) {
	r := runner(t, corpConfig(t))
	for _, c := range []struct{ name, text, want string }{
		{"bad.yaml", "- url: /orders/1\n  decision: allow\n  statuss: 200\n", `bad.yaml:3: unknown key "statuss"`},
		{"bad.yaml", "- url: /orders/1\n  decision: allow\n- url: /orders/2\n  decision: maybe\n", `bad.yaml:3: test 2: decision "maybe": want allow or deny`},
		{"bad.yaml", "- decision: allow\n", `bad.yaml:1: test 1: url is required`},
		{"bad.yaml", "- url: /x\n  decision: allow\n  status: 42\n", `bad.yaml:1: test 1: status 42 is not an HTTP status`},
		{"bad.yaml", "- url: [\n", `bad.yaml:`},
		{"bad.yaml", "url: /x\n", `bad.yaml:1: cannot unmarshal`},
		{"bad.json", "[\n {\"request\": {}}\n,]", `bad.json:3: invalid character`},
		{"bad.json", "{}", `bad.json:1: want a JSON list of tests`},
		{"bad.json", "[\n {\"request\": {\"principal\": \"User::alice\", \"action\": \"Action::\\\"a\\\"\", \"resource\": \"R::\\\"r\\\"\"}, \"decision\": \"allow\"}\n]", `bad.json:2: test 1: entity uid "User::alice"`},
		{"bad.json", "[\n {\"request\": {\"principal\": \"U::\\\"a\\\"\", \"action\": \"Action::\\\"a\\\"\", \"resource\": \"R::\\\"r\\\"\"}, \"decision\": \"yes\"}\n]", `bad.json:2: test 1: decision "yes"`},
		{"bad.json", "[\n {\"request\": {\"principal\": \"U::\\\"a\\\"\", \"action\": \"Action::\\\"a\\\"\", \"resource\": \"R::\\\"r\\\"\"}, \"decision\": \"allow\", \"reasons\": []}\n]", `bad.json:2: test 1: json: unknown field "reasons"`},
		{"bad.json", "[\n {\"request\": {\"action\": \"Action::\\\"a\\\"\", \"resource\": \"R::\\\"r\\\"\"}, \"decision\": \"allow\"}\n]", `bad.json:2: test 1: request needs principal, action and resource`},
		{"bad.json", "[\n {\"request\": {\"principal\": \"U::\\\"a\\\"\", \"action\": \"Action::\\\"a\\\"\", \"resource\": \"R::\\\"r\\\"\"}, \"decision\": \"allow\", \"entities\": [{\"uid\": 7}]}\n]", `bad.json:2: test 1: entities: `},
		{"bad.json", "[\n {\"request\": {\"principal\": \"U::\\\"a\\\"\", \"action\": \"Action::\\\"a\\\"\", \"resource\": \"R::\\\"r\\\"\"}, \"decision\": \"allow\", \"entities\": [{\"uid\": {\"type\": \"User\", \"id\": \"x\"}, \"parents\": [], \"attrs\": {\"a\": {\"__extn\": {\"fn\": \"nope\", \"args\": [1]}}}}]}\n]", `bad.json (test 1 entities):1:2: entity User::"x": attribute "a": extension function "nope" with arguments is not a value`},
		// Validated against Warden's model (policy.Set.RequestValidator):
		// decisions as Cedar writes them, actions and types that exist.
		{"bad.json", "[\n {\"request\": {\"principal\": \"User::\\\"corp|ann\\\"\", \"action\": \"Action::\\\"GET /orders/{id}\\\"\", \"resource\": \"Order::\\\"1\\\"\"}, \"decision\": \"Allow\"}\n]", `bad.json:2: test 1: decision "Allow": want allow or deny`},
		{"bad.json", "[\n {\"request\": {\"principal\": \"User::\\\"corp|ann\\\"\", \"action\": \"Action::\\\"GET /order/{id}\\\"\", \"resource\": \"Order::\\\"1\\\"\"}, \"decision\": \"allow\"}\n]", `bad.json:2: test 1: action Action::"GET /order/{id}" is not declared`},
		{"bad.json", "[\n {\"request\": {\"principal\": \"Usr::\\\"corp|ann\\\"\", \"action\": \"Action::\\\"GET /orders/{id}\\\"\", \"resource\": \"Order::\\\"1\\\"\"}, \"decision\": \"allow\"}\n]", `bad.json:2: test 1: principal type Usr is not one Action::"GET /orders/{id}" applies to`},
		{"bad.json", "[\n {\"request\": {\"principal\": \"User::\\\"corp|ann\\\"\", \"action\": \"Action::\\\"GET /orders/{id}\\\"\", \"resource\": \"Ordr::\\\"1\\\"\"}, \"decision\": \"allow\"}\n]", `bad.json:2: test 1: resource type Ordr is not one Action::"GET /orders/{id}" applies to`},
		{"bad.txt", "", `bad.txt: not a test file`},
		// Read as the Cedar CLI reads it: names exactly, none twice, UTF-8.
		{"bad.json", "[\n {\"request\": {\"principal\": \"User::\\\"corp|ann\\\"\", \"action\": \"Action::\\\"GET /orders/{id}\\\"\", \"resource\": \"Order::\\\"1\\\"\"}, \"decision\": \"allow\", \"Decision\": \"deny\"}\n]", `bad.json:2: test 1: Decision: member names are matched exactly: want "decision"`},
		{"bad.json", "[\n {\"request\": {\"principal\": \"User::\\\"corp|ann\\\"\", \"action\": \"Action::\\\"GET /orders/{id}\\\"\", \"resource\": \"Order::\\\"1\\\"\"}, \"decision\": \"allow\", \"decision\": \"deny\"}\n]", `bad.json:2: test 1: `},
		{"bad.json", "[\n {\"REQUEST\": {}, \"decision\": \"allow\"}\n]", `bad.json:2: test 1: REQUEST: member names are matched exactly`},
		{"bad.json", "[\n {\"request\": {\"principal\": \"User::\\\"corp|ann\\\"\", \"action\": \"Action::\\\"GET /orders/{id}\\\"\", \"resource\": \"Order::\\\"1\\\"\"}, \"decision\": \"allow\", \"name\": \"\xff\"}\n]", `bad.json:2: test 1: `},
	} {
		p := write(t, t.TempDir(), c.name, c.text)
		outs, err := r.RunFile(context.Background(), p)
		if err == nil || !strings.Contains(err.Error(), filepath.Dir(p)+"/"+c.want) {
			t.Errorf("%q: got %v, %v; want an error containing %q", c.text, outs, err, c.want)
		}
	}
}
