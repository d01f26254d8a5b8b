// Package examples_test checks the forward-auth proxy examples (Traefik,
// Caddy, nginx) against what Warden's HTTP listener sends and reads. nginx
// itself runs the nginx example in authz/server (TestThroughNginx).
package examples_test

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// identityHeaders are the headers Warden sets on allow (authz/respond.go,
// under the default response.headers_prefix).
var identityHeaders = []string{"X-Warden-Principal", "X-Warden-Subject", "X-Warden-Issuer", "X-Warden-Groups", "X-Warden-Scopes", "X-Warden-Workload", "X-Warden-Decision-Id"}

// neverToWarden are client headers a forward-auth proxy must not pass to
// Warden (they would name another request or a workload).
var neverToWarden = []string{"X-Original-Method", "X-Original-URI", "X-Forwarded-Client-Cert"}

func read(t *testing.T, file string) string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestTraefikExample(t *testing.T) {
	var c struct {
		HTTP struct {
			Routers map[string]struct {
				Rule        string   `yaml:"rule"`
				EntryPoints []string `yaml:"entryPoints"`
				Middlewares []string `yaml:"middlewares"`
				Service     string   `yaml:"service"`
			} `yaml:"routers"`
			Middlewares map[string]struct {
				ForwardAuth *struct {
					Address                  string   `yaml:"address"`
					TrustForwardHeader       bool     `yaml:"trustForwardHeader"`
					AuthRequestHeaders       []string `yaml:"authRequestHeaders"`
					AuthResponseHeaders      []string `yaml:"authResponseHeaders"`
					AuthResponseHeadersRegex string   `yaml:"authResponseHeadersRegex"`
				} `yaml:"forwardAuth"`
			} `yaml:"middlewares"`
			Services map[string]any `yaml:"services"`
		} `yaml:"http"`
	}
	dec := yaml.NewDecoder(strings.NewReader(read(t, "traefik/dynamic.yml")))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		t.Fatal(err)
	}
	for name, r := range c.HTTP.Routers {
		for _, m := range r.Middlewares {
			fa := c.HTTP.Middlewares[m].ForwardAuth
			if fa == nil {
				t.Fatalf("router %s: middleware %s is not a forwardAuth", name, m)
			}
			if fa.TrustForwardHeader {
				t.Error("trustForwardHeader: true would pass a client's X-Forwarded-Method and -Uri to Warden")
			}
			if len(fa.AuthRequestHeaders) == 0 {
				t.Error("authRequestHeaders is empty: Traefik would pass every client header to Warden")
			}
			for _, h := range fa.AuthRequestHeaders {
				if slices.ContainsFunc(neverToWarden, func(n string) bool { return strings.EqualFold(n, h) }) || strings.HasPrefix(strings.ToLower(h), "x-warden-") {
					t.Errorf("authRequestHeaders passes %s to Warden", h)
				}
			}
			// authResponseHeadersRegex strips the client's matching headers
			// and copies Warden's: it must match every identity header.
			re, err := regexp.Compile(fa.AuthResponseHeadersRegex)
			if err != nil || fa.AuthResponseHeadersRegex == "" {
				t.Fatalf("authResponseHeadersRegex %q: %v", fa.AuthResponseHeadersRegex, err)
			}
			for _, h := range identityHeaders {
				if !re.MatchString(h) {
					t.Errorf("authResponseHeadersRegex does not match %s: a client's would reach the application", h)
				}
			}
			if !strings.HasSuffix(fa.Address, "/auth") {
				t.Errorf("address %s", fa.Address)
			}
		}
	}
}

func TestCaddyExample(t *testing.T) {
	src := read(t, "caddy/Caddyfile")
	var lines []string
	for _, l := range strings.Split(src, "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			lines = append(lines, l)
		}
	}
	idx := func(prefix string) int {
		return slices.IndexFunc(lines, func(l string) bool { return strings.HasPrefix(l, prefix) })
	}
	route, strip, fa, rp := idx("route {"), idx("request_header -X-Warden-*"), idx("forward_auth "), idx("reverse_proxy ")
	if route < 0 || strip < route || fa < strip || rp < fa {
		t.Fatalf("want route { request_header -X-Warden-*; forward_auth; reverse_proxy } in that order: %d %d %d %d", route, strip, fa, rp)
	}
	for _, h := range neverToWarden {
		if idx("header_up -"+h) < 0 {
			t.Errorf("forward_auth does not remove %s from what Warden receives", h)
		}
	}
	copyLine := lines[idx("copy_headers ")]
	for _, h := range identityHeaders {
		if !slices.Contains(strings.Fields(copyLine), h) {
			t.Errorf("copy_headers lacks %s", h)
		}
	}
}

// TestNginxExampleHeaders: every identity header is copied upstream from
// Warden's answer (replacing the client's), and nothing the client sends
// names the request Warden judges.
func TestNginxExampleHeaders(t *testing.T) {
	src := read(t, "nginx/warden.conf")
	for _, h := range identityHeaders {
		v := "$upstream_http_" + strings.ReplaceAll(strings.ToLower(h), "-", "_")
		set := regexp.MustCompile(`auth_request_set\s+(\$\w+)\s+` + regexp.QuoteMeta(v) + `;`).FindStringSubmatch(src)
		if set == nil {
			t.Errorf("no auth_request_set from %s", v)
			continue
		}
		if !regexp.MustCompile(`proxy_set_header\s+` + regexp.QuoteMeta(h) + `\s+` + regexp.QuoteMeta(set[1]) + `;`).MatchString(src) {
			t.Errorf("%s is not set upstream from %s", h, set[1])
		}
	}
	for _, h := range append([]string{"X-Forwarded-Method", "X-Forwarded-Uri"}, neverToWarden[2:]...) {
		if !regexp.MustCompile(`proxy_set_header\s+` + regexp.QuoteMeta(h) + `\s+"";`).MatchString(src) {
			t.Errorf("a client's %s would reach Warden", h)
		}
	}
	for _, h := range []string{"X-Original-Method", "X-Original-URI", "X-Forwarded-Host", "X-Forwarded-Proto", "X-Forwarded-For"} {
		if !regexp.MustCompile(`proxy_set_header\s+` + regexp.QuoteMeta(h) + `\s+\$\w+;`).MatchString(src) {
			t.Errorf("%s is not set by nginx", h)
		}
	}
}
