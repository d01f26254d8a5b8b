package server_test

import (
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// caddyBinary is the Caddy that go tool task test builds from the pinned
// tools/caddy module (WARDEN_CADDY). Without it the test skips; with the
// variable set and no binary there, it fails.
func caddyBinary(t *testing.T) string {
	t.Helper()
	bin := os.Getenv("WARDEN_CADDY")
	if bin == "" {
		t.Skip("WARDEN_CADDY is not set (go tool task test builds Caddy from tools/caddy and sets it)")
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("WARDEN_CADDY=%s: %v", bin, err)
	}
	return bin
}

// startCaddy runs the shipped examples/caddy/Caddyfile (ports substituted;
// no admin endpoint, no automatic HTTPS, all state in a temp dir) before
// warden and up; it returns the base URL. Caddy is stopped by its PID.
func startCaddy(t *testing.T, warden string, up *upstream) string {
	t.Helper()
	bin := caddyBinary(t)
	b, err := os.ReadFile("../../examples/caddy/Caddyfile")
	if err != nil {
		t.Fatal(err)
	}
	w, _ := url.Parse(warden)
	u, _ := url.Parse(up.srv.URL)
	addr := freePort(t)
	conf := string(b)
	for old, repl := range map[string]string{
		"forward_auth 127.0.0.1:9194 {": "forward_auth " + w.Host + " {",
		"reverse_proxy 127.0.0.1:8081":  "reverse_proxy " + u.Host,
		":8080 {":                       "http://" + addr + " {",
	} {
		if !strings.Contains(conf, old) {
			t.Fatalf("the Caddyfile no longer contains %q (the test substitutes it)", old)
		}
		conf = strings.Replace(conf, old, repl, 1)
	}
	dir := t.TempDir()
	conf = "{\n\tadmin off\n\tauto_https off\n\tpersist_config off\n}\n" + conf
	file := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(file, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "run", "--config", file, "--adapter", "caddyfile")
	cmd.Env = append(os.Environ(), "HOME="+dir, "XDG_DATA_HOME="+dir, "XDG_CONFIG_HOME="+dir)
	logf, err := os.Create(filepath.Join(dir, "caddy.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	return startProxy(t, "caddy", cmd, addr, filepath.Join(dir, "caddy.log"), 20*time.Second)
}

// TestThroughCaddy: requests through a real Caddy running the shipped
// Caddyfile (forward_auth) to an upstream that records what it receives.
func TestThroughCaddy(t *testing.T) {
	e := nginxWarden(t, []string{"127.0.0.1/32"})
	up := newUpstream(t)
	base := startCaddy(t, e.httpAuthz, up)
	alice := e.token(t, "alice", "staff")

	resp, body := do(t, "GET", base+"/orders/42?x=1", "authorization: Bearer "+alice,
		`x-warden-principal: User::"corp|root"`, "x-warden-admin: true", "x-warden-workload: spiffe://cluster.local/ns/x/sa/root",
		"x-forwarded-method: DELETE", "x-forwarded-uri: /admin/users/1", "x-original-uri: /admin/users/1", "x-original-method: DELETE",
		"x-forwarded-client-cert: URI=spiffe://cluster.local/ns/x/sa/root", "x-forwarded-for: 203.0.113.9", "x-forwarded-host: evil.example")
	if resp.StatusCode != 200 || body != "hello from upstream\n" {
		t.Fatalf("allowed: %d %q", resp.StatusCode, body)
	}
	reqs := up.take()
	if len(reqs) != 1 {
		t.Fatalf("upstream got %d requests", len(reqs))
	}
	got := reqs[0].Header
	if v := got.Values("x-warden-principal"); len(v) != 1 || v[0] != `User::"corp|alice"` || got.Get("x-warden-subject") != "alice" {
		t.Errorf("identity headers upstream: %v", got)
	}
	for _, h := range []string{"x-warden-admin", "x-warden-workload"} {
		if v := got.Values(h); len(v) != 0 {
			t.Errorf("spoofed %s reached the upstream: %q", h, v)
		}
	}
	if reqs[0].URL.RequestURI() != "/orders/42?x=1" {
		t.Errorf("upstream request: %s", reqs[0].URL.RequestURI())
	}
	rec := lastRecord(t, e, got.Get("x-warden-decision-id"))
	if rec.Transport != "http" || rec.Request.Method != "GET" || rec.Request.Path != "/orders/42" || rec.Request.SourceIP != "127.0.0.1" ||
		rec.Request.Host == "evil.example" || rec.Workload != "" {
		t.Errorf("record: %+v", rec)
	}

	resp, body = do(t, "GET", base+"/orders/42")
	checkProblem(t, "anonymous", resp, body, 401, "anonymous_deny")
	if resp.Header.Get("www-authenticate") != `Bearer realm="warden"` {
		t.Errorf("WWW-Authenticate: %q", resp.Header.Get("www-authenticate"))
	}
	resp, body = do(t, "DELETE", base+"/orders/42", "authorization: Bearer "+e.token(t, "mallory"))
	checkProblem(t, "policy deny", resp, body, 403, "policy_deny")
	carol := e.token(t, "carol", "staff")
	do(t, "GET", base+"/orders/1", "authorization: Bearer "+carol)
	up.take()
	resp, body = do(t, "GET", base+"/orders/1", "authorization: Bearer "+carol)
	checkProblem(t, "rate limited", resp, body, 429, "rate_limited")
	if resp.Header.Get("retry-after") == "" {
		t.Errorf("Retry-After missing: %v", resp.Header)
	}
	if n := len(up.take()); n != 0 {
		t.Errorf("%d denied requests reached the upstream", n)
	}
}
