// Package envoy_test checks the Istio kit's manifests against each other and
// against Warden's config (no cluster can run here).
package envoy_test

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/wardenauthz/warden/authz/config"
	"github.com/wardenauthz/warden/policy"
)

type obj struct {
	APIVersion string         `yaml:"apiVersion"`
	Kind       string         `yaml:"kind"`
	Metadata   map[string]any `yaml:"metadata"`
	Spec       yaml.Node      `yaml:"spec"`
}

func docs(t *testing.T, file string) []obj {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var out []obj
	dec := yaml.NewDecoder(bytes.NewReader(b))
	for {
		var o obj
		if err := dec.Decode(&o); errors.Is(err, io.EOF) {
			return out
		} else if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		out = append(out, o)
	}
}

func decode[T any](t *testing.T, n *yaml.Node) T {
	t.Helper()
	var v T
	if err := n.Decode(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

type deployment struct {
	Replicas int `yaml:"replicas"`
	Selector struct {
		MatchLabels map[string]string `yaml:"matchLabels"`
	} `yaml:"selector"`
	Template struct {
		Metadata struct {
			Labels map[string]string `yaml:"labels"`
		} `yaml:"metadata"`
		Spec struct {
			SecurityContext struct {
				RunAsNonRoot bool `yaml:"runAsNonRoot"`
			} `yaml:"securityContext"`
			Containers []struct {
				Args  []string `yaml:"args"`
				Ports []struct {
					Name          string `yaml:"name"`
					ContainerPort int    `yaml:"containerPort"`
				} `yaml:"ports"`
				ReadinessProbe struct {
					HTTPGet struct {
						Path string `yaml:"path"`
						Port string `yaml:"port"`
					} `yaml:"httpGet"`
				} `yaml:"readinessProbe"`
				VolumeMounts []struct {
					Name      string `yaml:"name"`
					MountPath string `yaml:"mountPath"`
				} `yaml:"volumeMounts"`
				Resources struct {
					Limits struct {
						Memory string `yaml:"memory"`
					} `yaml:"limits"`
				} `yaml:"resources"`
			} `yaml:"containers"`
			Volumes []struct {
				Name      string `yaml:"name"`
				ConfigMap struct {
					Name string `yaml:"name"`
				} `yaml:"configMap"`
			} `yaml:"volumes"`
		} `yaml:"spec"`
	} `yaml:"template"`
}

type service struct {
	Selector map[string]string `yaml:"selector"`
	Ports    []struct {
		Name        string `yaml:"name"`
		Port        int    `yaml:"port"`
		TargetPort  string `yaml:"targetPort"`
		AppProtocol string `yaml:"appProtocol"`
	} `yaml:"ports"`
}

func TestIstioKitAgrees(t *testing.T) {
	dir := "istio"
	var kust struct {
		Namespace          string   `yaml:"namespace"`
		Resources          []string `yaml:"resources"`
		ConfigMapGenerator []struct {
			Name    string   `yaml:"name"`
			Files   []string `yaml:"files"`
			Options struct {
				DisableNameSuffixHash bool `yaml:"disableNameSuffixHash"`
			} `yaml:"options"`
		} `yaml:"configMapGenerator"`
	}
	b, _ := os.ReadFile(filepath.Join(dir, "kustomization.yaml"))
	if err := yaml.Unmarshal(b, &kust); err != nil {
		t.Fatal(err)
	}
	byKind := map[string]*obj{}
	for _, r := range kust.Resources {
		for _, o := range docs(t, filepath.Join(dir, r)) {
			byKind[o.Kind+"/"+o.Metadata["name"].(string)] = &o
		}
	}
	cms := map[string]map[string]string{} // configmap -> key -> file
	inPlace := map[string]bool{}          // configmap -> updated in place (no hash suffix)
	for _, g := range kust.ConfigMapGenerator {
		inPlace[g.Name] = g.Options.DisableNameSuffixHash
		cms[g.Name] = map[string]string{}
		for _, f := range g.Files {
			key, file, ok := strings.Cut(f, "=")
			if !ok {
				key, file = filepath.Base(f), f
			}
			if _, err := os.Stat(filepath.Join(dir, file)); err != nil {
				t.Error(err)
			}
			cms[g.Name][key] = file
		}
	}

	dep := decode[deployment](t, &byKind["Deployment/warden"].Spec)
	svc := decode[service](t, &byKind["Service/warden"].Spec)
	pdb := decode[struct {
		MinAvailable int `yaml:"minAvailable"`
		Selector     struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		} `yaml:"selector"`
	}](t, &byKind["PodDisruptionBudget/warden"].Spec)
	labels := dep.Template.Metadata.Labels
	for name, sel := range map[string]map[string]string{"deployment": dep.Selector.MatchLabels, "service": svc.Selector, "pdb": pdb.Selector.MatchLabels} {
		for k, v := range sel {
			if labels[k] != v {
				t.Errorf("%s selector %s=%s does not select the pods (%v)", name, k, v, labels)
			}
		}
	}
	if pdb.MinAvailable >= dep.Replicas || !dep.Template.Spec.SecurityContext.RunAsNonRoot {
		t.Errorf("pdb minAvailable %d with %d replicas; runAsNonRoot %v", pdb.MinAvailable, dep.Replicas, dep.Template.Spec.SecurityContext.RunAsNonRoot)
	}

	// The container runs the generated config, with the policies where the
	// config says.
	c := dep.Template.Spec.Containers[0]
	mounts := map[string]string{} // mount path -> configmap
	for _, m := range c.VolumeMounts {
		for _, v := range dep.Template.Spec.Volumes {
			if v.Name == m.Name {
				mounts[m.MountPath] = v.ConfigMap.Name
			}
		}
	}
	cfgPath := c.Args[len(c.Args)-1]
	cfgFile := cms[mounts[filepath.Dir(cfgPath)]][filepath.Base(cfgPath)]
	if cfgFile == "" {
		t.Fatalf("%s is not a generated config map file", cfgPath)
	}
	cfg, err := config.Load(filepath.Join(dir, cfgFile))
	if err != nil {
		t.Fatal(err)
	}
	// What incomplete gRPC requests can hold (issue 16 F1) is at most half
	// the container's memory limit, the decision log's buffers (a quarter)
	// and the process itself in the rest.
	if mem, ok := strings.CutSuffix(c.Resources.Limits.Memory, "Mi"); !ok {
		t.Errorf("container memory limit %q: want a Mi figure", c.Resources.Limits.Memory)
	} else if mi, err := strconv.Atoi(mem); err != nil {
		t.Error(err)
	} else if w := cfg.Server.GRPC.MaxIncompleteBytes(cfg.Server.MaxRecvBytes); w > int64(mi)<<20/2 {
		t.Errorf("incomplete gRPC requests can hold %d MiB, over half the %d MiB memory limit", w>>20, mi)
	}
	policyCM := cms[mounts[cfg.Policy.Dir]]
	if policyCM == nil {
		t.Fatalf("policy.dir %s is not a mounted config map", cfg.Policy.Dir)
	}
	// Policies update in place (Warden reloads them); the config rolls the
	// pods (what it changes may need a restart).
	if !inPlace[mounts[cfg.Policy.Dir]] || inPlace[mounts[filepath.Dir(cfgPath)]] {
		t.Errorf("policies in place %v (want true), config in place %v (want false)", inPlace[mounts[cfg.Policy.Dir]], inPlace[mounts[filepath.Dir(cfgPath)]])
	}
	// Load the policies from the files the config map is generated from.
	tmp := t.TempDir()
	for key, file := range policyCM {
		b, _ := os.ReadFile(filepath.Join(dir, file))
		_ = os.WriteFile(filepath.Join(tmp, key), b, 0o644)
	}
	if _, err := policy.Load(policy.Source{FS: os.DirFS(tmp), Dir: ".", Name: cfg.Policy.Dir}, cfg.Policy.Routes); err != nil {
		t.Fatal(err)
	}

	// Ports: container, Service and config agree; readiness is /readyz.
	port := func(addr string) int {
		_, p, _ := net.SplitHostPort(addr)
		n, _ := strconv.Atoi(p)
		return n
	}
	cports := map[string]int{}
	for _, p := range c.Ports {
		cports[p.Name] = p.ContainerPort
	}
	if cports["grpc"] != port(cfg.Server.GRPCAddr) || cports["http"] != port(cfg.Server.HTTPAddr) {
		t.Errorf("container ports %v, config %s %s", cports, cfg.Server.GRPCAddr, cfg.Server.HTTPAddr)
	}
	if p := c.ReadinessProbe.HTTPGet; p.Path != "/readyz" || p.Port != "http" {
		t.Errorf("readiness probe %+v", p)
	}
	grpcPort := 0
	for _, p := range svc.Ports {
		if p.TargetPort == "grpc" {
			grpcPort = p.Port
			if p.AppProtocol != "grpc" {
				t.Error("the gRPC service port needs appProtocol: grpc (HTTP/2 from the sidecars)")
			}
		}
	}

	// Redis: the config's address is the kit's Redis Service.
	rsvc := decode[service](t, &byKind["Service/redis"].Spec)
	if want := "redis." + kust.Namespace + ".svc.cluster.local:" + strconv.Itoa(rsvc.Ports[0].Port); cfg.Store.Redis.Addrs[0] != want {
		t.Errorf("store.redis.addrs %v, want %s", cfg.Store.Redis.Addrs, want)
	}

	// Budgets. Warden: the decision log's buffer, the in-memory ring and a
	// sink's burst (256 records) within half the container's memory limit.
	// Redis: persistent, never evicting (revocations must not go
	// silently), the decision stream (max_len × max_record_bytes) within
	// maxmemory with room for rate limits and revocations.
	type pod struct {
		Strategy map[string]string `yaml:"strategy"`
		Template struct {
			Spec struct {
				Containers []struct {
					Args      []string `yaml:"args"`
					Resources struct {
						Limits map[string]string `yaml:"limits"`
					} `yaml:"resources"`
					VolumeMounts []struct {
						Name      string `yaml:"name"`
						MountPath string `yaml:"mountPath"`
					} `yaml:"volumeMounts"`
				} `yaml:"containers"`
				Volumes []struct {
					Name string `yaml:"name"`
					PVC  *struct {
						ClaimName string `yaml:"claimName"`
					} `yaml:"persistentVolumeClaim"`
				} `yaml:"volumes"`
			} `yaml:"spec"`
		} `yaml:"template"`
	}
	mib := func(q string) int {
		n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSuffix(q, "Mi"), "mb"))
		if err != nil {
			t.Fatalf("memory quantity %q: want NMi or Nmb", q)
		}
		return n << 20
	}
	wp := decode[pod](t, &byKind["Deployment/warden"].Spec)
	dl := cfg.DecisionLog
	if used, lim := dl.BufferBytes+dl.MemoryBytes+256*dl.MaxRecordBytes, mib(wp.Template.Spec.Containers[0].Resources.Limits["memory"]); used > lim/2 {
		t.Errorf("decision log memory up to %d MiB, over half of Warden's limit %d MiB", used>>20, lim>>20)
	}
	rp := decode[pod](t, &byKind["Deployment/redis"].Spec)
	rc := rp.Template.Spec.Containers[0]
	args := strings.Join(rc.Args, " ")
	maxmem := 0
	if i := slices.Index(rc.Args, "--maxmemory"); i >= 0 && i+1 < len(rc.Args) {
		maxmem = mib(rc.Args[i+1])
	}
	if !strings.Contains(args, "--maxmemory-policy noeviction") || !strings.Contains(args, "--appendonly yes") || maxmem == 0 {
		t.Errorf("redis args %q: want --appendonly yes, --maxmemory and --maxmemory-policy noeviction", args)
	}
	if lim := mib(rc.Resources.Limits["memory"]); maxmem > lim*3/4 {
		t.Errorf("redis maxmemory %d MiB leaves too little of its %d MiB limit (append-only rewrites fork)", maxmem>>20, lim>>20)
	}
	for _, sk := range dl.Sinks {
		if sk.Kind == "redis_stream" && sk.MaxLen*int64(dl.MaxRecordBytes) > int64(maxmem)*7/8 {
			t.Errorf("stream %s: max_len %d × max_record_bytes %d over 7/8 of Redis maxmemory %d MiB", sk.Stream, sk.MaxLen, dl.MaxRecordBytes, maxmem>>20)
		}
	}
	persisted := false
	for _, m := range rc.VolumeMounts {
		for _, v := range rp.Template.Spec.Volumes {
			if v.Name == m.Name && v.PVC != nil && m.MountPath == "/data" && byKind["PersistentVolumeClaim/"+v.PVC.ClaimName] != nil {
				persisted = true
			}
		}
	}
	if !persisted || rp.Strategy["type"] != "Recreate" {
		t.Errorf("redis: /data on a PersistentVolumeClaim of the kit (%v) with strategy Recreate (%v)", persisted, rp.Strategy)
	}

	// istiod's provider points at the Service, with a short timeout and no
	// fail-open; the AuthorizationPolicy uses that provider.
	mc := docs(t, filepath.Join(dir, "meshconfig.yaml"))[0]
	spec := decode[struct {
		MeshConfig struct {
			ExtensionProviders []struct {
				Name string `yaml:"name"`
				Grpc struct {
					Service  string `yaml:"service"`
					Port     int    `yaml:"port"`
					Timeout  string `yaml:"timeout"`
					FailOpen bool   `yaml:"failOpen"`
				} `yaml:"envoyExtAuthzGrpc"`
			} `yaml:"extensionProviders"`
		} `yaml:"meshConfig"`
	}](t, &mc.Spec)
	prov := spec.MeshConfig.ExtensionProviders[0]
	if want := "warden." + kust.Namespace + ".svc.cluster.local"; prov.Grpc.Service != want || prov.Grpc.Port != grpcPort {
		t.Errorf("provider %s:%d, want %s:%d", prov.Grpc.Service, prov.Grpc.Port, want, grpcPort)
	}
	if d, err := time.ParseDuration(prov.Grpc.Timeout); err != nil || d > time.Second || prov.Grpc.FailOpen {
		t.Errorf("provider timeout %q (want ≤ 1s), failOpen %v", prov.Grpc.Timeout, prov.Grpc.FailOpen)
	}
	ap := docs(t, filepath.Join(dir, "authorizationpolicy.yaml"))[0]
	aps := decode[struct {
		Action   string `yaml:"action"`
		Provider struct {
			Name string `yaml:"name"`
		} `yaml:"provider"`
	}](t, &ap.Spec)
	if aps.Action != "CUSTOM" || aps.Provider.Name != prov.Name {
		t.Errorf("AuthorizationPolicy %s/%s, want CUSTOM/%s", aps.Action, aps.Provider.Name, prov.Name)
	}
}
