package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wardenauthz/warden/identity"
	"github.com/wardenauthz/warden/internal/testlog"
	"github.com/wardenauthz/warden/ratelimit/redistest"
)

// TestAPIKeyNew: the printed entry, stored in a key file, accepts the
// printed key, and only it.
func TestAPIKeyNew(t *testing.T) {
	code, out, errs := runCLI(t, "apikey", "new", "--name", "partner-acme")
	if code != 0 || errs != "" {
		t.Fatalf("exit %d: %s", code, errs)
	}
	lines := strings.Split(out, "\n")
	key := lines[1]
	_, entry, ok := strings.Cut(out, "(it holds the hash only):\n")
	if !strings.HasPrefix(key, "wk_") || !ok {
		t.Fatalf("output:\n%s", out)
	}
	if strings.Contains(entry, key) {
		t.Fatal("the entry holds the key")
	}
	f := filepath.Join(t.TempDir(), "keys.yaml")
	if err := os.WriteFile(f, []byte("keys:\n"+entry), 0o600); err != nil {
		t.Fatal(err)
	}
	no := false
	a, err := identity.New(identity.Config{Anonymous: &no, APIKeys: &identity.APIKeysConfig{File: f}}, identity.Options{})
	if err != nil {
		t.Fatal(err)
	}
	id, err := a.Authenticate(context.Background(), identity.Input{Authorization: identity.Credential("ApiKey " + key)})
	if err != nil || id.ID != "partner-acme" {
		t.Fatalf("printed key: %v %q", err, id.ID)
	}
	for _, bad := range []string{"a|b", "", `q"uote`} {
		if code, _, _ := runCLI(t, "apikey", "new", "--name", bad); code != 2 {
			t.Errorf("--name %q: exit %d", bad, code)
		}
	}
}

// TestRevokeAPIKeyByName: `warden apikey new` then `warden revoke --subject
// 'ApiKey::"NAME"'` through the config's Redis store: the running Warden
// refuses the key; the other key keeps working.
func TestRevokeAPIKeyByName(t *testing.T) {
	t.Setenv("XDG_STATE_HOME", t.TempDir())
	t.Setenv("WARDEN_CONFIG", "")
	srv := redistest.Start(t)
	cfg, addr := quickstartCopy(t)
	rewrite(t, cfg, "store: {kind: memory}", "store: {kind: redis, redis: {addrs: ['"+srv.Addr+"']}}")
	var entries strings.Builder
	keys := map[string]string{}
	for _, name := range []string{"ci", "partner"} {
		code, out, errs := runCLI(t, "apikey", "new", "--name", name)
		if code != 0 {
			t.Fatalf("apikey new: %s", errs)
		}
		keys[name] = strings.Split(out, "\n")[1]
		_, e, _ := strings.Cut(out, "(it holds the hash only):\n")
		entries.WriteString(e)
	}
	testlog.Secret(t, keys["ci"], keys["partner"])
	if err := os.WriteFile(filepath.Join(filepath.Dir(cfg), "keys.yaml"), []byte("keys:\n"+entries.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	rewrite(t, cfg, "  anonymous: true", "  api_keys: {file: keys.yaml}\n  anonymous: true")
	serveWith(t, cfg, addr)
	reason := func(key string) string {
		t.Helper()
		_, out, errs := runCLI(t, "check", "--output", "json", "--server", addr, "--url", "http://localhost:8080/orders", "--header", "authorization: ApiKey "+key)
		var c checkOut
		if err := json.Unmarshal([]byte(out), &c); err != nil {
			t.Fatalf("check: %v\n%s%s", err, out, errs)
		}
		return c.Reason
	}
	if got := reason(keys["ci"]); got != "policy_deny" {
		t.Fatalf("before: %s (want policy_deny: authenticated, no policy grants ApiKey)", got)
	}
	code, out, errs := runCLI(t, "revoke", "--config", cfg, "--subject", `ApiKey::"ci"`)
	if code != 0 || out != "revoked subject ApiKey::\"ci\"\n" {
		t.Fatalf("revoke: %d %q %s", code, out, errs)
	}
	got := ""
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if got = reason(keys["ci"]); got == "token_revoked" {
			break
		}
	}
	if got != "token_revoked" {
		t.Errorf("after revoking ApiKey::\"ci\": %s", got)
	}
	if got := reason(keys["partner"]); got != "policy_deny" {
		t.Errorf("another key: %s", got)
	}
}
