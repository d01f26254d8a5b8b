package envoycheck

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/wardenauthz/warden/internal/fielderr"
)

// shipped lists every Envoy YAML in the repository (files with an Envoy
// static_resources or filter_chains section).
func shipped(t *testing.T) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir("../..", func(p string, d fs.DirEntry, err error) error {
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
	b, err := os.ReadFile("../front-proxy/envoy.yaml")
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

// lineOf is the line of the first occurrence of text in file.
func lineOf(t *testing.T, file, text string) int {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	i := strings.Index(string(b), text)
	if i < 0 {
		t.Fatalf("%q not in %s", text, file)
	}
	return strings.Count(string(b[:i]), "\n") + 1
}

// wantProblems checks that ps are exactly the wanted ones, in order: each
// want is the line of a text in file and a part of the problem.
func wantProblems(t *testing.T, file string, ps []Problem, want [][2]string) {
	t.Helper()
	for i, w := range want {
		if i >= len(ps) {
			t.Errorf("missing problem %d: %s", i, w[1])
			continue
		}
		line := lineOf(t, file, w[0])
		if ps[i].Line != line || !strings.Contains(ps[i].Error(), w[1]) {
			t.Errorf("problem %d: got %v\nwant line %d and %q", i, ps[i], line, w[1])
		}
	}
	for _, p := range ps[min(len(want), len(ps)):] {
		t.Errorf("unexpected: %v", p)
	}
}

// TestAllProblemsAtOnce: independent mistakes are all reported in one run,
// in file order, each with its line and field path; a decode error does not
// hide the ones after it.
func TestAllProblemsAtOnce(t *testing.T) {
	const f = "testdata/broken.yaml"
	ps := File(f)
	wantProblems(t, f, ps, [][2]string{
		{"typed_config:", "typed_config: invalid HttpConnectionManager.StatPrefix: value length must be at least 1"}, // the consequence of the next
		{"stat_prefx", `typed_config.stat_prefx: unknown field "stat_prefx"`},
		{"StdoutAccessLogg", `access_log[0].typed_config.@type: unable to resolve "type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLogg"`},
		{"transport_api_version: V4", `transport_api_version: invalid value for enum field transportApiVersion: "V4"`},
		{"cluster_name: authz", `grpc_service.envoy_grpc.cluster_name: ext_authz grpc_service refers to cluster "authz", which is not defined`},
		{"failure_mode_alow", `unknown field "failure_mode_alow"`},
		{"connect_timeout: soon", `static_resources.clusters[0].connect_timeout: invalid google.protobuf.Duration value "soon"`},
	})
	for _, p := range ps {
		if p.Warning {
			t.Errorf("a decode problem marked a warning: %v", p)
		}
		// protobuf-go's prefix ends in a space or a no-break space, by build.
		if strings.Contains(p.Message, "proto:") {
			t.Errorf("protobuf-go's prefix left in: %q", p.Message)
		}
	}
}

// TestDecodeLoopIsBounded: a file with more mistakes than the bound ends
// with a note instead of looping.
func TestDecodeLoopIsBounded(t *testing.T) {
	var sb strings.Builder
	sb.WriteString("static_resources:\n  clusters:\n    - name: a\n")
	for i := range maxDecodeProblems + 20 {
		fmt.Fprintf(&sb, "      bogus_%d: 1\n", i)
	}
	ps := Check("many.yaml", []byte(sb.String()))
	if len(ps) != maxDecodeProblems+1 || !strings.Contains(ps[len(ps)-1].Message, "stopped after") {
		t.Errorf("%d problems, last %v", len(ps), ps[len(ps)-1])
	}
}

// TestSecurityLint: settings Envoy loads but that weaken Warden are each a
// warning at their line, with a fix.
func TestSecurityLint(t *testing.T) {
	const f = "testdata/insecure.yaml"
	ps := File(f)
	wantProblems(t, f, ps, [][2]string{
		{"typed_config:", "typed_config.merge_slashes: warning: merge_slashes is not true"}, // absent: the line of the config it belongs in
		{"normalize_path: false", "typed_config.normalize_path: warning: normalize_path is not true"},
		{"KEEP_UNCHANGED", "path_with_escaped_slashes_action: warning: path_with_escaped_slashes_action is KEEP_UNCHANGED"},
		{"headers_with_underscores_action: ALLOW", "headers_with_underscores_action: warning: headers with underscores are allowed (headers_with_underscores_action ALLOW)"},
		{"timeout: 5s", "grpc_service.timeout: warning: ext_authz timeout 5s is over 1s"},
		{"failure_mode_allow: true", "failure_mode_allow: warning: failure_mode_allow: true: when Warden is unreachable"},
		{"with_request_body", "allow_partial_message: warning: allow_partial_message: true"},
		{"with_request_body", "max_request_bytes: warning: max_request_bytes: 8388608"},
	})
	for _, p := range ps {
		if !p.Warning || p.Hint == "" || !strings.Contains(p.Error(), "(fix: ") {
			t.Errorf("want a warning with a fix: %v", p)
		}
	}
	if len(Errors(ps)) != 0 {
		t.Errorf("errors: %v", Errors(ps))
	}
	// Warnings do not stop the bootstrap from loading (envoysim, tests).
	if _, err := LoadBootstrap(f); err != nil {
		t.Errorf("LoadBootstrap: %v", err)
	}
	// Headers with underscores are also allowed when the option is absent.
	b, _ := os.ReadFile("../front-proxy/envoy.yaml")
	s := strings.Replace(string(b), "headers_with_underscores_action: REJECT_REQUEST", "headers_with_underscores_action: DROP_HEADER", 1)
	if ps := Check("envoy.yaml", []byte(s)); len(ps) != 0 {
		t.Errorf("DROP_HEADER: %v", ps)
	}
	s = strings.Replace(string(b), "common_http_protocol_options:", "common_http_protocol_options: {}\n                x_unused:", 1)
	s = strings.Replace(s, "                x_unused:\n                  headers_with_underscores_action: REJECT_REQUEST", "", 1)
	if ps := Check("envoy.yaml", []byte(s)); len(ps) != 1 || !strings.Contains(ps[0].Message, "headers_with_underscores_action ALLOW") {
		t.Errorf("no headers_with_underscores_action: %v", ps)
	}
	// A listener without ext_authz is not linted (nothing asks Warden).
	s = strings.Replace(string(b), "normalize_path: true", "normalize_path: false", 1)
	s = strings.Replace(s, "\"@type\": type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz\n", "\"@type\": type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors\n", 1)
	if ps := Check("envoy.yaml", []byte(s)); len(ps) == 0 || strings.Contains(fmt.Sprint(ps), "normalize_path") {
		t.Errorf("without ext_authz: %v", ps)
	}
}

// TestNotEnvoy: YAML that is not an Envoy bootstrap says so, once, instead
// of reporting its first key as an unknown field.
func TestNotEnvoy(t *testing.T) {
	for _, tc := range []struct{ file, want string }{
		{"testdata/k8s-deployment.yaml", "testdata/k8s-deployment.yaml:3: not an Envoy bootstrap or listener: a Kubernetes manifest (apiVersion: apps/v1, kind: Deployment)"},
		{"../istio/meshconfig.yaml", "not an Envoy bootstrap or listener: a Kubernetes manifest (apiVersion: install.istio.io/v1alpha1, kind: IstioOperator)"},
		{"../../examples/quickstart/warden.yaml", "../../examples/quickstart/warden.yaml:1: not an Envoy bootstrap or listener: a Warden config (fix: check it with warden config validate FILE)"},
		{"../../examples/compose/docker-compose.yml", "not an Envoy bootstrap or listener: most of its top-level keys (services"},
	} {
		ps := File(tc.file)
		if len(ps) != 1 || !strings.Contains(ps[0].Error(), tc.want) || ps[0].Hint == "" || ps[0].Warning {
			t.Errorf("%s: %v, want %q", tc.file, ps, tc.want)
		}
	}
}

// TestProblemsAreFieldErrors: a problem carries the file, the line and
// column of the YAML key it is about and its field path, and
// LoadBootstrap's error is the fielderr.List of them for errors.As.
func TestProblemsAreFieldErrors(t *testing.T) {
	const f = "testdata/broken.yaml"
	want := map[string][2]int{ // path -> line, column of its key
		"static_resources.listeners[0].filter_chains[0].filters[0].typed_config.stat_prefx": {17, 17},
		"static_resources.clusters[0].connect_timeout":                                      {78, 7},
	}
	found := 0
	for _, p := range File(f) {
		if p.File != f || p.Line == 0 || p.Col == 0 {
			t.Errorf("%v: no file, line or column: %+v", p, p.Field)
		}
		if lc, ok := want[p.Path]; ok {
			found++
			if p.Line != lc[0] || p.Col != lc[1] {
				t.Errorf("%s at %d:%d, want %d:%d", p.Path, p.Line, p.Col, lc[0], lc[1])
			}
		}
	}
	if found != len(want) {
		t.Errorf("found %d of the %d problems looked for", found, len(want))
	}
	_, err := LoadBootstrap(f)
	var list fielderr.List
	if !errors.As(err, &list) || len(list) != len(Errors(File(f))) {
		t.Fatalf("LoadBootstrap: no fielderr.List of every error in %T: %v", err, err)
	}
	for _, e := range list {
		if lc, ok := want[e.Path]; ok && (e.File != f || e.Line != lc[0] || e.Col != lc[1]) {
			t.Errorf("LoadBootstrap: %+v", *e)
		}
	}
}
