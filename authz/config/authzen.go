package config

import (
	"fmt"
	"net"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/wardenauthz/warden/internal/fielderr"
)

// AuthZEN configures the OpenID AuthZEN 1.0 evaluation API, served on
// server.authzen_addr (off when empty).
type AuthZEN struct {
	// TLS for the listener; with client_ca_file, callers may present a
	// client certificate named in Clients.
	TLS TLS `yaml:"tls"`
	// TokenFile holds "TOKEN GRANT[,GRANT...]" lines, as admin.token_file
	// (grants: Evaluate, Search, Explain, or *). Read on every call.
	TokenFile string `yaml:"token_file"`
	// Clients grants mTLS client identities (URI SAN, else subject CN).
	Clients []AdminClient `yaml:"clients"`
	// Issuers are identity.issuers names whose valid access tokens may call
	// Evaluate and Search (not Explain).
	Issuers []string `yaml:"issuers"`
	// Types maps AuthZEN subject and resource types to Cedar entity types
	// (user: User). A type not listed is refused, unless Types is empty:
	// then every type is its own Cedar entity type.
	Types map[string]string `yaml:"types"`
	// MaxBodyBytes bounds a request body (default 64 KiB).
	MaxBodyBytes int `yaml:"max_body_bytes"`
	// MaxEvaluations bounds an evaluations batch (default 64).
	MaxEvaluations int `yaml:"max_evaluations"`
	// Timeout bounds reading a request and writing its answer (default 5s).
	Timeout time.Duration `yaml:"timeout"`
	// MaxConnections bounds the listener's open connections (default
	// 1024): past it, new connections wait in the kernel's accept queue
	// until one closes. It keeps file descriptors for the other listeners,
	// and bounds the requests handled at once (HTTP/1.1: one a connection).
	MaxConnections int `yaml:"max_connections"`
	// PDP is the policy_decision_point URL the metadata names ("" : the
	// scheme and host the caller used).
	PDP string `yaml:"policy_decision_point"`
}

// AuthZENMethods are the grants of the AuthZEN listener: Evaluate (the
// evaluation and evaluations endpoints), Search (the search endpoints) and
// Explain (decision context with the deciding policy ids).
var AuthZENMethods = []string{"Evaluate", "Search", "Explain"}

var cedarTypeRE = regexp.MustCompile(`^[_a-zA-Z][_a-zA-Z0-9]*(::[_a-zA-Z][_a-zA-Z0-9]*)*$`)

// ValidCedarType reports whether t can be a Cedar entity type of a
// principal or resource (a Cedar name, not an Action type).
func ValidCedarType(t string) bool {
	if !cedarTypeRE.MatchString(t) {
		return false
	}
	return t != "Action" && !strings.HasSuffix(t, "::Action")
}

func (c *Config) setAuthZENDefaults() {
	z := &c.AuthZEN
	if z.MaxBodyBytes == 0 {
		z.MaxBodyBytes = 64 << 10
	}
	if z.MaxEvaluations == 0 {
		z.MaxEvaluations = 64
	}
	if z.Timeout == 0 {
		z.Timeout = 5 * time.Second
	}
	if z.MaxConnections == 0 {
		z.MaxConnections = 1024
	}
}

func (c *Config) validateAuthZEN() fielderr.List {
	var errs fielderr.List
	bad := func(path, format string, args ...any) {
		errs = append(errs, fielderr.Errorf(path, format, args...))
	}
	z := c.AuthZEN
	addr := c.Server.AuthZENAddr
	if addr == "" {
		return nil
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		bad("server.authzen_addr", "%q is not host:port", addr)
	}
	errs = append(errs, z.TLS.validate("authzen.tls")...)
	if z.TokenFile == "" && z.TLS.ClientCAFile == "" && len(z.Issuers) == 0 {
		bad("server.authzen_addr", "set authzen.token_file, authzen.tls.client_ca_file or authzen.issuers: unauthenticated callers are refused, so nothing could call")
	}
	if z.TLS.CertFile == "" && !Loopback(addr) {
		bad("server.authzen_addr", "%q is not a loopback address: the AuthZEN API needs authzen.tls there (its bearer tokens must not cross a network in clear)", addr)
	}
	validGrant := func(g string) bool { return g == "*" || slices.Contains(AuthZENMethods, g) }
	errs = append(errs, validateClients("authzen", z.Clients, z.TLS.ClientCAFile, validGrant, AuthZENMethods, "the grants of this client", "an AuthZEN grant")...)
	for i, name := range z.Issuers {
		found := false
		for _, is := range c.Identity.Issuers {
			found = found || is.Name == name
		}
		if !found {
			bad(fmt.Sprintf("authzen.issuers[%d]", i), "%q is not the name of an identity.issuers entry", name)
		}
	}
	keys := make([]string, 0, len(z.Types))
	for k := range z.Types {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if k == "" {
			bad("authzen.types", "an AuthZEN type must not be empty")
		}
		if !ValidCedarType(z.Types[k]) {
			bad("authzen.types."+k, "%q is not a Cedar entity type (Name or Namespace::Name, not Action)", z.Types[k])
		}
	}
	if z.MaxBodyBytes < 1024 || z.MaxBodyBytes > 16<<20 {
		bad("authzen.max_body_bytes", "must be between 1024 and 16777216")
	}
	if z.MaxEvaluations < 1 || z.MaxEvaluations > 10000 {
		bad("authzen.max_evaluations", "must be between 1 and 10000")
	}
	if z.Timeout < 0 {
		bad("authzen.timeout", "must not be negative")
	}
	if z.MaxConnections < 1 || z.MaxConnections > 1<<16 {
		bad("authzen.max_connections", "must be between 1 and 65536 (each open connection takes a file descriptor)")
	}
	if z.PDP != "" && !strings.HasPrefix(z.PDP, "https://") && !strings.HasPrefix(z.PDP, "http://") {
		bad("authzen.policy_decision_point", "%q is not an http(s) URL", z.PDP)
	}
	return errs
}
