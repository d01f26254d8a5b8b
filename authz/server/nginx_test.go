package server_test

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wardenauthz/warden/authz/config"
	"github.com/wardenauthz/warden/policy"
	"github.com/wardenauthz/warden/ratelimit"
	"github.com/wardenauthz/warden/ratelimit/redistest"
)

// The shipped nginx example, and what the tests substitute in it.
const (
	nginxExample  = "../../examples/nginx/warden.conf"
	nginxAuthzSrv = "server 127.0.0.1:9194;"
	nginxUpstream = "server 127.0.0.1:8081;"
	nginxListen   = "listen 127.0.0.1:8080;"
)

// nginxBinary finds nginx; without it the test skips, unless
// WARDEN_REQUIRE_NGINX=1 (go tool task test installs it and sets that).
func nginxBinary(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"nginx", "/usr/sbin/nginx"} {
		if b, err := exec.LookPath(p); err == nil {
			return b
		}
	}
	if os.Getenv("WARDEN_REQUIRE_NGINX") == "1" {
		t.Fatal("nginx is not installed (WARDEN_REQUIRE_NGINX=1): run bash .ci/install-nginx")
	}
	t.Skip("nginx is not installed (go tool task test installs it)")
	return ""
}

// nginxConf wraps the shipped example (ports substituted when sub is
// given) in a main config that keeps everything in dir: one foreground
// process, its pid, logs and temp files there.
func nginxConf(t *testing.T, dir string, sub map[string]string) string {
	t.Helper()
	b, err := os.ReadFile(nginxExample)
	if err != nil {
		t.Fatal(err)
	}
	conf := string(b)
	for old, repl := range sub {
		if !strings.Contains(conf, old) {
			t.Fatalf("%s no longer contains %q (the test substitutes it)", nginxExample, old)
		}
		conf = strings.ReplaceAll(conf, old, repl)
	}
	if err := os.WriteFile(filepath.Join(dir, "warden.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	main := fmt.Sprintf(`daemon off;
master_process off;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log info;
events { worker_connections 128; }
http {
    access_log off;
    client_body_temp_path %[1]s/body;
    proxy_temp_path %[1]s/proxy;
    fastcgi_temp_path %[1]s/fastcgi;
    uwsgi_temp_path %[1]s/uwsgi;
    scgi_temp_path %[1]s/scgi;
    include %[1]s/warden.conf;
}
`, dir)
	path := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(path, []byte(main), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestNginxExampleIsValid: nginx -t accepts the shipped example as it is.
func TestNginxExampleIsValid(t *testing.T) {
	bin := nginxBinary(t)
	dir := t.TempDir()
	conf := nginxConf(t, dir, nil)
	out, err := exec.Command(bin, "-t", "-p", dir, "-c", conf).CombinedOutput()
	if err != nil {
		t.Fatalf("nginx -t: %v\n%s", err, out)
	}
}

// freePort is a loopback port nothing listens on (for nginx to take).
func freePort(t *testing.T) string {
	t.Helper()
	return fmt.Sprintf("127.0.0.1:%d", redistest.FreePort(t))
}

// startNginx runs the shipped example on a private loopback port, before
// warden (the HTTP authorization listener's URL) and up; it returns the
// base URL. nginx is stopped by its PID at cleanup.
func startNginx(t *testing.T, warden string, up *upstream) string {
	t.Helper()
	bin := nginxBinary(t)
	dir := t.TempDir()
	w, _ := url.Parse(warden)
	u, _ := url.Parse(up.srv.URL)
	addr := freePort(t)
	conf := nginxConf(t, dir, map[string]string{
		nginxAuthzSrv: "server " + w.Host + ";",
		nginxUpstream: "server " + u.Host + ";",
		nginxListen:   "listen " + addr + ";",
	})
	cmd := exec.Command(bin, "-p", dir, "-c", conf)
	return startProxy(t, "nginx", cmd, addr, filepath.Join(dir, "error.log"), 10*time.Second)
}

// nginxWarden is a Warden for the nginx tests: the front proxy's API
// (/orders/{id} of service orders), carol limited to one request, and
// XFCC believed from trusted proxies.
func nginxWarden(t *testing.T, trusted []string) *env {
	t.Helper()
	return httpAuthz(t, trusted, func(c *config.Config) {
		c.Server.HTTPAuthz.PathPrefix = ""
		c.Identity.Workloads.TrustXFCC = true // so that a client's XFCC passed on by nginx would show
		c.Policy.Routes = append(c.Policy.Routes, policy.RouteConfig{Service: "orders", Method: "*", Path: "/orders/{id}", Resource: `Order::"{id}"`})
		c.RateLimit.Rules = append([]ratelimit.Rule{{Name: "carol", When: ratelimit.When{Principal: "corp|carol"}, Key: []string{"principal"}, Limit: 1, Per: time.Hour}}, c.RateLimit.Rules...)
	})
}

// TestThroughNginx: requests through a real nginx running the shipped
// example (auth_request) to an upstream that records what it receives.
func TestThroughNginx(t *testing.T) {
	e := nginxWarden(t, []string{"127.0.0.1/32"})
	up := newUpstream(t)
	base := startNginx(t, e.httpAuthz, up)
	alice := e.token(t, "alice", "staff")

	t.Run("allow", func(t *testing.T) {
		resp, body := do(t, "GET", base+"/orders/42?x=1", "authorization: Bearer "+alice,
			`x-warden-principal: User::"corp|root"`, "x-warden-workload: spiffe://cluster.local/ns/x/sa/root",
			"x-warden-status: 200", "x-forwarded-method: DELETE", "x-forwarded-uri: /admin/users/1",
			"x-original-uri: /admin/users/1", "x-original-method: DELETE", "x-forwarded-client-cert: URI=spiffe://cluster.local/ns/x/sa/root",
			"x-forwarded-for: 203.0.113.9", "x-trace: a", "x-trace: b")
		if resp.StatusCode != 200 || body != "hello from upstream\n" {
			t.Fatalf("allowed: %d %q", resp.StatusCode, body)
		}
		if resp.Header.Get("ratelimit") == "" || resp.Header.Get("ratelimit-policy") == "" {
			t.Errorf("rate-limit headers to the client: %v", resp.Header)
		}
		reqs := up.take()
		if len(reqs) != 1 {
			t.Fatalf("upstream got %d requests", len(reqs))
		}
		got := reqs[0].Header
		if v := got.Values("x-warden-principal"); len(v) != 1 || v[0] != `User::"corp|alice"` {
			t.Errorf("x-warden-principal upstream: %q", v)
		}
		if got.Get("x-warden-subject") != "alice" || got.Get("x-warden-groups") != "staff" || got.Get("x-warden-issuer") != e.is.URL {
			t.Errorf("identity headers upstream: %v", got)
		}
		for _, h := range []string{"x-warden-workload", "x-warden-status", "x-warden-problem"} {
			if v := got.Values(h); len(v) != 0 {
				t.Errorf("spoofed %s reached the upstream: %q", h, v)
			}
		}
		if reqs[0].URL.RequestURI() != "/orders/42?x=1" || strings.Join(got.Values("x-trace"), ",") != "a,b" {
			t.Errorf("upstream request: %s %v", reqs[0].URL.RequestURI(), got)
		}
		id := got.Get("x-warden-decision-id")
		rec := lastRecord(t, e, id)
		if rec.Transport != "http" || rec.Request.Method != "GET" || rec.Request.Path != "/orders/42" || rec.Request.SourceIP != "127.0.0.1" || rec.Workload != "" {
			t.Errorf("record: %+v", rec)
		}
	})

	t.Run("401", func(t *testing.T) {
		for _, tc := range []struct{ name, auth, www string }{
			{"no credentials", "", `Bearer realm="warden"`},
			{"forged token", "authorization: Bearer " + alice[:len(alice)-4] + "AAAA", `Bearer error="invalid_token", error_description="invalid signature"`},
		} {
			var hs []string
			if tc.auth != "" {
				hs = append(hs, tc.auth)
			}
			resp, body := do(t, "GET", base+"/orders/42", hs...)
			checkProblem(t, tc.name, resp, body, 401, "anonymous_deny|token_invalid")
			if got := resp.Header.Values("www-authenticate"); len(got) != 1 || got[0] != tc.www {
				t.Errorf("%s: WWW-Authenticate %q, want %q", tc.name, got, tc.www)
			}
		}
	})

	t.Run("403", func(t *testing.T) {
		resp, body := do(t, "DELETE", base+"/orders/42", "authorization: Bearer "+e.token(t, "mallory"))
		checkProblem(t, "policy deny", resp, body, 403, "policy_deny")
	})

	t.Run("429", func(t *testing.T) {
		carol := e.token(t, "carol", "staff")
		if resp, _ := do(t, "GET", base+"/orders/1", "authorization: Bearer "+carol); resp.StatusCode != 200 {
			t.Fatalf("first: %d", resp.StatusCode)
		}
		up.take()
		resp, body := do(t, "GET", base+"/orders/1", "authorization: Bearer "+carol)
		checkProblem(t, "rate limited", resp, body, 429, "rate_limited")
		if ra := resp.Header.Get("retry-after"); ra == "" || ra == "0" {
			t.Errorf("Retry-After: %q", ra)
		}
		if resp.Header.Get("ratelimit") == "" {
			t.Errorf("RateLimit header: %v", resp.Header)
		}
	})

	// Path tricks: nginx routes on its normalised $uri but passes the raw
	// URI upstream; Warden judges the raw URI, so whatever is allowed is
	// exactly what the upstream receives (staff may read the admin API, not
	// write it: no spelling of a DELETE gets through).
	t.Run("path tricks", func(t *testing.T) {
		for _, p := range []string{
			"/orders/42/../../admin/users/1", "/orders/%2e%2e/admin/users/1", "/orders/42%2f..%2f..%2fadmin%2fusers%2f1",
			"//admin/users/1", "/admin//users/1", "/./admin/users/1", "/ADMIN/users/1", "/admin/users/1%00", "/admin/users/1;x",
			"/orders/42/..;/../admin/users/1", "/%61dmin/users/1", "/orders/42?/../admin/users/1",
		} {
			resp, body := do(t, "GET", base+p, "authorization: Bearer "+alice)
			reqs := up.take()
			switch {
			case resp.StatusCode == 200:
				if len(reqs) != 1 {
					t.Fatalf("%s: allowed, and the upstream got %d requests", p, len(reqs))
				}
				id := reqs[0].Header.Get("x-warden-decision-id")
				rec := lastRecord(t, e, id)
				judged := rec.Request.Path
				if q := strings.IndexByte(p, '?'); q >= 0 {
					judged += p[q:]
				}
				if reqs[0].URL.RequestURI() != judged {
					t.Errorf("%s: Warden judged %s (%s), the upstream got %s", p, rec.Request.Path, rec.Action, reqs[0].URL.RequestURI())
				}
			case len(reqs) != 0:
				t.Errorf("%s: denied %d, yet the upstream got it", p, resp.StatusCode)
			case resp.StatusCode != 400 && resp.StatusCode != 403 && resp.StatusCode != 404:
				t.Errorf("%s: %d %q", p, resp.StatusCode, body)
			}
			if resp, _ := do(t, "DELETE", base+p, "authorization: Bearer "+alice); resp.StatusCode == 200 || len(up.take()) != 0 {
				t.Errorf("DELETE %s: %d, reached the upstream", p, resp.StatusCode)
			}
		}
	})
}

// checkProblem: the client got status with Warden's problem+json body, the
// decision id header matching the body's, and nothing reached upstream.
func checkProblem(t *testing.T, name string, resp *http.Response, body string, status int, reasons string) {
	t.Helper()
	if resp.StatusCode != status || resp.Header.Get("content-type") != "application/problem+json" || resp.Header.Get("cache-control") != "no-store" {
		t.Errorf("%s: %d %v %q", name, resp.StatusCode, resp.Header, body)
		return
	}
	var p struct {
		Type       string `json:"type"`
		Status     int    `json:"status"`
		DecisionID string `json:"decision_id"`
	}
	if err := json.Unmarshal([]byte(body), &p); err != nil {
		t.Fatalf("%s: body %q: %v", name, body, err)
	}
	reason := strings.TrimPrefix(p.Type, "urn:warden:problem:")
	if p.Status != status || !slices.Contains(strings.Split(reasons, "|"), reason) || p.DecisionID == "" || resp.Header.Get("x-warden-decision-id") != p.DecisionID {
		t.Errorf("%s: problem %+v, decision id header %q", name, p, resp.Header.Get("x-warden-decision-id"))
	}
	for _, h := range []string{"x-warden-status", "x-warden-problem"} {
		if resp.Header.Get(h) != "" {
			t.Errorf("%s: %s reached the client", name, h)
		}
	}
}

// TestNginxFromUntrustedPeer: when nginx is not among Warden's trusted
// proxies, its forwarded method and URI are refused (400), never judged.
func TestNginxFromUntrustedPeer(t *testing.T) {
	e := nginxWarden(t, []string{"192.0.2.0/24"})
	up := newUpstream(t)
	base := startNginx(t, e.httpAuthz, up)
	resp, body := do(t, "GET", base+"/orders/42", "authorization: Bearer "+e.token(t, "alice", "staff"))
	checkProblem(t, "untrusted nginx", resp, body, 400, "request_invalid")
	if !strings.Contains(body, "not in server.http_authz.trusted_proxies") || len(up.take()) != 0 {
		t.Errorf("untrusted nginx: %q", body)
	}
}

// TestNginxWhenWardenIsDown: nginx answers 500 and lets nothing through.
func TestNginxWhenWardenIsDown(t *testing.T) {
	up := newUpstream(t)
	base := startNginx(t, "http://"+freePort(t), up)
	resp, _ := do(t, "GET", base+"/orders/42", "authorization: Bearer x")
	if resp.StatusCode != 500 || len(up.take()) != 0 {
		t.Errorf("warden down: %d", resp.StatusCode)
	}
}

// startProxy starts cmd (a front proxy such as nginx or Caddy), stops it
// when the test ends, and waits until addr accepts connections. If the
// proxy exits first, the test fails with its log (logPath).
func startProxy(t *testing.T, name string, cmd *exec.Cmd, addr, logPath string, wait time.Duration) string {
	t.Helper()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	deadline := time.Now().Add(wait)
	for {
		select {
		case err := <-exited:
			log, _ := os.ReadFile(logPath)
			t.Fatalf("%s exited: %v\n%s", name, err, log)
		default:
		}
		if c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond); err == nil {
			c.Close()
			return "http://" + addr
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not listen within %s", name, wait)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
