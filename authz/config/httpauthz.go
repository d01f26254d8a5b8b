package config

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/wardenauthz/warden/internal/fielderr"
)

// HTTPAuthz is server.http_authz: the HTTP authorization listener
// (server.http_authz_addr) for Envoy's HTTP ext_authz service, Istio's
// envoyExtAuthzHttp provider, nginx auth_request, Traefik ForwardAuth and
// Caddy forward_auth.
type HTTPAuthz struct {
	// TrustedProxies are the addresses (CIDRs or single IPs) of the proxies
	// whose forwarded request headers are believed: X-Forwarded-Method,
	// -Uri, -Host, -Proto, -For, X-Original-Method, X-Original-URI and
	// X-Forwarded-Client-Cert. A forwarded method or URI from any other
	// peer is refused (400); its -Host, -Proto, -For and client certificate
	// are ignored. Empty: no peer is trusted.
	TrustedProxies []string `yaml:"trusted_proxies"`
	// PathPrefix is Envoy's http_service.path_prefix: stripped from the
	// path of an Envoy HTTP-mode request (one without it is refused).
	PathPrefix string `yaml:"path_prefix"`
	// ReadTimeout bounds reading a whole request (headers and body);
	// IdleTimeout a kept-alive connection between requests.
	ReadTimeout time.Duration `yaml:"read_timeout"`
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// MaxConnections bounds the listener's open connections (default
	// 1024): past it, new connections wait in the kernel's accept queue
	// until one closes. It also keeps file descriptors for the other
	// listeners.
	MaxConnections int `yaml:"max_connections"`
	// MaxRequests bounds the requests being handled at once over all
	// connections (default 256), from the handler's start to its return
	// (reading, deciding, writing the answer). Past it a request is
	// answered 503 at once, with no body, never decided.
	MaxRequests int `yaml:"max_requests"`

	// Trusted is TrustedProxies parsed (set by validation).
	Trusted []netip.Prefix `yaml:"-"`
}

func (h *HTTPAuthz) setDefaults() {
	if h.ReadTimeout == 0 {
		h.ReadTimeout = 5 * time.Second
	}
	if h.IdleTimeout == 0 {
		h.IdleTimeout = 90 * time.Second
	}
	if h.MaxConnections == 0 {
		h.MaxConnections = DefaultHTTPAuthzMaxConnections
	}
	if h.MaxRequests == 0 {
		h.MaxRequests = DefaultHTTPAuthzMaxRequests
	}
}

// The defaults of server.http_authz.max_connections and max_requests.
const (
	DefaultHTTPAuthzMaxConnections = 1024
	DefaultHTTPAuthzMaxRequests    = 256
)

// validateHTTPAuthz checks server.http_authz_addr and server.http_authz.
func (c *Config) validateHTTPAuthz() fielderr.List {
	var errs fielderr.List
	bad := func(path, format string, args ...any) {
		errs = append(errs, fielderr.Errorf(path, format, args...))
	}
	s := &c.Server
	if s.HTTPAuthzAddr != "" {
		if _, _, err := net.SplitHostPort(s.HTTPAuthzAddr); err != nil {
			bad("server.http_authz_addr", "%q is not host:port (leave it out to turn the listener off)", s.HTTPAuthzAddr)
		}
	}
	if c.Identity.DevIssuer.Enabled && s.HTTPAuthzAddr != "" && !Loopback(s.HTTPAuthzAddr) {
		bad("identity.dev_issuer.enabled", "the dev issuer is for local use only: server.http_authz_addr %q is not a loopback address", s.HTTPAuthzAddr)
	}
	h := &s.HTTPAuthz
	h.Trusted = nil
	for i, p := range h.TrustedProxies {
		key := fmt.Sprintf("server.http_authz.trusted_proxies[%d]", i)
		if pf, err := netip.ParsePrefix(p); err == nil {
			if pf != pf.Masked() {
				bad(key, "%q has host bits set (did you mean %s?)", p, pf.Masked())
				continue
			}
			h.Trusted = append(h.Trusted, pf)
			continue
		}
		ip, err := netip.ParseAddr(p)
		if err != nil || ip.Zone() != "" {
			bad(key, "%q is not an IP address or CIDR", p)
			continue
		}
		h.Trusted = append(h.Trusted, netip.PrefixFrom(ip, ip.BitLen()))
	}
	for _, pf := range h.Trusted {
		if pf.Bits() == 0 {
			bad("server.http_authz.trusted_proxies", "%s trusts every address: any client could choose its own method, path and source", pf)
		}
	}
	if p := h.PathPrefix; p != "" && (!strings.HasPrefix(p, "/") || strings.HasSuffix(p, "/") || strings.ContainsAny(p, "?#%\\ \t") || strings.Contains(p, "//")) {
		bad("server.http_authz.path_prefix", "%q must start with / and not end with one (like Envoy's path_prefix: /ext_authz)", p)
	}
	if h.ReadTimeout < 0 || h.ReadTimeout > time.Minute {
		bad("server.http_authz.read_timeout", "must be between 0s and 1m")
	}
	if h.IdleTimeout < 0 || h.IdleTimeout > time.Hour {
		bad("server.http_authz.idle_timeout", "must be between 0s and 1h")
	}
	if h.MaxConnections < 1 || h.MaxConnections > 1<<16 {
		bad("server.http_authz.max_connections", "must be between 1 and 65536 (each open connection takes a file descriptor)")
	}
	if h.MaxRequests < 1 || h.MaxRequests > 1<<16 {
		bad("server.http_authz.max_requests", "must be between 1 and 65536")
	}
	return errs
}
