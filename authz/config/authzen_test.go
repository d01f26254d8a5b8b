package config_test

import (
	"strings"
	"testing"

	"github.com/wardenauthz/warden/authz/config"
)

// The authzen section: off by default; when on, it needs a way to
// authenticate callers, TLS off loopback, known issuers, Cedar types and
// sane bounds, each error at its key path and line.
func TestAuthZENConfig(t *testing.T) {
	base := "identity: {anonymous: true}\n"
	c, err := config.Parse("w.yaml", []byte(base), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if c.Server.AuthZENAddr != "" || c.AuthZEN.MaxBodyBytes != 64<<10 || c.AuthZEN.MaxEvaluations != 64 {
		t.Errorf("defaults: addr %q, %+v", c.Server.AuthZENAddr, c.AuthZEN)
	}
	src := `server:
  authzen_addr: 0.0.0.0:8080
identity:
  anonymous: true
authzen:
  issuers: [nobody]
  clients: [{id: spiffe://x/y, allow: [Evaluate, Revoke]}]
  types: {user: user-type, doc: Action, group: "Ns::Group"}
  max_body_bytes: 10
  max_evaluations: 0
  policy_decision_point: ftp://pdp
`
	_, err = config.Parse("w.yaml", []byte(src), t.TempDir())
	if err == nil {
		t.Fatal("want errors")
	}
	for _, want := range []string{
		`w.yaml:2: server.authzen_addr: "0.0.0.0:8080" is not a loopback address: the AuthZEN API needs authzen.tls there`,
		`authzen.clients: needs authzen.tls.client_ca_file`,
		`authzen.clients[0].allow[1]: "Revoke" is not an AuthZEN grant (Evaluate, Search, Explain, or *)`,
		`authzen.issuers[0]: "nobody" is not the name of an identity.issuers entry`,
		`authzen.types.user: "user-type" is not a Cedar entity type`,
		`authzen.types.doc: "Action" is not a Cedar entity type`,
		`authzen.max_body_bytes: must be between 1024 and 16777216`,
		`authzen.policy_decision_point: "ftp://pdp" is not an http(s) URL`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "Ns::Group") || strings.Contains(err.Error(), "max_evaluations") {
		t.Errorf("valid values reported:\n%v", err)
	}
	// On, with no way to authenticate callers: refused.
	_, err = config.Parse("w.yaml", []byte("server: {authzen_addr: 127.0.0.1:8080}\nidentity: {anonymous: true}\n"), t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "unauthenticated callers are refused, so nothing could call") {
		t.Errorf("no authentication: %v", err)
	}
	// The example loads.
	if _, err := config.Load("../../examples/authzen/warden.yaml"); err != nil {
		t.Errorf("examples/authzen: %v", err)
	}
}

// authzen.max_connections: 1024 by default, refused at its key path out
// of 1..65536.
func TestAuthZENMaxConnections(t *testing.T) {
	c, err := config.Parse("w.yaml", []byte("identity: {anonymous: true}\n"), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if c.AuthZEN.MaxConnections != 1024 {
		t.Errorf("default max_connections %d, want 1024", c.AuthZEN.MaxConnections)
	}
	for _, v := range []string{"-1", "70000"} {
		src := "server: {authzen_addr: 127.0.0.1:8080}\nidentity: {anonymous: true}\nauthzen:\n  token_file: t\n  max_connections: " + v + "\n"
		_, err := config.Parse("w.yaml", []byte(src), t.TempDir())
		if err == nil || !strings.Contains(err.Error(), "authzen.max_connections: must be between 1 and 65536") {
			t.Errorf("max_connections %s: %v", v, err)
		}
	}
}
