package server_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/wardenauthz/warden/authz/checkreq"
	"github.com/wardenauthz/warden/authz/config"
	"github.com/wardenauthz/warden/authz/server"
	"github.com/wardenauthz/warden/identity/oidctest"
	"github.com/wardenauthz/warden/internal/testlog"
	"github.com/wardenauthz/warden/internal/testwait"
)

// reloadConfig is a warden.yaml of the reload tests: anonymous callers,
// the routes and rate-limit rules given, unrouted requests denied.
func reloadConfig(routes, rules string) string {
	return fmt.Sprintf(`identity:
  anonymous: true
policy:
  dir: ./policies
  reload: watch
  routes:
%s
ratelimit:
  rules:
%s
decision_log:
  sinks: []
`, routes, rules)
}

// startReloadable starts a Warden from a warden.yaml on disk (so that it
// can change), with its logger writing to log.
func startReloadable(t *testing.T, yaml string, log io.Writer) (*env, string) {
	t.Helper()
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "policies"), 0o755); err != nil {
		t.Fatal(err)
	}
	pol := `@id("readers") permit(principal, action in Action::"read", resource);` + "\n"
	if err := os.WriteFile(filepath.Join(dir, "policies", "p.cedar"), []byte(pol), 0o644); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "warden.yaml")
	writeFile(t, file, yaml)
	cfg, err := config.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	is := oidctest.New(t)
	e := startOpts(t, is, server.Options{Stdout: io.Discard, Logger: slog.New(slog.NewTextHandler(log, nil))},
		func(c *config.Config) { *c = *cfg })
	return e, file
}

// writeFile replaces a file's content at once (a rename, as editors and
// ConfigMap updates do), so that a watcher never reads half of it.
func writeFile(t *testing.T, file, content string) {
	t.Helper()
	tmp := file + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, file); err != nil {
		t.Fatal(err)
	}
}

func getStatus(t *testing.T, e *env, path string) int {
	t.Helper()
	st, _ := denied(t, e.check(t, checkreq.HTTP{Method: "GET", URL: "http://orders.local" + path}))
	if st == 0 {
		return 200
	}
	return st
}

func metric(t *testing.T, e *env, line string) bool {
	t.Helper()
	resp, err := http.Get(e.http + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return strings.Contains(string(b), line)
}

func readyz(t *testing.T, e *env) string {
	t.Helper()
	resp, err := http.Get(e.http + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return fmt.Sprint(resp.StatusCode, " ", string(b))
}

// eventually polls cond (a file watch is asynchronous) for up to 10s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testwait.Until(t, 10*time.Second, "never: "+what, cond)
}

// TestConfigReloadWatch: through a running server, a changed warden.yaml's
// routes serve the next Check; a broken file changes nothing and is
// reported with file:line (log, metric, /readyz).
func TestConfigReloadWatch(t *testing.T) {
	var log testlog.Buffer
	e, file := startReloadable(t, reloadConfig(`    - {method: GET, path: /a}`, "    []"), &log)
	hup := make(chan os.Signal, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	e.svc.WatchConfig(ctx, hup)

	if got := getStatus(t, e, "/a"); got != 200 {
		t.Fatalf("GET /a: %d before any reload", got)
	}
	if got := getStatus(t, e, "/b"); got != 403 {
		t.Fatalf("GET /b: %d, want 403 (unrouted)", got)
	}

	// 1. The file changes: the routes follow.
	writeFile(t, file, reloadConfig(`    - {method: GET, path: /b}`, "    []"))
	eventually(t, "GET /b allowed after the file changed", func() bool { return getStatus(t, e, "/b") == 200 })
	if got := getStatus(t, e, "/a"); got != 403 {
		t.Errorf("GET /a: %d after its route was removed, want 403", got)
	}
	if !metric(t, e, `warden_config_reloads_total{result="ok"}`) {
		t.Error("no ok config reload counted")
	}

	// 2. A broken file: the last good config keeps serving; the error is
	// located and reported.
	broken := strings.Replace(reloadConfig(`    - {method: GET, path: /c}`, "    []"), "  routes:", "  rotues:", 1)
	writeFile(t, file, broken)
	eventually(t, "the broken config reported", func() bool { return metric(t, e, `warden_config_reloads_total{result="error"} 1`) })
	want := file + `:6: policy.rotues: unknown key; did you mean "routes"?`
	if !strings.Contains(log.String(), `:6: policy.rotues: unknown key; did you mean \"routes\"?`) {
		t.Errorf("log lacks %q:\n%s", want, log.String())
	}
	if rz := readyz(t, e); !strings.HasPrefix(rz, "200 ") || !strings.Contains(rz, "last config reload failed") || !strings.Contains(rz, want) {
		t.Errorf("/readyz: %s", rz)
	}
	if got := getStatus(t, e, "/b"); got != 200 {
		t.Errorf("GET /b: %d: the last good config was not kept", got)
	}

	// 3. Fixed: applied, and /readyz no longer reports the error.
	writeFile(t, file, reloadConfig(`    - {method: GET, path: /c}`, "    []"))
	eventually(t, "the fixed config applied", func() bool { return getStatus(t, e, "/c") == 200 })
	eventually(t, "/readyz without the old error", func() bool { return !strings.Contains(readyz(t, e), "last config reload failed") })
}

// TestConfigReloadSIGHUP: with policy.reload: off nothing watches the
// file, so only SIGHUP (the channel serve feeds from signal.Notify) can
// apply a change: a rate-limit rule, and a listener named as needing a
// restart.
func TestConfigReloadSIGHUP(t *testing.T) {
	var log testlog.Buffer
	routes := `    - {method: GET, path: /b}`
	off := func(yaml string) string { return strings.Replace(yaml, "reload: watch", `reload: "off"`, 1) }
	e, file := startReloadable(t, off(reloadConfig(routes, "    []")), &log)
	hup := make(chan os.Signal, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	e.svc.WatchConfig(ctx, hup)

	rules := `    - {name: one-per-minute, when: {route: /b}, key: [source_ip], limit: 1, per: 1m}`
	next := strings.Replace(off(reloadConfig(routes, rules)),
		"decision_log:", "server: {grpc_addr: 127.0.0.1:19999}\ndecision_log:", 1)
	writeFile(t, file, next)
	for i := 0; i < 3; i++ {
		if got := getStatus(t, e, "/b"); got != 200 {
			t.Fatalf("GET /b %d: %d before SIGHUP (the file is not watched)", i, got)
		}
	}
	hup <- syscall.SIGHUP
	eventually(t, "SIGHUP reload", func() bool { return metric(t, e, `warden_config_reloads_total{result="ok"} 1`) })
	if got := getStatus(t, e, "/b"); got != 200 {
		t.Errorf("first GET /b: %d", got)
	}
	if got := getStatus(t, e, "/b"); got != 429 {
		t.Errorf("second GET /b: %d, want 429 from the reloaded rule", got)
	}
	if !strings.Contains(log.String(), "server.grpc_addr changed: restart to apply") {
		t.Errorf("log does not name the restart-only change:\n%s", log.String())
	}
	if strings.Contains(log.String(), "ratelimit.rules changed") || strings.Contains(log.String(), "policy.routes changed") {
		t.Errorf("a reloadable key is named as needing a restart:\n%s", log.String())
	}
}

// TestConfigReloadSnapshot: a Check uses the routes and rate-limit rules
// of one generation, even while reloads alternate between two. In
// generation A, GET /x is routed and limited by rule "rule-a"; in B it is
// routed too but limited by rule "rule-b" (a route that B names); an
// answer that mixes them (A's route action with B's rules, say) shows
// as a rule that does not belong to the route the record names.
func TestConfigReloadSnapshot(t *testing.T) {
	var log testlog.Buffer
	gen := func(g string) string {
		return reloadConfig(
			fmt.Sprintf(`    - {method: GET, path: "/x/%s/{id}"}`, g),
			fmt.Sprintf(`    - {name: rule-%s, when: {route: "/x/%s/{id}"}, key: [source_ip], limit: 1000000, per: 1m}`, g, g))
	}
	e, file := startReloadable(t, gen("a"), &log)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				g := []string{"a", "b"}[i%2]
				resp := e.check(t, checkreq.HTTP{Method: "GET", URL: "http://orders.local/x/" + g + "/1"})
				if resp.GetOkResponse() == nil {
					continue // the other generation: unrouted
				}
				if rl := header(resp, "ratelimit"); !strings.Contains(rl, `"rule-`+g+`"`) {
					t.Errorf("generation %s allowed with rate limit %q", g, rl)
					return
				}
			}
		}()
	}
	for i := 0; i < 20; i++ {
		writeFile(t, file, gen([]string{"b", "a"}[i%2]))
		if err := e.svc.ReloadConfig(); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
}

func header(resp *authv3.CheckResponse, name string) string {
	for _, h := range resp.GetOkResponse().GetResponseHeadersToAdd() {
		if h.GetHeader().GetKey() == name {
			return h.GetHeader().GetValue()
		}
	}
	for _, h := range resp.GetOkResponse().GetHeaders() {
		if h.GetHeader().GetKey() == name {
			return h.GetHeader().GetValue()
		}
	}
	return ""
}

// TestRestartNeeded names changed keys that a reload does not apply, and
// only those.
func TestRestartNeeded(t *testing.T) {
	a, err := config.Parse("w.yaml", []byte("identity: {anonymous: true}\n"), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	b, err := config.Parse("w.yaml", []byte(`identity: {anonymous: true}
server: {grpc_addr: 127.0.0.1:1, tls: {cert_file: c, key_file: k}}
store: {kind: redis, redis: {addrs: ["127.0.0.1:6379"]}}
policy: {routes: [{path: /a}], unrouted: allow_policies}
ratelimit: {rules: [{name: r, limit: 1, per: 1s}]}
decision_log: {sample_allow: 0.5}
`), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(server.RestartNeeded(a, b), " ")
	if got != "server.grpc_addr server.tls.cert_file server.tls.key_file store.kind store.redis.addrs" {
		t.Errorf("got %q", got)
	}
}
