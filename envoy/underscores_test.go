package envoy_test

import (
	"encoding/json"
	"path/filepath"
	"slices"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/wardenauthz/warden/envoy/envoycheck"
)

// TestShippedConfigsRejectUnderscoreHeaders: every shipped connection
// manager refuses header names with "_" (x_warden_groups), the front proxy
// and, through the Istio kit's EnvoyFilter, sidecars and gateways.
func TestShippedConfigsRejectUnderscoreHeaders(t *testing.T) {
	bs, err := envoycheck.LoadBootstrap("front-proxy/envoy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, l := range bs.GetStaticResources().GetListeners() {
		for _, fc := range l.GetFilterChains() {
			for _, f := range fc.GetFilters() {
				var hcm hcmv3.HttpConnectionManager
				if f.GetTypedConfig().UnmarshalTo(&hcm) != nil {
					continue
				}
				n++
				if a := hcm.GetCommonHttpProtocolOptions().GetHeadersWithUnderscoresAction(); a != corev3.HttpProtocolOptions_REJECT_REQUEST {
					t.Errorf("front proxy listener %s: headers_with_underscores_action %s", l.GetName(), a)
				}
			}
		}
	}
	if n == 0 {
		t.Error("front proxy: no HTTP connection manager")
	}

	ef := docs(t, filepath.Join("istio", "envoyfilter.yaml"))
	if len(ef) != 1 || ef[0].Kind != "EnvoyFilter" || ef[0].Metadata["namespace"] != "istio-system" {
		t.Fatalf("istio/envoyfilter.yaml: want one EnvoyFilter in the root namespace istio-system, got %+v", ef)
	}
	spec := decode[struct {
		WorkloadSelector map[string]any `yaml:"workloadSelector"`
		ConfigPatches    []struct {
			ApplyTo string `yaml:"applyTo"`
			Match   struct {
				Context  string `yaml:"context"`
				Listener struct {
					FilterChain struct {
						Filter struct {
							Name string `yaml:"name"`
						} `yaml:"filter"`
					} `yaml:"filterChain"`
				} `yaml:"listener"`
			} `yaml:"match"`
			Patch struct {
				Operation string         `yaml:"operation"`
				Value     map[string]any `yaml:"value"`
			} `yaml:"patch"`
		} `yaml:"configPatches"`
	}](t, &ef[0].Spec)
	if spec.WorkloadSelector != nil {
		t.Error("the EnvoyFilter must apply to every workload (no workloadSelector)")
	}
	var contexts []string
	for i, p := range spec.ConfigPatches {
		if p.ApplyTo != "NETWORK_FILTER" || p.Patch.Operation != "MERGE" || p.Match.Listener.FilterChain.Filter.Name != "envoy.filters.network.http_connection_manager" {
			t.Errorf("patch %d: %s %s on %q", i, p.ApplyTo, p.Patch.Operation, p.Match.Listener.FilterChain.Filter.Name)
		}
		js, err := json.Marshal(p.Patch.Value)
		if err != nil {
			t.Fatal(err)
		}
		var f listenerv3.Filter
		if err := protojson.Unmarshal(js, &f); err != nil {
			t.Fatalf("patch %d: %v", i, err)
		}
		var hcm hcmv3.HttpConnectionManager
		if err := f.GetTypedConfig().UnmarshalTo(&hcm); err != nil {
			t.Fatalf("patch %d: %v", i, err)
		}
		if a := hcm.GetCommonHttpProtocolOptions().GetHeadersWithUnderscoresAction(); a != corev3.HttpProtocolOptions_REJECT_REQUEST {
			t.Errorf("patch %d: headers_with_underscores_action %s", i, a)
		}
		contexts = append(contexts, p.Match.Context)
	}
	slices.Sort(contexts)
	if !slices.Equal(contexts, []string{"GATEWAY", "SIDECAR_INBOUND"}) {
		t.Errorf("patched contexts %v, want GATEWAY and SIDECAR_INBOUND", contexts)
	}
}
