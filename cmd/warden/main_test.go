package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wardenauthz/warden/authz/checkreq"
	"github.com/wardenauthz/warden/internal/testlog"
	"github.com/wardenauthz/warden/ratelimit/redistest"
)

func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func freePort(t *testing.T) string {
	t.Helper()
	return fmt.Sprintf("127.0.0.1:%d", redistest.FreePort(t))
}

// quickstartCopy copies examples/quickstart to a temp dir with free ports.
func quickstartCopy(t *testing.T) (cfg, grpcAddr string) {
	t.Helper()
	dir := t.TempDir()
	src := "../../examples/quickstart"
	grpcAddr = freePort(t)
	b, err := os.ReadFile(filepath.Join(src, "warden.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	y := strings.Replace(string(b), "127.0.0.1:9191", grpcAddr, 1)
	y = strings.Replace(y, "127.0.0.1:9192", freePort(t), 1)
	y = strings.Replace(y, "127.0.0.1:9193", freePort(t), 1)
	if err := os.WriteFile(filepath.Join(dir, "warden.yaml"), []byte(y), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "policies"), 0o755); err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(filepath.Join(src, "policies"))
	for _, e := range ents {
		b, _ := os.ReadFile(filepath.Join(src, "policies", e.Name()))
		if err := os.WriteFile(filepath.Join(dir, "policies", e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(dir, "warden.yaml"), grpcAddr
}

type checkOut struct {
	Decision          string            `json:"decision"`
	Status            int               `json:"status"`
	Reason            string            `json:"reason"`
	Policies          []string          `json:"policies"`
	DecisionID        string            `json:"decision_id"`
	Body              string            `json:"body"`
	DownstreamHeaders []checkreq.Header `json:"downstream_headers"`
}

func (c checkOut) header(k string) string {
	for _, h := range c.DownstreamHeaders {
		if h.Key == k {
			return h.Value
		}
	}
	return ""
}

// TestNewUserWalkthrough is the README quick start: dev tokens, then
// decisions from a running server and in-process.
func TestNewUserWalkthrough(t *testing.T) {
	t.Setenv("XDG_STATE_HOME", t.TempDir())
	t.Setenv("WARDEN_CONFIG", "")
	token := func(args ...string) string {
		code, out, errs := runCLI(t, append([]string{"dev", "token"}, args...)...)
		if code != 0 {
			t.Fatalf("dev token: %d %s", code, errs)
		}
		return strings.TrimSpace(out)
	}
	admin := token("--sub", "alice", "--groups", "admins")
	reader := token("--sub", "bob", "--groups", "readers")
	expired := token("--sub", "alice", "--groups", "admins", "--ttl", "-5m")
	mfa := token("--sub", "alice", "--groups", "admins", "--claim", "acr=mfa")

	cfg, addr := quickstartCopy(t)
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan int, 1)
	var serveOut, serveErr bytes.Buffer
	go func() {
		served <- run(ctx, []string{"serve", "--config", cfg}, testlog.Writer(t, "records", &serveOut), testlog.Writer(t, "stderr", &serveErr))
	}()
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			cancel()
			<-served // serve is done writing serveErr
			t.Fatalf("server did not start: %s", serveErr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}

	for _, mode := range [][]string{{"--server", addr}, {"--config", cfg}} {
		check := func(wantCode int, args ...string) checkOut {
			t.Helper()
			code, out, errs := runCLI(t, append(append([]string{"check", "--output", "json"}, mode...), args...)...)
			if code != wantCode {
				t.Fatalf("%v: exit %d, want %d\n%s%s", args, code, wantCode, out, errs)
			}
			var c checkOut
			if err := json.Unmarshal([]byte(out), &c); err != nil {
				t.Fatalf("%v: %v\n%s", args, err, out)
			}
			return c
		}
		t.Run(mode[0], func(t *testing.T) {
			c := check(0, "--url", "http://localhost:8080/orders/42", "--header", "authorization: Bearer "+admin)
			if c.Decision != "allow" || !strings.Contains(strings.Join(c.Policies, ","), "orders-admins-all") {
				t.Errorf("admin GET: %+v", c)
			}
			c = check(1, "--method", "DELETE", "--url", "http://localhost:8080/orders/42", "--header", "authorization: Bearer "+reader)
			if c.Status != 403 || !strings.Contains(c.Body, `"decision_id":"`+c.DecisionID+`"`) || c.header("content-type") != "application/problem+json" {
				t.Errorf("reader DELETE: %+v", c)
			}
			c = check(1, "--url", "http://localhost:8080/orders/42", "--header", "authorization: Bearer "+expired)
			if c.Status != 401 || !strings.Contains(c.header("www-authenticate"), `error="invalid_token"`) {
				t.Errorf("expired: %+v", c)
			}
			c = check(1, "--method", "DELETE", "--url", "http://localhost:8080/orders/42", "--header", "authorization: Bearer "+admin)
			if c.Status != 401 || !strings.Contains(c.header("www-authenticate"), `error="insufficient_user_authentication", error_description="stronger authentication required", acr_values="mfa"`) {
				t.Errorf("DELETE without MFA: %+v", c)
			}
			c = check(0, "--method", "DELETE", "--url", "http://localhost:8080/orders/42", "--header", "authorization: Bearer "+mfa)
			if c.Decision != "allow" {
				t.Errorf("DELETE with MFA: %+v", c)
			}
			c = check(0, "--url", "http://localhost:8080/orders/42", "--peer-principal", "spiffe://cluster.local/ns/billing/sa/invoicer")
			if c.Decision != "allow" {
				t.Errorf("invoicer workload: %+v", c)
			}
		})
	}

	// The operator's side, through the admin API with the dev token: the
	// quick start logs to stdout, so `warden logs` asks the server.
	code, out, errs := runCLI(t, "logs", "--config", cfg, "--decision", "deny", "--output", "json")
	if code != 0 || strings.Count(out, "\n") != 3 || !strings.Contains(out, `"reason":"policy_deny"`) {
		t.Errorf("logs --decision deny: exit %d\n%s%s", code, out, errs)
	}
	code, out, errs = runCLI(t, "policy", "status", "--config", cfg)
	if code != 0 || !strings.Contains(out, ": 7 policies") || !strings.Contains(out, "orders-admins-all") {
		t.Errorf("policy status: exit %d\n%s%s", code, out, errs)
	}
	if code, out, errs := runCLI(t, "revoke", "--config", cfg, "--subject", "dev|alice"); code != 0 {
		t.Errorf("revoke through the admin API: exit %d\n%s%s", code, out, errs)
	}
	if code, out, _ := runCLI(t, "check", "--server", addr, "--url", "http://localhost:8080/orders/42", "--header", "authorization: Bearer "+admin); code != 1 || !strings.Contains(out, "token_revoked") {
		t.Errorf("alice after revocation: exit %d\n%s", code, out)
	}
	if code, out, errs := runCLI(t, "revoke", "list", "--config", cfg); code != 0 || !strings.Contains(out, "dev|alice") {
		t.Errorf("revoke list: exit %d\n%s%s", code, out, errs)
	}
	t.Setenv("WARDEN_ADMIN_TOKEN_FILE", filepath.Join(t.TempDir(), "missing"))
	if code, _, errs := runCLI(t, "logs", "--config", cfg); code != 2 || !strings.Contains(errs, "missing") {
		t.Errorf("logs with a missing token file: exit %d %s", code, errs)
	}

	cancel()
	select {
	case code := <-served:
		if code != 0 {
			t.Errorf("serve exit %d: %s", code, serveErr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not stop")
	}
	// The decision log went to stdout, one record per Check, without tokens.
	if n := strings.Count(serveOut.String(), "\n"); n != 7 {
		t.Errorf("decision records: got %d, want 7", n)
	}
	if strings.Contains(serveOut.String()+serveErr.String(), "eyJ") {
		t.Error("a token reached the logs")
	}
}

func TestTextOutput(t *testing.T) {
	t.Setenv("XDG_STATE_HOME", t.TempDir())
	cfg, _ := quickstartCopy(t)
	code, out, _ := runCLI(t, "check", "--config", cfg, "--url", "http://localhost:8080/orders")
	if code != 1 || !strings.Contains(out, "decision:    deny") || !strings.Contains(out, "www-authenticate: Bearer realm=\"warden\"") {
		t.Errorf("exit %d:\n%s", code, out)
	}
}

func TestPolicyValidatePointsAtTheLine(t *testing.T) {
	cfg, _ := quickstartCopy(t)
	p := filepath.Join(filepath.Dir(cfg), "policies", "broken.cedar")
	if err := os.WriteFile(p, []byte("@id(\"x\")\npermit (principal, action, resource)\nwhen { context.a == };\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errs := runCLI(t, "policy", "validate", "--config", cfg)
	want := filepath.Join(filepath.Dir(cfg), "policies", "broken.cedar") + ":3:22: "
	if code != 1 || !strings.Contains(errs, want) {
		t.Errorf("exit %d, want 1 and %q in:\n%s", code, want, errs)
	}
	os.Remove(p)
	if code, out, errs := runCLI(t, "policy", "validate", "--config", cfg); code != 0 || !strings.HasPrefix(out, "ok: 7 policies") {
		t.Errorf("valid: exit %d %s %s", code, out, errs)
	}
	if code, out, errs := runCLI(t, "config", "validate", cfg); code != 0 || !strings.HasPrefix(out, "ok: ") {
		t.Errorf("config validate: exit %d %s %s", code, out, errs)
	}
}

func TestDevTokenRefusedWithoutDevIssuer(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "w.yaml")
	os.MkdirAll(filepath.Join(dir, "policies"), 0o755)
	os.WriteFile(filepath.Join(dir, "policies", "p.cedar"), []byte(`@id("a") permit(principal, action, resource);`), 0o644)
	os.WriteFile(cfg, []byte("identity: {anonymous: true}\n"), 0o644)
	code, out, errs := runCLI(t, "dev", "token", "--config", cfg, "--sub", "x")
	if code != 2 || out != "" || !strings.Contains(errs, "does not enable identity.dev_issuer") {
		t.Errorf("exit %d out %q err %q", code, out, errs)
	}
}

// TestUsageErrors: a misused command exits 2, prints nothing on stdout,
// and says on stderr what is wrong.
func TestUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string // the start of stderr
	}{
		{nil, "warden — Envoy external authorization with Cedar policies\n\nUsage:\n"},
		{[]string{"bogus"}, "warden: unknown command \"bogus\"\n\nwarden — Envoy external authorization with Cedar policies\n\nUsage:\n"},
		{[]string{"check", "--url", "http://x/"}, "warden check: give exactly one of --server ADDR or --config FILE\n"},
		{[]string{"check", "--server", "a", "--config", "b", "--url", "http://x/"}, "warden check: give exactly one of --server ADDR or --config FILE\n"},
		{[]string{"dev"}, "Usage:\n  warden dev token --sub SUB [flags]"},
	} {
		if code, out, errs := runCLI(t, tc.args...); code != 2 || out != "" || !strings.HasPrefix(errs, tc.want) {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want exit 2, no stdout, stderr starting %q", tc.args, code, out, errs, tc.want)
		}
	}
}

func TestRevokeCLI(t *testing.T) {
	srv := redistest.Start(t)
	cfg, _ := quickstartCopy(t)
	b, _ := os.ReadFile(cfg)
	y := strings.Replace(string(b), "store: {kind: memory}", "store: {kind: redis, redis: {addrs: ['"+srv.Addr+"']}}", 1)
	if err := os.WriteFile(cfg, []byte(y), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out, errs := runCLI(t, "revoke", "--config", cfg, "--jti", "abc", "--exp", "2099-01-01T00:00:00Z"); code != 0 || out != "revoked jti abc\n" {
		t.Fatalf("revoke jti: %d %q %q", code, out, errs)
	}
	if code, _, errs := runCLI(t, "revoke", "--config", cfg, "--subject", "dev|bob"); code != 0 {
		t.Fatalf("revoke subject: %d %q", code, errs)
	}
	code, out, errs := runCLI(t, "revoke", "list", "--config", cfg, "--output", "json")
	if code != 0 || !strings.Contains(out, `"id": "abc"`) || !strings.Contains(out, `"id": "dev|bob"`) {
		t.Fatalf("list: %d %s %s", code, out, errs)
	}
	if code, _, errs := runCLI(t, "revoke", "--config", cfg, "--subject", "bob"); code != 2 || !strings.Contains(errs, "ISSUER|ID") {
		t.Errorf("bad subject: %d %s", code, errs)
	}
	plain, _ := quickstartCopy(t)
	t.Setenv("XDG_STATE_HOME", t.TempDir())
	if code, _, errs := runCLI(t, "revoke", "--config", plain, "--jti", "x"); code != 2 || !strings.Contains(errs, "is `warden serve` running?") {
		t.Errorf("memory store, admin API, no server: %d %s", code, errs)
	}
	b, _ = os.ReadFile(plain)
	if err := os.WriteFile(plain, []byte(strings.Replace(string(b), "dev_token: true", "dev_token: false", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, errs := runCLI(t, "revoke", "--config", plain, "--jti", "x"); code != 2 || !strings.Contains(errs, "store.kind: redis") {
		t.Errorf("memory store without admin API: %d %s", code, errs)
	}
}

// TestPolicyValidateAgainstTheModel: the forbid (an optional
// attribute read without a has guard) fails `warden policy validate` and
// `warden policy test` at the access's file:line:col; `warden policy schema`
// prints the model; a schema.cedarschema adds the user's own attributes.
func TestPolicyValidateAgainstTheModel(t *testing.T) {
	cfg, _ := quickstartCopy(t)
	dir := filepath.Join(filepath.Dir(cfg), "policies")
	p := filepath.Join(dir, "mfa.cedar")
	if err := os.WriteFile(p, []byte("@id(\"mfa\")\nforbid (principal, action, resource)\nunless { context.token.acr == \"mfa\" };\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	want := p + ":3:17: policy \"mfa\": unable to guarantee safety of access to optional attribute `token`"
	if code, _, errs := runCLI(t, "policy", "validate", "--config", cfg); code != 1 || !strings.Contains(errs, want) {
		t.Errorf("validate: exit %d, want 1 and %q in:\n%s", code, want, errs)
	}
	if code, _, errs := runCLI(t, "policy", "test", "--config", cfg, "../../examples/quickstart/tests"); code != 2 || !strings.Contains(errs, want) {
		t.Errorf("test: exit %d, want 2 and %q in:\n%s", code, want, errs)
	}
	code, out, errs := runCLI(t, "policy", "schema", "--config", cfg)
	if code != 0 || !strings.Contains(out, `action "DELETE /orders/{id}" in [write, DELETE] appliesTo`) || !strings.Contains(out, "type Headers = {};") {
		t.Errorf("schema: exit %d\n%s%s", code, out, errs)
	}
	// The user's own header: undeclared, an error; declared (optional),
	// valid behind its has guard.
	if err := os.WriteFile(p, []byte("@id(\"tenant\")\nforbid (principal, action, resource)\nunless { context.request.headers[\"x-tenant\"] == \"acme\" };\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, errs := runCLI(t, "policy", "validate", "--config", cfg); code != 1 || !strings.Contains(errs, "attribute `x-tenant`") {
		t.Errorf("undeclared header: exit %d\n%s", code, errs)
	}
	if err := os.WriteFile(p, []byte("@id(\"tenant\")\nforbid (principal, action, resource)\nunless { context.request.headers has \"x-tenant\" && context.request.headers[\"x-tenant\"] == \"acme\" };\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	userSchema := "type Headers = {\"x-tenant\"?: String};\nentity Order in [Service] {owner?: User};\n"
	if err := os.WriteFile(filepath.Join(dir, "schema.cedarschema"), []byte(userSchema), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out, errs := runCLI(t, "policy", "validate", "--config", cfg); code != 0 {
		t.Errorf("declared header: exit %d\n%s%s", code, out, errs)
	}
	if code, out, _ := runCLI(t, "policy", "schema", "--config", cfg); code != 0 || !strings.Contains(out, `"x-tenant"?: String`) {
		t.Errorf("merged schema: exit %d\n%s", code, out)
	}
}

// TestCheckShowsPolicyErrors: `warden check` (text and JSON) names the
// erroring forbid that denied, with its message.
func TestCheckShowsPolicyErrors(t *testing.T) {
	t.Setenv("XDG_STATE_HOME", t.TempDir())
	cfg, _ := quickstartCopy(t)
	p := filepath.Join(filepath.Dir(cfg), "policies", "mfa.cedar")
	if err := os.WriteFile(p, []byte("@id(\"mfa\")\nforbid (principal, action, resource)\nunless { context.token.acr == \"mfa\" };\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errs := runCLI(t, "check", "--config", cfg, "--url", "http://localhost:8080/healthz")
	if code != 1 || !strings.Contains(out, "reason:      policy_error") || !strings.Contains(out, "policies:    mfa") || !strings.Contains(out, "error:       mfa: ") {
		t.Errorf("text: exit %d\n%s%s", code, out, errs)
	}
	code, out, errs = runCLI(t, "check", "--config", cfg, "--url", "http://localhost:8080/healthz", "--output", "json")
	var r struct {
		Reason   string
		Policies []string
		Errors   []string
	}
	if err := json.Unmarshal([]byte(out), &r); code != 1 || err != nil || r.Reason != "policy_error" || len(r.Errors) != 1 || !strings.HasPrefix(r.Errors[0], "mfa: ") {
		t.Errorf("json: exit %d %v %+v\n%s%s", code, err, r, out, errs)
	}
}

// TestConfigValidateIssuerChecks: a trailing slash on an issuer is a warning
// (exit 0, naming the key); plain http to a host that is not loopback is an
// error unless insecure_http.
func TestConfigValidateIssuerChecks(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "policies"), 0o755)
	os.WriteFile(filepath.Join(dir, "policies", "p.cedar"), []byte(`@id("a") permit(principal, action, resource);`), 0o644)
	write := func(issuer, extra string) string {
		cfg := filepath.Join(dir, "w.yaml")
		os.WriteFile(cfg, []byte("identity:\n  issuers:\n    - {name: corp, issuer: \""+issuer+"\", audiences: [api]"+extra+"}\n"), 0o644)
		return cfg
	}
	code, out, errs := runCLI(t, "config", "validate", write("http://127.0.0.1:8080/", ""))
	if code != 0 || !strings.HasPrefix(out, "ok: ") || !strings.Contains(errs, "w.yaml:3: identity.issuers[0].issuer: ") || !strings.Contains(errs, "trailing slash") {
		t.Errorf("trailing slash: exit %d %s %s", code, out, errs)
	}
	if code, _, errs := runCLI(t, "config", "validate", write("https://idp.example.com", "")); code != 0 || errs != "" {
		t.Errorf("no slash: exit %d %s", code, errs)
	}
	if code, _, errs := runCLI(t, "config", "validate", write("http://idp.example.com", "")); code != 1 || !strings.Contains(errs, "identity.issuers[0].issuer") || !strings.Contains(errs, "insecure_http") {
		t.Errorf("plain http: exit %d %s", code, errs)
	}
	if code, _, errs := runCLI(t, "config", "validate", write("http://idp.example.com", ", insecure_http: true")); code != 0 {
		t.Errorf("plain http allowed: exit %d %s", code, errs)
	}
}
