package config_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/wardenauthz/warden/authz/config"
	"github.com/wardenauthz/warden/internal/fielderr"
)

func TestEmbeddedQuickstartLoads(t *testing.T) {
	c, err := config.LoadEmbedded()
	if err != nil {
		t.Fatal(err)
	}
	if !c.Embedded || !c.Identity.DevIssuer.Enabled || c.Store.Kind != "memory" || c.Server.GRPCAddr != "127.0.0.1:9191" {
		t.Errorf("unexpected quick start: %+v", c)
	}
}

// manyProblems is a config with a mistake of each kind: wrong values, a
// wrong type, an unknown key, a missing value, one of another section.
const manyProblems = `server:
  grpc_addr: nowhere
  shutdown_grace: soon
identity:
  issuers:
    - name: corp
      issuer: https://idp.example.com
      audience: [api]
  dev_issuer: {enabled: true}
policy:
  reload: sometimes
  routes:
    - {method: GET, path: orders}
store: {kind: etcd}
decision_log:
  sample_allow: 2
`

// TestAllProblemsAtOnce: unknown keys, wrong types and bad values are all
// reported in one go, each with the file and line.
func TestAllProblemsAtOnce(t *testing.T) {
	_, err := config.Parse("warden.yaml", []byte(manyProblems), t.TempDir())
	if err == nil {
		t.Fatal("want errors")
	}
	for _, want := range []string{
		"warden.yaml:3: server.shutdown_grace: cannot unmarshal !!str `soon` (want a duration such as 10s or 500ms)",
		`warden.yaml:8: identity.issuers[0].audience: unknown key; did you mean "audiences"?`,
		`warden.yaml:2: server.grpc_addr: "nowhere" is not host:port`,
		`warden.yaml:6: identity.issuers[0].audiences: must list at least one accepted audience`,
		`warden.yaml:9: identity.dev_issuer.enabled: the dev issuer is for local use only`,
		`warden.yaml:11: policy.reload: must be watch or off`,
		`warden.yaml:13: policy.routes[0].path: "orders" must start with /`,
		`warden.yaml:14: store.kind: must be memory or redis`,
		`warden.yaml:16: decision_log.sample_allow: must be between 0 and 1`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
}

// Unknown keys are named by their key path with a suggestion, never by a
// Go type; each once, in file order.
func TestUnknownKeyPaths(t *testing.T) {
	src := `identity: {anonymous: true}
policy:
  rotues:
    - {method: GET, path: /a}
routes: []
ratelimit:
  rules:
    - {name: r, limit: 1, per: 1s, wen: {}}
server:
  grcp_addr: 127.0.0.1:1
  zzz: 1
`
	_, err := config.Parse("warden.yaml", []byte(src), t.TempDir())
	if err == nil {
		t.Fatal("want errors")
	}
	got := err.Error()
	for _, want := range []string{
		`warden.yaml:3: policy.rotues: unknown key; did you mean "routes"?`,
		`warden.yaml:5: routes: unknown key; did you mean policy.routes?`,
		`warden.yaml:8: ratelimit.rules[0].wen: unknown key; did you mean "when"?`,
		`warden.yaml:10: server.grcp_addr: unknown key; did you mean "grpc_addr"?`,
		`warden.yaml:11: server.zzz: unknown key (keys of server: authzen_addr, grpc, grpc_addr, http_addr,`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in:\n%v", want, got)
		}
	}
	if strings.Contains(got, "Config") || strings.Contains(got, "not found in type") {
		t.Errorf("Go type named:\n%v", got)
	}
	if n := strings.Count(got, "rotues"); n != 1 {
		t.Errorf("rotues reported %d times:\n%v", n, got)
	}
	lines := strings.Split(got, "\n")
	if !strings.HasPrefix(lines[0], "warden.yaml:3:") || !strings.HasPrefix(lines[len(lines)-1], "warden.yaml:11:") {
		t.Errorf("not in file order:\n%v", got)
	}
}

func TestYAMLSyntaxError(t *testing.T) {
	_, err := config.Parse("w.yaml", []byte("server:\n  grpc_addr: [\n"), t.TempDir())
	if err == nil || !strings.HasPrefix(err.Error(), "w.yaml:") {
		t.Fatalf("got %v", err)
	}
}

func TestRelativePolicyDir(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "pol"), 0o755); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "warden.yaml")
	if err := os.WriteFile(file, []byte("identity: {anonymous: true}\npolicy: {dir: pol}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := config.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.PolicyDir(); got != filepath.Join(dir, "pol") {
		t.Errorf("PolicyDir: %s", got)
	}
}

func FuzzParse(f *testing.F) {
	b, _ := os.ReadFile("../../examples/quickstart/warden.yaml")
	f.Add(string(b))
	f.Add("server: {grpc_addr: 1}\nidentity: {issuers: [{name: x}]}\n")
	f.Fuzz(func(t *testing.T, src string) {
		_, _ = config.Parse("f.yaml", []byte(src), t.TempDir())
	})
}

// TestLimitsUnderRecvSize: a request over server.limits must get a clear
// denial, so the limits must fit under the gRPC receive size.
func TestLimitsUnderRecvSize(t *testing.T) {
	src := "server:\n  max_recv_bytes: 1048576\n  limits: {max_body_bytes: 1048576}\n"
	_, err := config.Parse("warden.yaml", []byte(src), t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "warden.yaml:3: server.limits: max_header_bytes + max_body_bytes") {
		t.Fatalf("got %v", err)
	}
	c, err := config.Parse("warden.yaml", []byte("identity: {anonymous: true}\n"), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if l := c.Server.Limits; l.MaxHeaders != 128 || l.MaxHeaderBytes != 96<<10 || l.MaxBodyBytes != 1<<20 {
		t.Errorf("defaults: %+v", l)
	}
}

// TestDecisionLogBounds: the record and buffer bounds default, and bad ones
// are refused with their key path and line.
func TestDecisionLogBounds(t *testing.T) {
	c, err := config.Parse("w.yaml", []byte("identity: {anonymous: true}\n"), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if dl := c.DecisionLog; dl.MaxFieldBytes != 1024 || dl.MaxRecordBytes != 16384 || dl.BufferBytes != 16<<20 || dl.MemoryRecords != 10000 || dl.MemoryBytes != 32<<20 {
		t.Errorf("defaults: %+v", dl)
	}
	for src, want := range map[string]string{
		"decision_log: {max_field_bytes: 10}":                           "w.yaml:2: decision_log.max_field_bytes: must be at least 64, got 10",
		"decision_log: {max_field_bytes: 4096, max_record_bytes: 8192}": "w.yaml:2: decision_log.max_record_bytes: must be at least 4096 and 4 × max_field_bytes (16384), got 8192",
		"decision_log: {buffer_bytes: 100}":                             "w.yaml:2: decision_log.buffer_bytes: must be at least max_record_bytes (16384), got 100",
		"decision_log: {memory_bytes: 100}":                             "w.yaml:2: decision_log.memory_bytes: must be at least max_record_bytes (16384), got 100",
		"decision_log: {memory_records: -1}":                            "w.yaml:2: decision_log.memory_records: must be positive",
	} {
		_, err := config.Parse("w.yaml", []byte("identity: {anonymous: true}\n"+src+"\n"), t.TempDir())
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want %s", src, err, want)
		}
	}
}

// TestGRPCLimits: server.grpc's defaults bound every stream and connection,
// and bad values are refused with their key path and line.
func TestGRPCLimits(t *testing.T) {
	c, err := config.Parse("warden.yaml", []byte("identity: {anonymous: true}\n"), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	g := c.Server.GRPC
	if g.MaxConcurrentStreams != 256 || g.MaxStreams != 4096 || g.MaxConnections != 1024 || g.StreamTimeout != 5*time.Second ||
		g.ConnectionTimeout != 5*time.Second || g.KeepaliveMinTime != 5*time.Second || !*g.KeepalivePermitWithoutStream ||
		g.MaxConnectionIdle != 5*time.Minute || g.MaxConnectionAge != 30*time.Minute || g.MaxConnectionAgeGrace != 10*time.Second ||
		g.MaxBufferedBytes != 256<<20 || g.ConnectionReserve != 8 {
		t.Errorf("defaults: %+v", g)
	}
	// The documented bound: streams counted at max(64 KiB, max_recv_bytes).
	if s := g.SharedStreams(c.Server.MaxRecvBytes); s != 63 {
		t.Errorf("shared streams at 4 MiB messages: %d, want 63 (256 MiB / (4 MiB + 5))", s)
	}
	// 256 MiB / 65541 = 4095 shared streams, and 8 a connection.
	if n, want := g.MaxIncompleteBytes(64<<10), int64(4095+8*1024)*(64<<10+5); n != want {
		t.Errorf("MaxIncompleteBytes(64 KiB) = %d, want %d", n, want)
	}
	if n := config.StreamBytes(1000); n != 65535 {
		t.Errorf("StreamBytes(1000) = %d, want the 65535-byte window", n)
	}
	src := `identity: {anonymous: true}
server:
  grpc:
    max_concurrent_streams: 100000
    max_streams: 10
    stream_timeout: 50ms
    keepalive_min_time: 10ms
store:
  kind: redis
  redis: {addrs: ["127.0.0.1:6379"], timeout: 2s}
  memory: {max_keys: 10}
`
	_, err = config.Parse("warden.yaml", []byte(src), t.TempDir())
	if err == nil {
		t.Fatal("want errors")
	}
	for _, want := range []string{
		"warden.yaml:4: server.grpc.max_concurrent_streams: must be between 1 and 65536",
		"warden.yaml:5: server.grpc.max_streams: (10) must be at least max_concurrent_streams",
		"warden.yaml:6: server.grpc.stream_timeout: must be at least 100ms",
		"warden.yaml:7: server.grpc.keepalive_min_time: must be at least 1s",
		"warden.yaml:10: store.redis.timeout: (2s) must be shorter than server.grpc.stream_timeout",
		"warden.yaml:11: store.memory.max_keys: must be between 1024 and 67108864",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
	_, err = config.Parse("warden.yaml", []byte("identity: {anonymous: true}\nserver:\n  grpc:\n    max_buffered_bytes: 1000\n    connection_reserve: 1000\n"), t.TempDir())
	for _, want := range []string{
		"warden.yaml:4: server.grpc.max_buffered_bytes: must be between 1048576 and 1099511627776",
		"warden.yaml:5: server.grpc.connection_reserve: must be between 1 and 256",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
}

// TestFieldErrorsAreValues: every problem of a config is a fielderr.Error
// that errors.As finds, with the file, the line and column of the key
// (or list element) it is about, and its key path; unknown keys, yaml's
// type errors and validation errors alike.
func TestFieldErrorsAreValues(t *testing.T) {
	_, err := config.Parse("warden.yaml", []byte(manyProblems), t.TempDir())
	var list fielderr.List
	if !errors.As(err, &list) {
		t.Fatalf("errors.As found no fielderr.List in %T: %v", err, err)
	}
	type at struct {
		Line, Col int
		Path      string
	}
	var got []at
	for _, e := range list {
		if e.File != "warden.yaml" || !e.LineOnly || e.Message == "" {
			t.Errorf("%+v: want file warden.yaml, LineOnly and a message", *e)
		}
		got = append(got, at{e.Line, e.Col, e.Path})
	}
	want := []at{
		{2, 3, "server.grpc_addr"},
		{3, 3, "server.shutdown_grace"},
		{6, 7, "identity.issuers[0].audiences"}, // missing: its list element
		{8, 7, "identity.issuers[0].audience"},
		{9, 16, "identity.dev_issuer.enabled"},
		{11, 3, "policy.reload"},
		{13, 21, "policy.routes[0].path"},
		{14, 9, "store.kind"},
		{16, 3, "decision_log.sample_allow"},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("positions (-want +got):\n%s", d)
	}
	if got, want := list[1].Message, "cannot unmarshal !!str `soon` (want a duration such as 10s or 500ms)"; got != want {
		t.Errorf("type error message %q, want %q", got, want)
	}
}
