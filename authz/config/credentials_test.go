package config_test

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wardenauthz/warden/authz/config"
)

// TestIntrospectionAndAPIKeysConfig: the keys of issue 21 (introspection,
// api_keys) parse strictly, with key-path errors, and their files are
// relative to the config.
func TestIntrospectionAndAPIKeysConfig(t *testing.T) {
	dir := t.TempDir()
	c, err := config.Parse("warden.yaml", []byte(`identity:
  issuers:
    - name: corp
      issuer: https://idp.example.com
      audiences: [api]
      introspection:
        client_id: warden
        client_secret_file: secrets/introspect
        cache_ttl: 1m
        timeout: 500ms
  api_keys:
    file: keys.yaml
`), dir)
	if err != nil {
		t.Fatal(err)
	}
	ic := c.Identity.Issuers[0].Introspection
	if ic.ClientSecretFile != filepath.Join(dir, "secrets/introspect") || c.Identity.APIKeys.File != filepath.Join(dir, "keys.yaml") {
		t.Errorf("paths not resolved: %q %q", ic.ClientSecretFile, c.Identity.APIKeys.File)
	}
	if ic.CacheTTL != time.Minute || ic.Timeout != 500*time.Millisecond || ic.Tokens != "opaque" || ic.MaxConcurrent != 16 {
		t.Errorf("introspection: %+v", ic)
	}
	_, err = config.Parse("warden.yaml", []byte(`identity:
  issuers:
    - name: corp
      issuer: https://idp.example.com
      audiences: [api]
      introspection:
        client_id: warden
        client_secret: hunter2
        timeout: 1h
  api_keys:
    fil: keys.yaml
`), dir)
	for _, want := range []string{
		`warden.yaml:8: identity.issuers[0].introspection.client_secret: unknown key`,
		`identity.issuers[0].introspection.timeout: must be between 10ms and 30s`,
		`identity.issuers[0].introspection: set exactly one of client_secret_env, client_secret_file, private_key_jwt`,
		`warden.yaml:11: identity.api_keys.fil: unknown key`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
}
