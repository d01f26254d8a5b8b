package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wardenauthz/warden/identity"
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
