package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestReplayAndAccessReviewCLI: a real `warden serve` with replayable
// decision records in a file sink; `warden replay` against the policies in
// service changes nothing (exit 0) and against a narrowed copy finds the
// request it now denies (exit 1); `warden access-review` reports alice's
// unused grants and writes a suggested set that `warden policy validate`
// accepts. Both also read through the admin API (--server).
func TestReplayAndAccessReviewCLI(t *testing.T) {
	t.Setenv("XDG_STATE_HOME", t.TempDir())
	cfg, addr := quickstartCopy(t)
	rewrite(t, cfg, "sinks: [{kind: stdout}]", "sinks: [{kind: file, path: decisions.log}]") // the quick start is replayable
	serveWith(t, cfg, addr)
	tok := func(sub, groups string) string {
		_, out, errs := runCLI(t, "dev", "token", "--sub", sub, "--groups", groups)
		if out == "" {
			t.Fatal(errs)
		}
		return strings.TrimSpace(out)
	}
	alice, walt := tok("alice", "readers"), tok("walt", "writers")
	for _, c := range [][]string{
		{"GET", "/orders", alice}, {"GET", "/orders/1", alice}, {"GET", "/orders/2", alice},
		{"POST", "/orders", walt}, {"DELETE", "/orders/1", walt},
	} {
		runCLI(t, "check", "--server", addr, "--method", c[0], "--url", "http://localhost:8080"+c[1], "--header", "authorization: Bearer "+c[2])
	}
	dir := filepath.Dir(cfg)
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, _ := os.ReadFile(filepath.Join(dir, "decisions.log"))
		if strings.Count(string(b), "\n") >= 5 {
			if !strings.Contains(string(b), `"cedar":{"decision":"allow","principal":{"type":"User","id":"dev|alice"},"parents":[{"type":"Group","id":"dev|readers"}]`) {
				t.Fatalf("records are not replayable:\n%s", b)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("records never written:\n%s", b)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// Replay: the policies in service change nothing.
	code, out, errs := runCLI(t, "replay", "--config", cfg, "--policies", filepath.Join(dir, "policies"), "--since", "1h")
	if code != 0 || !strings.Contains(out, "5 records, 5 replayed") || !strings.Contains(out, "newly denied: 0, newly allowed: 0, reasons changed: 0") {
		t.Fatalf("replay, same policies: exit %d\n%s%s", code, out, errs)
	}
	// A candidate that only renames a deciding policy, with its files in
	// subdirectories (read recursively): no decision changes, so exit 0 by
	// default (--fail-on decisions); --fail-on policies exits 1.
	renamed := filepath.Join(t.TempDir(), "renamed")
	if err := os.CopyFS(filepath.Join(renamed, "team", "orders"), os.DirFS(filepath.Join(dir, "policies"))); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(renamed, "team", "orders", "entities.json"), filepath.Join(renamed, "entities.json")); err != nil {
		t.Fatal(err)
	}
	ob, _ := os.ReadFile(filepath.Join(renamed, "team", "orders", "orders.cedar"))
	if err := os.WriteFile(filepath.Join(renamed, "team", "orders", "orders.cedar"),
		[]byte(strings.Replace(string(ob), `@id("orders-readers-read")`, `@id("orders-readers-read-v2")`, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		code int
	}{{nil, 0}, {[]string{"--fail-on", "decisions"}, 0}, {[]string{"--fail-on", "policies"}, 1}} {
		code, out, errs := runCLI(t, append([]string{"replay", "--config", cfg, "--policies", renamed, "--since", "1h"}, tc.args...)...)
		if code != tc.code || !strings.Contains(out, "newly denied: 0, newly allowed: 0, reasons changed: 3") || !strings.Contains(out, "orders-readers-read-v2") {
			t.Errorf("replay %v of renamed policies: exit %d, want %d\n%s%s", tc.args, code, tc.code, out, errs)
		}
	}
	if code, _, errs := runCLI(t, "replay", "--config", cfg, "--policies", renamed, "--fail-on", "reasons"); code != 2 || !strings.Contains(errs, `--fail-on "reasons": want decisions`) {
		t.Errorf("--fail-on reasons: exit %d %s", code, errs)
	}

	// A candidate where readers may no longer list orders.
	cand := filepath.Join(t.TempDir(), "candidate")
	if err := os.CopyFS(cand, os.DirFS(filepath.Join(dir, "policies"))); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(cand, "orders.cedar"))
	narrowed := strings.Replace(string(b), `principal in Group::"dev|readers",
  action in Action::"read",`, `principal in Group::"dev|readers",
  action == Action::"GET /orders/{id}",`, 1)
	if narrowed == string(b) {
		t.Fatal("the quick start's readers policy changed; update this test")
	}
	if err := os.WriteFile(filepath.Join(cand, "orders.cedar"), []byte(narrowed), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errs = runCLI(t, "replay", "--config", cfg, "--policies", cand, "--since", "1h", "--fail-on", "policies")
	if code != 1 || !strings.Contains(out, "newly denied: 1, newly allowed: 0, reasons changed: 0") ||
		!strings.Contains(out, `newly_denied`) || !strings.Contains(out, `User::"dev|alice"  Action::"GET /orders"`) {
		t.Fatalf("replay, candidate: exit %d\n%s%s", code, out, errs)
	}
	// The same through the admin API (records kept in memory would not
	// do: this config's sink is a file, read the same way by the server).
	code, out, errs = runCLI(t, "replay", "--config", cfg, "--server", adminAddr(t, cfg), "--policies", cand, "--since", "1h", "--output", "json")
	if code != 1 || !strings.Contains(out, `"newly_denied": 1`) {
		t.Fatalf("replay through the admin API: exit %d\n%s%s", code, out, errs)
	}

	// Access review with a suggestion.
	sug := filepath.Join(t.TempDir(), "suggested")
	code, out, errs = runCLI(t, "access-review", "--config", cfg, "--since", "1d", "--suggest", sug)
	if code != 0 {
		t.Fatalf("access-review: exit %d\n%s%s", code, out, errs)
	}
	for _, want := range []string{
		`User::"dev|alice"  Group::"dev|readers"`, "GET /orders×1, GET /orders/{id}×2",
		"orders-admins-all", // decided no allow
	} {
		if !strings.Contains(out, want) {
			t.Errorf("access-review output lacks %q:\n%s", want, out)
		}
	}
	// The suggestion passes warden policy validate.
	sugCfg := filepath.Join(dir, "suggested.yaml")
	y, _ := os.ReadFile(cfg)
	if err := os.WriteFile(sugCfg, []byte(strings.Replace(string(y), "dir: ./policies", "dir: "+sug, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out, errs := runCLI(t, "policy", "validate", "--config", sugCfg); code != 0 {
		t.Fatalf("suggested set: %s%s", out, errs)
	}
	// And allows again everything that was allowed.
	if code, out, errs := runCLI(t, "replay", "--config", cfg, "--policies", sug, "--since", "1h"); !strings.Contains(out, "newly denied: 0, newly allowed: 0") {
		t.Errorf("replay of the suggestion: exit %d\n%s%s", code, out, errs)
	}
	if code, out, _ := runCLI(t, "access-review", "--config", cfg, "--principal", `User::"dev|walt"`); code != 0 || strings.Contains(out, `User::"dev|alice"  `) || !strings.Contains(out, `User::"dev|walt"  `) {
		t.Errorf("--principal: %d\n%s", code, out)
	}
}

// adminAddr is the admin address of a quickstartCopy config.
func adminAddr(t *testing.T, cfg string) string {
	b, _ := os.ReadFile(cfg)
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "addr:") {
			f := strings.Fields(line)
			return f[1]
		}
	}
	t.Fatal("no admin addr")
	return ""
}
