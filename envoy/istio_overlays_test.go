package envoy_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// TestIstioProviderOverlays: the IstioOperator overlay and the istiod Helm
// values register the same provider and touch nothing but those meshConfig
// settings, so layering them over an existing install keeps the rest
// (both merge maps; lists are replaced, as the README says).
func TestIstioProviderOverlays(t *testing.T) {
	op := docs(t, filepath.Join("istio", "meshconfig.yaml"))[0]
	var opSpec, values map[string]any
	if err := op.Spec.Decode(&opSpec); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join("istio", "istiod-values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &values); err != nil {
		t.Fatal(err)
	}
	if op.Kind != "IstioOperator" || !reflect.DeepEqual(opSpec, values) {
		t.Errorf("meshconfig.yaml (%s) spec and istiod-values.yaml differ:\n%v\n%v", op.Kind, opSpec, values)
	}
	mesh, _ := values["meshConfig"].(map[string]any)
	if len(values) != 1 || len(mesh) != 2 || mesh["extensionProviders"] == nil || mesh["pathNormalization"] == nil {
		t.Errorf("the overlay sets more than meshConfig.extensionProviders and pathNormalization: %v", values)
	}
	// Layered over an existing install (later files win, maps merge), it
	// keeps that install's settings and adds the provider.
	var existing map[string]any
	if err := yaml.Unmarshal([]byte(`
profile: default
components:
  ingressGateways: [{name: istio-ingressgateway, enabled: true}]
meshConfig:
  accessLogFile: /dev/stdout
  defaultConfig: {holdApplicationUntilProxyStarts: true}
`), &existing); err != nil {
		t.Fatal(err)
	}
	merged := mergeMaps(existing, opSpec)
	mm := merged["meshConfig"].(map[string]any)
	if merged["profile"] != "default" || merged["components"] == nil || mm["accessLogFile"] != "/dev/stdout" || mm["defaultConfig"] == nil {
		t.Errorf("existing settings lost: %v", merged)
	}
	if p := mm["extensionProviders"].([]any)[0].(map[string]any); p["name"] != "warden" {
		t.Errorf("provider: %v", p)
	}
}

// mergeMaps overlays b on a as istioctl's -f files and Helm values do:
// maps merge, everything else (lists too) is replaced.
func mergeMaps(a, b map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		am, ok1 := out[k].(map[string]any)
		bm, ok2 := v.(map[string]any)
		if ok1 && ok2 {
			out[k] = mergeMaps(am, bm)
		} else {
			out[k] = v
		}
	}
	return out
}

// TestIstioKustomize builds the kit with kubectl's kustomize, as 'kubectl
// apply -k' would: the Deployment mounts ConfigMap warden-policies under its
// own name (updated in place), and the config under its hash-suffixed name;
// with the options line deleted (README, "Policy updates") the policies get
// a hash suffix too.
func TestIstioKustomize(t *testing.T) {
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Skip("kubectl not on the PATH")
	}
	build := func(dir string) (cms []string, mounted []string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, kubectl, "kustomize", dir).CombinedOutput()
		if err != nil {
			t.Fatalf("kubectl kustomize %s: %v\n%s", dir, err, out)
		}
		dec := yaml.NewDecoder(bytes.NewReader(out))
		for {
			var o obj
			if err := dec.Decode(&o); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Fatal(err)
			}
			switch o.Kind {
			case "ConfigMap":
				cms = append(cms, o.Metadata["name"].(string))
			case "Deployment":
				if o.Metadata["name"] == "warden" {
					for _, v := range decode[deployment](t, &o.Spec).Template.Spec.Volumes {
						mounted = append(mounted, v.ConfigMap.Name)
					}
				}
			}
		}
		slices.Sort(cms)
		slices.Sort(mounted)
		return cms, mounted
	}
	cms, mounted := build("istio")
	if len(cms) != 2 || cms[1] != "warden-policies" || !strings.HasPrefix(cms[0], "warden-config-") || !slices.Equal(cms, mounted) {
		t.Errorf("in place: config maps %v, mounted %v; want warden-config-<hash> and warden-policies, both mounted", cms, mounted)
	}

	tmp := filepath.Join(t.TempDir(), "istio")
	if err := os.CopyFS(tmp, os.DirFS("istio")); err != nil {
		t.Fatal(err)
	}
	k, _ := os.ReadFile(filepath.Join(tmp, "kustomization.yaml"))
	const line = "    options: {disableNameSuffixHash: true}\n"
	if !strings.Contains(string(k), line) {
		t.Fatalf("kustomization.yaml lacks %q (the README's switch)", line)
	}
	if err := os.WriteFile(filepath.Join(tmp, "kustomization.yaml"), []byte(strings.Replace(string(k), line, "", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	cms, mounted = build(tmp)
	if len(cms) != 2 || !strings.HasPrefix(cms[1], "warden-policies-") || !slices.Equal(cms, mounted) {
		t.Errorf("rolled out: config maps %v, mounted %v; want warden-policies-<hash>, mounted", cms, mounted)
	}
}
