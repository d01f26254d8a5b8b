package config_test

import (
	"strings"
	"testing"
	"time"

	"github.com/wardenauthz/warden/authz/config"
)

func TestHTTPAuthzConfig(t *testing.T) {
	ok := `identity: {anonymous: true}
server:
  http_authz_addr: 127.0.0.1:9194
  http_authz:
    trusted_proxies: [127.0.0.1, 10.0.0.0/8, "::1"]
    path_prefix: /ext_authz
`
	c, err := config.Parse("warden.yaml", []byte(ok), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	h := c.Server.HTTPAuthz
	if len(h.Trusted) != 3 || h.Trusted[0].String() != "127.0.0.1/32" || h.Trusted[2].String() != "::1/128" || h.ReadTimeout != 5*time.Second {
		t.Errorf("parsed: %+v", h)
	}
	off, err := config.Parse("warden.yaml", []byte("identity: {anonymous: true}\n"), t.TempDir())
	if err != nil || off.Server.HTTPAuthzAddr != "" {
		t.Errorf("the listener must be off by default: %q %v", off.Server.HTTPAuthzAddr, err)
	}

	bad := `identity: {dev_issuer: {enabled: true}}
server:
  http_authz_addr: 0.0.0.0:9194
  http_authz:
    trusted_proxies: [nginx, 10.0.0.1/8, 0.0.0.0/0, "fe80::1%eth0"]
    path_prefix: ext_authz/
    read_timeout: 2h
`
	_, err = config.Parse("warden.yaml", []byte(bad), t.TempDir())
	if err == nil {
		t.Fatal("want errors")
	}
	for _, want := range []string{
		`warden.yaml:1: identity.dev_issuer.enabled: the dev issuer is for local use only: server.http_authz_addr "0.0.0.0:9194"`,
		`warden.yaml:5: server.http_authz.trusted_proxies[0]: "nginx" is not an IP address or CIDR`,
		`server.http_authz.trusted_proxies[1]: "10.0.0.1/8" has host bits set (did you mean 10.0.0.0/8?)`,
		`server.http_authz.trusted_proxies: 0.0.0.0/0 trusts every address`,
		`server.http_authz.trusted_proxies[3]: "fe80::1%eth0" is not an IP address or CIDR`,
		`warden.yaml:6: server.http_authz.path_prefix: "ext_authz/" must start with /`,
		`warden.yaml:7: server.http_authz.read_timeout: must be between 0s and 1m`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
	if _, err := config.Parse("warden.yaml", []byte("identity: {anonymous: true}\nserver: {http_authz_addr: nowhere}\n"), t.TempDir()); err == nil || !strings.Contains(err.Error(), `server.http_authz_addr: "nowhere" is not host:port`) {
		t.Errorf("bad address: %v", err)
	}
}

// TestHTTPAuthzLimits: server.http_authz.max_connections and max_requests
// default to 1024 and 256, and are refused with their key path out of
// range.
func TestHTTPAuthzLimits(t *testing.T) {
	c, err := config.Parse("warden.yaml", []byte("identity: {anonymous: true}\nserver: {http_authz_addr: 127.0.0.1:9194}\n"), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if h := c.Server.HTTPAuthz; h.MaxConnections != 1024 || h.MaxRequests != 256 {
		t.Errorf("defaults: %d connections, %d requests", h.MaxConnections, h.MaxRequests)
	}
	c, err = config.Parse("warden.yaml", []byte("identity: {anonymous: true}\nserver: {http_authz: {max_connections: 8, max_requests: 3}}\n"), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if h := c.Server.HTTPAuthz; h.MaxConnections != 8 || h.MaxRequests != 3 {
		t.Errorf("set: %d connections, %d requests", h.MaxConnections, h.MaxRequests)
	}
	for _, tc := range []struct{ yaml, want string }{
		{"max_connections: -1", `warden.yaml:5: server.http_authz.max_connections: must be between 1 and 65536`},
		{"max_connections: 100000", `warden.yaml:5: server.http_authz.max_connections: must be between 1 and 65536`},
		{"max_requests: -3", `warden.yaml:5: server.http_authz.max_requests: must be between 1 and 65536`},
		{"max_requests: 70000", `warden.yaml:5: server.http_authz.max_requests: must be between 1 and 65536`},
	} {
		y := "identity: {anonymous: true}\nserver:\n  http_authz_addr: 127.0.0.1:9194\n  http_authz:\n    " + tc.yaml + "\n"
		_, err := config.Parse("warden.yaml", []byte(y), t.TempDir())
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want %q", tc.yaml, err, tc.want)
		}
	}
}
