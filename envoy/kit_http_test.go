package envoy_test

import (
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/wardenauthz/warden/authz/config"
	"github.com/wardenauthz/warden/envoy/envoycheck"
)

// TestIstioHTTPProviderAgrees: the kit's envoyExtAuthzHttp provider reaches
// Warden's HTTP listener (Service port → container port →
// server.http_authz_addr), with Warden's path_prefix, a short timeout, no
// fail-open, and the headers Warden reads and answers with.
func TestIstioHTTPProviderAgrees(t *testing.T) {
	dir := "istio"
	cfg, err := config.Load(filepath.Join(dir, "config/warden.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var dep deployment
	var svc service
	for _, o := range docs(t, filepath.Join(dir, "warden.yaml")) {
		switch o.Kind + "/" + o.Metadata["name"].(string) {
		case "Deployment/warden":
			dep = decode[deployment](t, &o.Spec)
		case "Service/warden":
			svc = decode[service](t, &o.Spec)
		}
	}
	containerPorts := map[string]int{}
	for _, p := range dep.Template.Spec.Containers[0].Ports {
		containerPorts[p.Name] = p.ContainerPort
	}
	_, ps, err := net.SplitHostPort(cfg.Server.HTTPAuthzAddr)
	if err != nil {
		t.Fatalf("server.http_authz_addr %q: %v", cfg.Server.HTTPAuthzAddr, err)
	}
	want, _ := strconv.Atoi(ps)
	servicePort := 0
	for _, p := range svc.Ports {
		if containerPorts[p.TargetPort] == want && want != 0 {
			servicePort = p.Port
		}
	}
	if servicePort == 0 {
		t.Fatalf("no Service port reaches server.http_authz_addr %s (container ports %v)", cfg.Server.HTTPAuthzAddr, containerPorts)
	}
	if len(cfg.Server.HTTPAuthz.Trusted) != 0 {
		t.Error("the kit must trust no proxy: any workload can call Warden's HTTP port itself")
	}

	mc := docs(t, filepath.Join(dir, "meshconfig.yaml"))[0]
	type httpProvider struct {
		Service                      string   `yaml:"service"`
		Port                         int      `yaml:"port"`
		PathPrefix                   string   `yaml:"pathPrefix"`
		Timeout                      string   `yaml:"timeout"`
		FailOpen                     bool     `yaml:"failOpen"`
		StatusOnError                string   `yaml:"statusOnError"`
		IncludeRequestHeadersInCheck []string `yaml:"includeRequestHeadersInCheck"`
		HeadersToUpstreamOnAllow     []string `yaml:"headersToUpstreamOnAllow"`
		HeadersToDownstreamOnDeny    []string `yaml:"headersToDownstreamOnDeny"`
	}
	spec := decode[struct {
		MeshConfig struct {
			ExtensionProviders []struct {
				Name string        `yaml:"name"`
				HTTP *httpProvider `yaml:"envoyExtAuthzHttp"`
			} `yaml:"extensionProviders"`
		} `yaml:"meshConfig"`
	}](t, &mc.Spec)
	var prov *httpProvider
	for _, p := range spec.MeshConfig.ExtensionProviders {
		if p.HTTP != nil {
			prov = p.HTTP
		}
	}
	if prov == nil {
		t.Fatal("no envoyExtAuthzHttp provider")
	}
	if prov.Service != "warden.warden-system.svc.cluster.local" || prov.Port != servicePort || prov.PathPrefix != cfg.Server.HTTPAuthz.PathPrefix {
		t.Errorf("provider %s:%d%s, want the Service's port %d and path_prefix %q", prov.Service, prov.Port, prov.PathPrefix, servicePort, cfg.Server.HTTPAuthz.PathPrefix)
	}
	if d, err := time.ParseDuration(prov.Timeout); err != nil || d > time.Second || prov.FailOpen || prov.StatusOnError != "503" {
		t.Errorf("provider timeout %q (want ≤ 1s), failOpen %v, statusOnError %q", prov.Timeout, prov.FailOpen, prov.StatusOnError)
	}
	for _, h := range []string{"authorization", "x-warden-*"} {
		if !slices.Contains(prov.IncludeRequestHeadersInCheck, h) {
			t.Errorf("includeRequestHeadersInCheck lacks %s", h)
		}
	}
	if !slices.Contains(prov.HeadersToUpstreamOnAllow, "x-warden-*") {
		t.Error("headersToUpstreamOnAllow must carry Warden's identity headers (x-warden-*)")
	}
	for _, h := range []string{"content-type", "www-authenticate", "retry-after", "x-warden-decision-id"} {
		if !slices.Contains(prov.HeadersToDownstreamOnDeny, h) {
			t.Errorf("headersToDownstreamOnDeny lacks %s", h)
		}
	}
}

// TestEnvoyHTTPFrontProxy: the HTTP-mode front proxy passes `warden envoy
// validate` and agrees with Warden's HTTP listener: no fail-open, 503 on
// error, Warden's identity headers upstream (replacing any sent), the
// spoofed ones visible to Warden (so it lists them for removal), and the
// deny headers to the client.
func TestEnvoyHTTPFrontProxy(t *testing.T) {
	file := "front-proxy-http/envoy.yaml"
	if probs := envoycheck.File(file); len(probs) > 0 {
		t.Fatalf("warden envoy validate: %v", probs)
	}
	az := httpExtAuthz(t, file)
	hs := az.GetHttpService()
	if az.GetFailureModeAllow() || az.GetStatusOnError().GetCode() != 503 || hs == nil {
		t.Fatalf("failure_mode_allow %v, status_on_error %v, http_service %v", az.GetFailureModeAllow(), az.GetStatusOnError(), hs)
	}
	if hs.GetPathPrefix() == "" {
		t.Error("no path_prefix: Warden's path_prefix must match it")
	}
	prefix := func(ps []*matcherPattern, p string) bool {
		for _, m := range ps {
			if m.GetPrefix() == p {
				return true
			}
		}
		return false
	}
	exact := func(ps []*matcherPattern, e string) bool {
		for _, m := range ps {
			if m.GetExact() == e {
				return true
			}
		}
		return false
	}
	resp := hs.GetAuthorizationResponse()
	if !prefix(az.GetAllowedHeaders().GetPatterns(), "x-warden-") {
		t.Error("allowed_headers must let x-warden-* through, so that Warden names spoofed ones in x-envoy-auth-headers-to-remove")
	}
	if !prefix(resp.GetAllowedUpstreamHeaders().GetPatterns(), "x-warden-") {
		t.Error("allowed_upstream_headers must carry x-warden-*")
	}
	for _, h := range []string{"content-type", "retry-after", "x-warden-decision-id"} {
		if !exact(resp.GetAllowedClientHeaders().GetPatterns(), h) {
			t.Errorf("allowed_client_headers lacks %s", h)
		}
	}
}
