// Package compose_test checks that the docker-compose stack, the Envoy file
// it runs, Warden's config and the walkthrough agree (no Docker engine can
// run here, so every name, port and URL is checked against the others).
package compose_test

import (
	"encoding/json"
	"net"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"go.yaml.in/yaml/v3"

	"github.com/wardenauthz/warden/authz/admin"
	"github.com/wardenauthz/warden/authz/config"
	"github.com/wardenauthz/warden/envoy/envoycheck"
	"github.com/wardenauthz/warden/policy"
)

type composeFile struct {
	Services map[string]struct {
		Image       string            `yaml:"image"`
		Build       map[string]string `yaml:"build"`
		Command     []string          `yaml:"command"`
		Volumes     []string          `yaml:"volumes"`
		Ports       []string          `yaml:"ports"`
		Environment map[string]string `yaml:"environment"`
	} `yaml:"services"`
	Volumes map[string]any `yaml:"volumes"` // named volumes
}

func read(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestStackAgrees(t *testing.T) {
	var dc composeFile
	if err := yaml.Unmarshal(read(t, "docker-compose.yml"), &dc); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"envoy", "warden", "redis", "oidc", "echo"} {
		if _, ok := dc.Services[s]; !ok {
			t.Fatalf("service %s missing", s)
		}
	}
	// Every mounted file exists; remember where each lands.
	mounts := map[string]string{} // container path -> host path
	for name, s := range dc.Services {
		for _, v := range s.Volumes {
			parts := strings.Split(v, ":")
			if _, named := dc.Volumes[parts[0]]; named {
				mounts[parts[1]] = parts[0]
				continue
			}
			if _, err := os.Stat(parts[0]); err != nil {
				t.Errorf("%s mounts %s: %v", name, parts[0], err)
			}
			mounts[parts[1]] = parts[0]
		}
	}
	// Redis keeps revocations: persisted on a named volume, bounded, and
	// never evicting (envoy/istio/redis.yaml explains why).
	if _, ok := dc.Volumes[mounts["/data"]]; !ok {
		t.Error("redis has no named volume on /data: revocations are lost on restart")
	}
	if c := strings.Join(dc.Services["redis"].Command, " "); !strings.Contains(c, "--maxmemory-policy noeviction") || !strings.Contains(c, "--maxmemory ") || !strings.Contains(c, "--appendonly yes") {
		t.Errorf("redis command %q: want --appendonly yes, --maxmemory and --maxmemory-policy noeviction", c)
	}
	if b := dc.Services["warden"].Build; b["context"] != "../.." || b["dockerfile"] != "Dockerfile" {
		t.Errorf("warden build: %v", b)
	} else if _, err := os.Stat("../../Dockerfile"); err != nil {
		t.Error(err)
	}

	// Envoy runs the shipped front proxy, which is valid.
	envoyFile := mounts["/etc/envoy/envoy.yaml"]
	if envoyFile != "../../envoy/front-proxy/envoy.yaml" || !slices.Contains(dc.Services["envoy"].Command, "/etc/envoy/envoy.yaml") {
		t.Fatalf("envoy does not run the shipped front proxy: %q %v", envoyFile, dc.Services["envoy"].Command)
	}
	bs, err := envoycheck.LoadBootstrap(envoyFile)
	if err != nil {
		t.Fatal(err)
	}
	endpoint := func(cluster string) (string, int) {
		for _, c := range bs.GetStaticResources().GetClusters() {
			if c.GetName() == cluster {
				sa := c.GetLoadAssignment().GetEndpoints()[0].GetLbEndpoints()[0].GetEndpoint().GetAddress().GetSocketAddress()
				return sa.GetAddress(), int(sa.GetPortValue())
			}
		}
		t.Fatalf("no cluster %s", cluster)
		return "", 0
	}

	// Warden's config: what the container is started with.
	if mounts["/etc/warden/warden.yaml"] != "./warden.yaml" || !slices.Contains(dc.Services["warden"].Command, "/etc/warden/warden.yaml") {
		t.Fatal("warden is not started with ./warden.yaml")
	}
	cfg, err := config.Load("warden.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := policy.Load(cfg.PolicySource(), cfg.Policy.Routes); err != nil {
		t.Fatal(err)
	}
	if mounts["/etc/warden/"+strings.TrimPrefix(cfg.Policy.Dir, "./")] != "./policies" {
		t.Errorf("policy dir %s is not the mounted ./policies", cfg.Policy.Dir)
	}
	if mounts["/etc/warden/"+strings.TrimPrefix(cfg.Admin.TokenFile, "./")] != "./admin-tokens" {
		t.Errorf("admin token file %s is not mounted", cfg.Admin.TokenFile)
	}
	if _, err := admin.ParseTokenFile("admin-tokens", read(t, "admin-tokens")); err != nil {
		t.Error(err)
	}

	// Envoy's clusters reach the services that listen there.
	host, port := endpoint("warden")
	_, gp, _ := net.SplitHostPort(cfg.Server.GRPCAddr)
	if host != "warden" || strconv.Itoa(port) != gp {
		t.Errorf("envoy cluster warden %s:%d, warden listens on %s", host, port, cfg.Server.GRPCAddr)
	}
	host, port = endpoint("echo")
	if host != "echo" || dc.Services["echo"].Environment["PORT"] != strconv.Itoa(port) {
		t.Errorf("envoy cluster echo %s:%d, echo PORT %s", host, port, dc.Services["echo"].Environment["PORT"])
	}
	if rc := cfg.Store.Redis.Addrs; len(rc) != 1 || rc[0] != "redis:6379" {
		t.Errorf("redis address %v", rc)
	}

	// The issuer Warden trusts is the provider's, with its audience.
	iss, _ := url.Parse(cfg.Identity.Issuers[0].Issuer)
	if iss.Host != "oidc:"+dc.Services["oidc"].Environment["SERVER_PORT"] {
		t.Errorf("issuer %s, oidc serves on port %s", iss, dc.Services["oidc"].Environment["SERVER_PORT"])
	}
	var oc struct {
		TokenCallbacks []struct {
			IssuerID        string `json:"issuerId"`
			RequestMappings []struct {
				Match  string         `json:"match"`
				Claims map[string]any `json:"claims"`
			} `json:"requestMappings"`
		} `json:"tokenCallbacks"`
	}
	if mounts["/etc/oidc/config.json"] != "./oidc.json" {
		t.Error("oidc.json is not mounted as the provider's config")
	}
	if err := json.Unmarshal(read(t, "oidc.json"), &oc); err != nil {
		t.Fatal(err)
	}
	cb := oc.TokenCallbacks[0]
	if "/"+cb.IssuerID != iss.Path {
		t.Errorf("issuer path %s, provider issuer id %s", iss.Path, cb.IssuerID)
	}
	for _, m := range cb.RequestMappings {
		aud, _ := m.Claims["aud"].([]any)
		if len(aud) != 1 || aud[0] != cfg.Identity.Issuers[0].Audiences[0] {
			t.Errorf("client %s gets aud %v, Warden wants %v", m.Match, aud, cfg.Identity.Issuers[0].Audiences)
		}
	}

	// The walkthrough: ports published, names and paths as in the files.
	readme := string(read(t, "README.md"))
	published := map[string]string{}
	for name, s := range dc.Services {
		for _, p := range s.Ports {
			hostPort, _, _ := strings.Cut(strings.Trim(p, `"`), ":")
			published[hostPort] = name
		}
	}
	for _, m := range regexp.MustCompile(`localhost:(\d+)(/\S*)?`).FindAllStringSubmatch(readme, -1) {
		svc, ok := published[m[1]]
		if !ok {
			t.Errorf("walkthrough uses localhost:%s, which compose does not publish", m[1])
			continue
		}
		switch path := strings.TrimRight(m[2], "`|"); {
		case svc == "oidc" && path != "" && !strings.HasPrefix(path, iss.Path+"/"):
			t.Errorf("walkthrough asks the provider at %s, not under %s", path, iss.Path)
		case svc == "envoy" && path != "" && !routed(bs, path):
			t.Errorf("walkthrough path %s has no Envoy route", path)
		case svc == "warden" && path != "" && path != "/readyz" && path != "/metrics":
			t.Errorf("walkthrough path %s on Warden's HTTP port", path)
		}
	}
	for _, want := range []string{"Host: oidc:" + dc.Services["oidc"].Environment["SERVER_PORT"], cfg.Identity.Issuers[0].Issuer,
		"--config /etc/warden/warden.yaml", `User::"` + cfg.Identity.Issuers[0].Name + `|bob"`, `'` + cfg.Identity.Issuers[0].Name + `|bob'`,
		"client_id=$1", "token alice", "token bob", dc.Services["oidc"].Image, dc.Services["envoy"].Image, dc.Services["echo"].Image} {
		if !strings.Contains(readme, want) {
			t.Errorf("walkthrough does not say %q", want)
		}
	}
}

// routed reports whether path matches a route of the front proxy.
func routed(bs *bootstrapv3.Bootstrap, path string) bool {
	path, _, _ = strings.Cut(path, "?")
	for _, l := range bs.GetStaticResources().GetListeners() {
		for _, fc := range l.GetFilterChains() {
			for _, f := range fc.GetFilters() {
				var h hcmv3.HttpConnectionManager
				if f.GetTypedConfig().UnmarshalTo(&h) != nil {
					continue
				}
				for _, vh := range h.GetRouteConfig().GetVirtualHosts() {
					for _, r := range vh.GetRoutes() {
						if m := r.GetMatch(); m.GetPath() == path || (m.GetPrefix() != "" && strings.HasPrefix(path, m.GetPrefix())) {
							return true
						}
					}
				}
			}
		}
	}
	return false
}
