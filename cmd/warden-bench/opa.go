package main

import (
	"bufio"
	"embed"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/prometheus/procfs"
	"github.com/wardenauthz/warden/identity/oidctest"
)

// OPA-Envoy (github.com/open-policy-agent/opa-envoy-plugin) is an optional
// extra target (-opa-envoy <binary>), run with the policies in opa/: the side
// by side of BENCHMARKS.md. It is started as its own process, pinned like
// the others, and measured the same way.

//go:embed opa/*.rego
var opaPolicies embed.FS

// opaTargets are the OPA-Envoy configurations: the policy file in opa/ and
// the decision path of the envoy_ext_authz_grpc plugin.
var opaTargets = map[string]struct{ policy, path string }{
	"opa-empty": {"opa/empty.rego", "envoy/authz/allow"},
	"opa-rbac":  {"opa/rbac.rego", "envoy/authz/result"},
}

func isOPA(target string) bool { _, ok := opaTargets[target]; return ok }

// writeOPAData writes opa/data.json under dir: the issuer's URL and JWKS,
// which opa/rbac.rego verifies the tokens against.
func writeOPAData(dir string, is *oidctest.Issuer) error {
	jwks, err := json.Marshal(is.JWKS())
	if err != nil {
		return err
	}
	b, err := json.Marshal(map[string]any{"bench": map[string]any{"issuer": is.URL, "jwks": string(jwks)}})
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(dir, "opa"), 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "opa", "data.json"), b, 0o644)
}

// freeAddr is a loopback address with a port free at the time of asking
// (OPA takes its addresses as flags).
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// startOPA starts `opa-envoy-plugin run --server` with the target's policy
// and data.json, and waits until its ext_authz plugin reports ready.
func startOPA(c cpus, bin, dir, target string) (*child, error) {
	t, ok := opaTargets[target]
	if !ok {
		return nil, fmt.Errorf("unknown OPA-Envoy target %q", target)
	}
	src, err := opaPolicies.ReadFile(t.policy)
	if err != nil {
		return nil, err
	}
	policy := filepath.Join(dir, "opa", target+".rego")
	if err := os.WriteFile(policy, src, 0o644); err != nil {
		return nil, err
	}
	grpcAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	httpAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	logf, err := os.Create(filepath.Join(dir, "opa", target+".log"))
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd := command(c.server, bin, "run", "--server", "--addr", httpAddr, "--skip-version-check",
		"--log-level", "error", "--shutdown-grace-period", "1",
		"--set", "plugins.envoy_ext_authz_grpc.addr="+grpcAddr,
		"--set", "plugins.envoy_ext_authz_grpc.path="+t.path,
		"--set", "decision_logs.console=false",
		policy, filepath.Join(dir, "opa", "data.json"))
	cmd.Env = os.Environ()
	cmd.Stdout, cmd.Stderr = logf, logf
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	ch := &child{cmd: cmd, stdin: stdin, opa: true, ready: ready{GRPC: grpcAddr, HTTP: httpAddr}}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		resp, err := http.Get("http://" + httpAddr + "/health?plugins")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return ch, nil
			}
		}
		if time.Now().After(deadline) || processGone(cmd.Process.Pid) {
			ch.stop()
			log, _ := os.ReadFile(logf.Name())
			return nil, fmt.Errorf("%s did not start: %v\n%s", target, err, lastLines(string(log), 10))
		}
	}
}

// processGone: pid has exited (a zombie not yet reaped counts as gone).
func processGone(pid int) bool {
	st, err := procStat(pid)
	return err != nil || st.State == "Z" || st.State == "X"
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(len(lines)-n, 0):], "\n")
}

// procCPUSeconds is the process's user+system CPU time from /proc/<pid>/stat
// (OPA's /metrics has no process_cpu_seconds_total).
func procCPUSeconds(pid int) (float64, error) {
	st, err := procStat(pid)
	if err != nil {
		return 0, err
	}
	return st.CPUTime(), nil
}

func procStat(pid int) (procfs.ProcStat, error) {
	p, err := procfs.NewProc(pid)
	if err != nil {
		return procfs.ProcStat{}, err
	}
	return p.Stat()
}

// httpAnswer is the HTTP status Envoy sends the client for a CheckResponse:
// 200 when status.code is OK, else denied_response.status.code
// (CheckResponse field 2, its field 1, that field 1), 403 when the denial
// names none. A malformed message is no answer.
func httpAnswer(b []byte) (int32, bool) {
	if !wellFormed(b) {
		return 0, false
	}
	code, ok := statusCode(b)
	if !ok {
		return 0, false
	}
	if code == 0 {
		return 200, true
	}
	denied, ok := field(b, 2, protowire.BytesType)
	if !ok {
		return 403, true
	}
	if !wellFormed(denied) {
		return 0, false
	}
	st, ok := field(denied, 1, protowire.BytesType)
	if !ok {
		return 403, true
	}
	if !wellFormed(st) {
		return 0, false
	}
	v, ok := field(st, 1, protowire.VarintType)
	if !ok {
		return 403, true // HttpStatus{}: code 0, which Envoy answers with 403
	}
	c, n := protowire.ConsumeVarint(v)
	if n < 0 {
		return 0, false
	}
	if c == 0 {
		return 403, true
	}
	return int32(c), true
}

// wellFormed: b is a sequence of protobuf fields, none truncated.
func wellFormed(b []byte) bool {
	for len(b) > 0 {
		n, t, l := protowire.ConsumeTag(b)
		if l < 0 {
			return false
		}
		b = b[l:]
		vl := protowire.ConsumeFieldValue(n, t, b)
		if vl < 0 {
			return false
		}
		b = b[vl:]
	}
	return true
}

// opaVersion is what the report says about OPA-Envoy's build, read from
// `<binary> version`.
func opaVersion(bin string) string {
	out, err := command("", bin, "version").Output()
	if err != nil {
		return "version unknown: " + err.Error()
	}
	var parts []string
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), ":")
		if v = strings.TrimSpace(v); v != "" && (k == "Version" || k == "Build Commit" || k == "Go Version") {
			parts = append(parts, k+" "+v)
		}
	}
	return strings.Join(parts, ", ")
}
