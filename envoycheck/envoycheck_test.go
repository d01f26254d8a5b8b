package envoycheck

import (
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// shipped lists every Envoy YAML in the repository (files with an Envoy
// static_resources or filter_chains section).
func shipped(t *testing.T) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir("..", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "testdata" || d.Name() == "node_modules") {
			return filepath.SkipDir
		}
		if ext := filepath.Ext(p); ext != ".yaml" && ext != ".yml" {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if s := string(b); strings.Contains(s, "\nstatic_resources:") || strings.HasPrefix(s, "static_resources:") {
			out = append(out, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestShippedFilesPass(t *testing.T) {
	files := shipped(t)
	if len(files) < 1 {
		t.Fatalf("found only %v", files)
	}
	for _, f := range files {
		for _, p := range File(f) {
			t.Errorf("%v", p)
		}
	}
}

// TestBrokenCases: each breakage of the front proxy is found, with the file,
// line and field named.
func TestBrokenCases(t *testing.T) {
	b, err := os.ReadFile("../envoy/front-proxy/envoy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	good := string(b)
	for _, tc := range []struct {
		name, from, to string
		want           []string
	}{
		{"misspelled field inside a typed config", "failure_mode_allow: false", "failure_mode_alow: false",
			[]string{"envoy.yaml:LINE:", `unknown field "failure_mode_alow"`, "http_filters[0].typed_config"}},
		{"bad enum", "transport_api_version: V3", "transport_api_version: V4",
			[]string{"envoy.yaml:LINE:", `invalid value for enum`, "transport_api_version"}},
		{"missing cluster", "envoy_grpc: {cluster_name: warden}", "envoy_grpc: {cluster_name: authz}",
			[]string{"envoy.yaml:LINE:", `cluster "authz", which is not defined`, "grpc_service.envoy_grpc.cluster_name"}},
		{"ext_authz cluster without HTTP/2", "explicit_http_config: {http2_protocol_options: {}}", "explicit_http_config: {http_protocol_options: {}}",
			[]string{"envoy.yaml:GRPCLINE:", `grpc_service.envoy_grpc.cluster_name: cluster "warden" is used for gRPC but does not speak HTTP/2`}},
		{"router not last", "                  - name: envoy.filters.http.ext_authz\n", "                  - name: envoy.filters.http.router\n                    typed_config:\n                      \"@type\": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router\n                  - name: envoy.filters.http.ext_authz\n",
			[]string{"http_filters[0]: the router filter must be the last"}},
		{"route to a missing cluster", "route: {cluster: echo}\n                          typed_per_filter_config:  # health", "route: {cluster: ech0}\n                          typed_per_filter_config:  # health",
			[]string{"envoy.yaml:LINE:", `routes[0].route.cluster: route refers to cluster "ech0"`}},
		{"validation inside an Any", "stat_prefix: ingress", "stat_prefix: \"\"",
			[]string{"filters[0].typed_config", "StatPrefix: value length must be at least 1"}},
		{"unknown extension type", "envoy.extensions.access_loggers.stream.v3.StdoutAccessLog", "envoy.extensions.access_loggers.stream.v3.StdoutAccessLogg",
			[]string{"envoy.yaml:", "StdoutAccessLogg"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(good, tc.from) {
				t.Fatalf("%q not in the front proxy", tc.from)
			}
			line := strings.Count(good[:strings.Index(good, tc.from)], "\n") + 1
			grpcLine := strings.Count(good[:strings.Index(good, "envoy_grpc: {cluster_name: warden}")], "\n") + 1
			for i, w := range tc.want {
				w = strings.ReplaceAll(w, "GRPCLINE", strconv.Itoa(grpcLine))
				tc.want[i] = strings.ReplaceAll(w, "LINE", strconv.Itoa(line))
			}
			ps := Check("envoy.yaml", []byte(strings.Replace(good, tc.from, tc.to, 1)))
			if len(ps) == 0 {
				t.Fatal("not found")
			}
			all := ""
			for _, p := range ps {
				all += p.Error() + "\n"
			}
			for _, w := range tc.want {
				if !strings.Contains(all, w) {
					t.Errorf("want %q in:\n%s", w, all)
				}
			}
		})
	}
}

func TestPathAt(t *testing.T) {
	js := `{"a":{"b":[1,{"c":true,"d":"x"}]},"e":2}`
	for off, want := range map[int]string{
		strings.Index(js, `"c"`): "a.b[1].c",
		strings.Index(js, `"d"`): "a.b[1].d",
		strings.Index(js, `"e"`): "e",
		strings.Index(js, `2}`):  "e",
	} {
		if got := pathAt([]byte(js), off); got != want {
			t.Errorf("offset %d: got %q, want %q", off, got, want)
		}
	}
}
