package server_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.yaml.in/yaml/v3"

	"github.com/wardenauthz/warden/authz/checkreq"
	"github.com/wardenauthz/warden/authz/config"
	"github.com/wardenauthz/warden/authz/server"
	"github.com/wardenauthz/warden/identity"
	"github.com/wardenauthz/warden/identity/oidctest"
	"github.com/wardenauthz/warden/internal/testlog"
	"github.com/wardenauthz/warden/ratelimit"
	"github.com/wardenauthz/warden/ratelimit/redistest"
)

// apiKeyEnv is a Warden whose identity.api_keys file holds a gold and a
// silver partner, with a policy that lets gold partners read.
func apiKeyEnv(t *testing.T, stdout *testlog.Buffer, mutate ...func(*config.Config)) (*env, map[string]string) {
	t.Helper()
	dir := t.TempDir()
	keys := map[string]string{}
	var file strings.Builder
	file.WriteString("keys:\n")
	for _, k := range []struct{ name, tier string }{{"partner-acme", "gold"}, {"partner-tin", "silver"}} {
		key, entry, err := identity.NewAPIKey(k.name, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
		if err != nil {
			t.Fatal(err)
		}
		keys[k.name] = key
		file.WriteString(entry + "    attributes: {tier: " + k.tier + "}\n    parents: [partners]\n")
	}
	if err := os.WriteFile(filepath.Join(dir, "keys.yaml"), []byte(file.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	pol, err := os.ReadFile("testdata/policies/api.cedar")
	if err != nil {
		t.Fatal(err)
	}
	pol = append(pol, []byte(`
@id("gold-partners-read")
permit (principal in Group::"partners", action in Action::"read", resource)
when { principal has tier && principal.tier == "gold" };
`)...)
	pdir := filepath.Join(dir, "policies")
	if err := os.Mkdir(pdir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(pdir, "api.cedar"), pol, 0o600); err != nil {
		t.Fatal(err)
	}
	secrets := []string{}
	for _, k := range keys {
		secrets = append(secrets, k)
	}
	testlog.Secret(t, secrets...)
	e := startOpts(t, oidctest.New(t), server.Options{Stdout: stdout}, func(c *config.Config) {
		c.Identity.APIKeys = &identity.APIKeysConfig{File: filepath.Join(dir, "keys.yaml"), MaxConcurrentHashes: 4}
		c.Policy.Dir = pdir
		c.DecisionLog.Sinks = []config.Sink{{Kind: "stdout"}}
		for _, m := range mutate {
			m(c)
		}
	})
	return e, keys
}

// TestAPIKeysEndToEnd: an API key is the principal ApiKey::"NAME" with its
// file's attributes and parents in Cedar; a wrong key is 401; revoking the
// name (the revoke path's subject ApiKey::"NAME") refuses it; the key is
// never forwarded upstream nor written to a record.
func TestAPIKeysEndToEnd(t *testing.T) {
	var stdout testlog.Buffer
	e, keys := apiKeyEnv(t, &stdout)
	get := func(auth string) checkreq.HTTP {
		return checkreq.HTTP{URL: "https://api.example.com/v1/orders/42", Headers: []string{"authorization: " + auth}}
	}
	resp := e.check(t, get("ApiKey "+keys["partner-acme"]))
	if reasonOf(resp) != "policy_allow" {
		t.Fatalf("gold partner: %s", reasonOf(resp))
	}
	if !slices.Contains(resp.GetOkResponse().GetHeadersToRemove(), "authorization") {
		t.Errorf("the key is forwarded upstream: removes %v", resp.GetOkResponse().GetHeadersToRemove())
	}
	if got := reasonOf(e.check(t, get("ApiKey "+keys["partner-tin"]))); got != "policy_deny" {
		t.Errorf("silver partner (policy reads principal.tier): %s", got)
	}
	wrong := keys["partner-acme"][:20] + strings.Repeat("0", 64)
	resp = e.check(t, get("ApiKey "+wrong))
	if code, _ := denied(t, resp); code != 401 {
		t.Errorf("right id, wrong secret: %d %s", code, reasonOf(resp))
	}
	subject, err := e.svc.Config.Identity.RevocationSubject(`ApiKey::"partner-acme"`)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.svc.Store.Revoke(context.Background(), ratelimit.Revocation{Kind: "subject", ID: subject, Before: fixedNow()}); err != nil {
		t.Fatal(err)
	}
	if got := reasonOf(e.check(t, get("ApiKey "+keys["partner-acme"]))); got != "token_revoked" {
		t.Errorf("revoked by name: %s", got)
	}
	if got := reasonOf(e.check(t, get("ApiKey "+keys["partner-tin"]))); got != "policy_deny" {
		t.Errorf("another name is not revoked: %s", got)
	}
	e.cancel() // flush the decision log
	<-e.done
	e.done <- nil
	out := stdout.String()
	if !strings.Contains(out, `ApiKey::\"partner-acme\"`) {
		t.Errorf("records do not name the principal:\n%s", out)
	}
	for _, k := range append([]string{wrong}, keys["partner-acme"], keys["partner-tin"]) {
		if strings.Contains(out, k[20:]) {
			t.Error("a record holds an API key's secret")
		}
	}
}

// TestIntrospectionEndToEnd: an opaque token is judged by the issuer's
// introspection endpoint: active is an allow by policy, inactive 401, an
// endpoint that is down 503 with Retry-After; the token reaches no record.
func TestIntrospectionEndToEnd(t *testing.T) {
	var stdout testlog.Buffer
	is := oidctest.New(t)
	is.EnableIntrospection("warden", "s3cret")
	t.Setenv("WARDEN_TEST_INTROSPECTION_SECRET", "s3cret")
	e := startOpts(t, is, server.Options{Stdout: &stdout, Now: time.Now}, func(c *config.Config) {
		c.Identity.Issuers[0].Introspection = &identity.IntrospectionConfig{ClientID: "warden", ClientSecretEnv: "WARDEN_TEST_INTROSPECTION_SECRET"}
		c.DecisionLog.Sinks = []config.Sink{{Kind: "stdout"}}
	})
	claims := is.Claims("alice", aud)
	claims["groups"] = []string{"staff"}
	staff := is.Opaque(claims)
	dead := is.Opaque(claims)
	is.Deactivate(dead)
	down := is.Opaque(claims)
	testlog.Secret(t, staff, dead, down)
	get := func(tok string) checkreq.HTTP {
		return checkreq.HTTP{URL: "https://api.example.com/v1/orders/42", Headers: []string{"authorization: Bearer " + tok}}
	}
	if got := reasonOf(e.check(t, get(staff))); got != "policy_allow" {
		t.Fatalf("active staff token: %s", got)
	}
	if code, _ := denied(t, e.check(t, get(dead))); code != 401 {
		t.Errorf("inactive: %d", code)
	}
	is.SetIntrospectionDown(true)
	resp := e.check(t, get(down))
	if code, _ := denied(t, resp); code != 503 || deniedHeader(resp, "retry-after") == "" {
		t.Errorf("endpoint down: %d, retry-after %q", code, deniedHeader(resp, "retry-after"))
	}
	e.cancel()
	<-e.done
	e.done <- nil
	out := stdout.String()
	for _, tok := range []string{staff, dead, down} {
		if strings.Contains(out, tok[3:]) {
			t.Error("a record holds an opaque token")
		}
	}
}

// TestAPIKeysInRedis: with identity.api_keys.redis, the keys are the
// fields of a hash in the store's Redis, read on every use: a key added is
// accepted at once by every replica, a deleted one refused at once, a
// malformed entry refused, and Redis down is 503, never an allow.
func TestAPIKeysInRedis(t *testing.T) {
	srv := redistest.Start(t)
	cfg := func(c *config.Config) {
		c.Store.Kind = "redis"
		c.Store.Redis.Addrs = []string{srv.Addr}
		c.Identity.APIKeys = &identity.APIKeysConfig{Redis: &identity.APIKeysRedisConfig{Key: "warden:apikeys"}}
	}
	a := start(t, cfg)
	b := startWith(t, a.is, cfg)
	rc := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { _ = rc.Close() })
	key, entry, err := identity.NewAPIKey("ci", time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	testlog.Secret(t, key)
	var l struct{ Name, ID, Hash, Created string }
	if err := yaml.Unmarshal([]byte(strings.TrimPrefix(strings.ReplaceAll(entry, "\n    ", "\n"), "  - ")), &l); err != nil {
		t.Fatal(err)
	}
	value, _ := json.Marshal(map[string]any{"name": l.Name, "hash": l.Hash, "created": l.Created, "parents": []string{"ci"}})
	get := checkreq.HTTP{URL: "https://api.example.com/v1/orders/42", Headers: []string{"authorization: ApiKey " + key}}
	if code, _ := denied(t, a.check(t, get)); code != 401 {
		t.Fatalf("before the key is stored: %d", code)
	}
	if err := rc.HSet(context.Background(), "warden:apikeys", l.ID, value).Err(); err != nil {
		t.Fatal(err)
	}
	for _, e := range []*env{a, b} {
		// Authenticated: the policies (which grant no ApiKey) decide.
		if got := reasonOf(e.check(t, get)); got != "policy_deny" {
			t.Fatalf("stored key: %s, want policy_deny (authenticated, no permit)", got)
		}
	}
	if err := rc.HSet(context.Background(), "warden:apikeys", l.ID, `{"name":"ci","hash":"sha256:00"}`).Err(); err != nil {
		t.Fatal(err)
	}
	if code, _ := denied(t, b.check(t, get)); code != 401 {
		t.Errorf("malformed entry: %d", code)
	}
	if err := rc.HDel(context.Background(), "warden:apikeys", l.ID).Err(); err != nil {
		t.Fatal(err)
	}
	if code, _ := denied(t, a.check(t, get)); code != 401 {
		t.Errorf("deleted key: %d", code)
	}
	srv.Kill()
	if code, _ := denied(t, a.check(t, get)); code != 503 {
		t.Errorf("Redis down: %d, want 503", code)
	}
}
