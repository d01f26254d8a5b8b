package identity_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/alexedwards/argon2id"

	"github.com/wardenauthz/warden/identity"
	"github.com/wardenauthz/warden/identity/oidctest"
	"github.com/wardenauthz/warden/internal/testlog"
)

// keyFile writes the entries of new keys (name → key) and returns the
// file and the keys.
func keyFile(t *testing.T, dir string, names ...string) (string, map[string]string) {
	t.Helper()
	keys := map[string]string{}
	var b strings.Builder
	b.WriteString("keys:\n")
	for _, n := range names {
		k, entry, err := identity.NewAPIKey(n, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
		if err != nil {
			t.Fatal(err)
		}
		keys[n] = k
		b.WriteString(entry)
		b.WriteString("    attributes: {tier: gold}\n    parents: [partners]\n")
	}
	f := filepath.Join(dir, "keys.yaml")
	if err := os.WriteFile(f, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return f, keys
}

func keyAuth(t *testing.T, file string, logs *testlog.Buffer) *identity.Authenticator {
	t.Helper()
	f := false
	o := identity.Options{}
	if logs != nil {
		o.Logger = slog.New(slog.NewTextHandler(logs, nil))
	}
	a, err := identity.New(identity.Config{Anonymous: &f, APIKeys: &identity.APIKeysConfig{File: file}}, o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	a.Start(ctx)
	return a
}

func apiKey(k string) identity.Input {
	return identity.Input{Authorization: identity.Credential("ApiKey " + k)}
}

func TestAPIKeyBecomesPrincipal(t *testing.T) {
	file, keys := keyFile(t, t.TempDir(), "partner-acme", "ci")
	a := keyAuth(t, file, nil)
	for _, h := range []string{"ApiKey " + keys["partner-acme"], "apikey  " + keys["partner-acme"], " APIKEY " + keys["partner-acme"] + " "} {
		id, err := a.Authenticate(context.Background(), identity.Input{Authorization: identity.Credential(h)})
		if err != nil {
			t.Fatalf("%q: %v", h[:8], err)
		}
		if id.Kind != identity.APIKey || id.Kind.String() != "ApiKey" || id.ID != "partner-acme" || id.Token != nil {
			t.Fatalf("got %v %q", id.Kind, id.ID)
		}
		if id.APIKey.Attributes["tier"] != "gold" || strings.Join(id.Groups, ",") != "partners" {
			t.Errorf("attributes %v parents %v", id.APIKey.Attributes, id.Groups)
		}
		if id.Credential != identity.CredentialAPIKey {
			t.Errorf("credential kind %q", id.Credential)
		}
		subject, jti, iat, ok := id.RevocationTarget()
		if !ok || subject != `ApiKey::"partner-acme"` || jti != "" || !iat.Equal(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)) {
			t.Errorf("revocation target %q %q %v %v", subject, jti, iat, ok)
		}
	}
}

func TestAPIKeyRefusals(t *testing.T) {
	file, keys := keyFile(t, t.TempDir(), "partner-acme", "ci")
	a := keyAuth(t, file, nil)
	k := keys["partner-acme"]
	other := keys["ci"]
	for name, h := range map[string]string{
		"wrong key":                "ApiKey wk_0123456789abcdef_" + strings.Repeat("0", 64),
		"right id, wrong secret":   "ApiKey " + k[:20] + strings.Repeat("0", 64),
		"right id, other's secret": "ApiKey " + k[:20] + other[20:],
		"truncated":                "ApiKey " + k[:len(k)-1],
		"one longer":               "ApiKey " + k + "0",
		"upper case":               "ApiKey " + strings.ToUpper(k),
		"no key":                   "ApiKey",
		"two keys":                 "ApiKey " + k + ", ApiKey " + other,
		"not the key format":       "ApiKey hunter2",
		"key and bearer":           "ApiKey " + k + ", Bearer x.y.z",
		"key as bearer":            "Bearer " + k,
	} {
		t.Run(name, func(t *testing.T) {
			id, err := a.Authenticate(context.Background(), identity.Input{Authorization: identity.Credential(h)})
			if err == nil {
				t.Fatalf("accepted as %v %q", id.Kind, id.ID)
			}
			if errors.Is(err, identity.ErrNoCredentials) {
				t.Errorf("an attempt at a credential became no credential: %v", err)
			}
			if strings.Contains(err.Error(), k[20:]) {
				t.Errorf("error holds the key: %v", err)
			}
		})
	}
}

func TestAPIKeyArgon2id(t *testing.T) {
	key := "wk_00000000000000a1_" + strings.Repeat("ab", 32)
	h, err := argon2id.CreateHash(key, &argon2id.Params{Memory: 64, Iterations: 1, Parallelism: 1, SaltLength: 16, KeyLength: 32})
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "keys.yaml")
	if err := os.WriteFile(f, []byte("keys:\n  - name: legacy\n    id: 00000000000000a1\n    hash: '"+h+"'\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	a := keyAuth(t, f, nil)
	if id, err := a.Authenticate(context.Background(), apiKey(key)); err != nil || id.ID != "legacy" {
		t.Fatalf("argon2id key: %v %q", err, id.ID)
	}
	if _, err := a.Authenticate(context.Background(), apiKey(key[:len(key)-1]+"c")); err == nil {
		t.Fatal("wrong argon2id key accepted")
	}
}

// TestAPIKeyFileReload: the file is read again on change; a bad file keeps
// the keys read before, and says file:line.
func TestAPIKeyFileReload(t *testing.T) {
	dir := t.TempDir()
	file, keys := keyFile(t, dir, "a")
	logs := &testlog.Buffer{}
	a := keyAuth(t, file, logs)
	if _, err := a.Authenticate(context.Background(), apiKey(keys["a"])); err != nil {
		t.Fatal(err)
	}
	good, _ := os.ReadFile(file)
	bad := string(good) + "  - name: b\n    id: nothex\n    hash: sha256:00\n"
	if err := os.WriteFile(file, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	// The watcher may first read the file half written (truncated: "empty"):
	// wait for the complete bad file's error.
	waitFor(t, func() bool { return strings.Contains(logs.String(), "keys.yaml:8:") })
	if !strings.Contains(logs.String(), "keys.yaml:8:") || !strings.Contains(logs.String(), "keys[1]") {
		t.Errorf("log does not name file:line and key: %s", logs.String())
	}
	if _, err := a.Authenticate(context.Background(), apiKey(keys["a"])); err != nil {
		t.Fatalf("old key refused after a bad file: %v", err)
	}
	// A good file replaces the set (renamed into place, as editors and
	// Kubernetes do): a is gone, b works.
	next, nkeys := keyFile(t, t.TempDir(), "b")
	content, _ := os.ReadFile(next)
	if err := os.WriteFile(filepath.Join(dir, ".tmp"), content, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dir, ".tmp"), file); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		_, err := a.Authenticate(context.Background(), apiKey(nkeys["b"]))
		return err == nil
	})
	if _, err := a.Authenticate(context.Background(), apiKey(keys["a"])); err == nil {
		t.Fatal("a removed key is still accepted")
	}
}

// waitFor polls cond for a file watch to act (bounded: 5 s).
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestParseAPIKeysErrors(t *testing.T) {
	for _, tc := range []struct{ file, want string }{
		{"keys: 3\n", "k:1:7: keys: want a list"},
		{"nokeys: []\n", `k:1:1: unknown field "nokeys"`},
		{"keys:\n  - {name: a, id: 0123456789abcdef, hash: sha256:00}\n", "k:2:5: keys[0]: hash: sha256: want 64 hex digits"},
		{"keys:\n  - {name: a, id: 0123456789ABCDEF, hash: x}\n", "keys[0]: id: want 16 lower-case hex digits"},
		{"keys:\n  - {name: 'a|b', id: 0123456789abcdef, hash: x}\n", "keys[0]: name: must not contain"},
		{"keys:\n  - {name: a, id: 0123456789abcdef, hash: x, extra: 1}\n", `keys[0]: unknown field "extra"`},
		{"keys:\n  - {name: a, id: 0123456789abcdef, hash: '$argon2id$v=19$m=99999999,t=1,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA'}\n", "parameters over"},
		// An empty stored hash would equal every key's derivation: any key would match.
		{"keys:\n  - {name: a, id: 0123456789abcdef, hash: '$argon2id$v=19$m=64,t=1,p=1$$'}\n", "salt under 8 bytes or hash under 16 bytes"},
		{"keys:\n  - {name: a, id: 0123456789abcdef, hash: '$argon2id$v=19$m=64,t=0,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA'}\n", "parameters under t=1"},
		{"keys:\n  - {name: a, id: 0123456789abcdef, hash: 'sha256:" + strings.Repeat("0", 64) + "'}\n  - {name: a, id: 0123456789abcdee, hash: 'sha256:" + strings.Repeat("0", 64) + "'}\n", "k:3:5: keys[1].name: \"a\" is also the name at line 2"},
		{"keys:\n  - {name: a, id: 0123456789abcdef, hash: 'sha256:" + strings.Repeat("0", 64) + "'}\n  - {name: b, id: 0123456789abcdef, hash: 'sha256:" + strings.Repeat("0", 64) + "'}\n", "keys[1].id"},
		{"keys:\n  - {name: a, id: 0123456789abcdef, hash: 'sha256:" + strings.Repeat("0", 64) + "', parents: ['x|y']}\n", "parents"},
		{"keys:\n  - {name: a, id: 0123456789abcdef, hash: 'sha256:" + strings.Repeat("0", 64) + "', created: yesterday}\n", "created: want RFC 3339"},
	} {
		_, err := identity.ParseAPIKeys("k", []byte(tc.file))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: got %v, want %q", tc.file, err, tc.want)
		}
	}
}

func TestRevocationSubjectAPIKey(t *testing.T) {
	c := identity.Config{APIKeys: &identity.APIKeysConfig{File: "x"}}
	c.SetDefaults()
	if got, err := c.RevocationSubject(`ApiKey::"partner-acme"`); err != nil || got != `ApiKey::"partner-acme"` {
		t.Errorf("got %q %v", got, err)
	}
	for _, bad := range []string{`ApiKey::partner`, `ApiKey::"a|b"`, `ApiKey::""`} {
		if _, err := c.RevocationSubject(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	c.APIKeys = nil
	if _, err := c.RevocationSubject(`ApiKey::"partner-acme"`); err == nil {
		t.Error("accepted without api_keys")
	}
}

// TestAPIKeyWithoutAPIKeysConfigured: an ApiKey attempt at an authenticator
// without identity.api_keys is refused as an API key, never taken for no
// credentials (which anonymous callers, or a workload peer, would then
// pass as).
func TestAPIKeyWithoutAPIKeysConfigured(t *testing.T) {
	a, _ := newAuth(t, oidctest.New(t), func(c *identity.Config) { yes := true; c.Anonymous = &yes })
	for _, h := range []string{
		"ApiKey wk_0123456789abcdef_" + strings.Repeat("0", 64),
		"apikey x",
		"APIKEY",
	} {
		id, err := a.Authenticate(context.Background(), identity.Input{Authorization: identity.Credential(h)})
		if !errors.Is(err, identity.ErrAPIKey) {
			t.Errorf("%q: %v %q, %v; want ErrAPIKey", h, id.Kind, id.ID, err)
		}
	}
}
