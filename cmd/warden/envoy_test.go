package main

import (
	"strings"
	"testing"
)

// TestEnvoyValidateCLI: exit 0 for the shipped front proxy (also with
// --strict); security warnings print with their fix and exit 0, or 1 with
// --strict; errors exit 1, all of them reported; other YAML is named for
// what it is; no file is a usage error (2).
func TestEnvoyValidateCLI(t *testing.T) {
	const (
		shipped  = "../../envoy/front-proxy/envoy.yaml"
		insecure = "../../envoy/envoycheck/testdata/insecure.yaml"
		broken   = "../../envoy/envoycheck/testdata/broken.yaml"
		k8s      = "../../envoy/envoycheck/testdata/k8s-deployment.yaml"
	)
	for _, tc := range []struct {
		args       []string
		code       int
		out, errs  []string
		errsNumber int // lines of problems on stderr, -1: not checked
	}{
		{[]string{shipped}, 0, []string{"ok: " + shipped + "\n"}, nil, 0},
		{[]string{"--strict", shipped}, 0, []string{"ok: " + shipped + "\n"}, nil, 0},
		{[]string{insecure}, 0, []string{"ok: " + insecure + " (8 security warnings; --strict fails on them)"},
			[]string{"insecure.yaml:66: ", "failure_mode_allow: warning: failure_mode_allow: true", "(fix: set failure_mode_allow: false"}, 8},
		{[]string{"--strict", insecure}, 1, nil, []string{"warning: normalize_path is not true", insecure + ": 0 errors, 8 warnings"}, 9},
		{[]string{broken, shipped}, 1, []string{"ok: " + shipped}, []string{`unknown field "stat_prefx"`, `unknown field "failure_mode_alow"`, `"soon"`, broken + ": 7 errors, 0 warnings"}, 8},
		{[]string{k8s}, 1, nil, []string{"not an Envoy bootstrap or listener: a Kubernetes manifest (apiVersion: apps/v1, kind: Deployment)"}, 2},
		{nil, 2, nil, []string{"usage: warden envoy validate [--strict] FILE..."}, -1},
	} {
		code, out, errs := runCLI(t, append([]string{"envoy", "validate"}, tc.args...)...)
		if code != tc.code {
			t.Errorf("%v: exit %d, want %d\n%s%s", tc.args, code, tc.code, out, errs)
		}
		for _, w := range tc.out {
			if !strings.Contains(out, w) {
				t.Errorf("%v: stdout lacks %q:\n%s", tc.args, w, out)
			}
		}
		for _, w := range tc.errs {
			if !strings.Contains(errs, w) {
				t.Errorf("%v: stderr lacks %q:\n%s", tc.args, w, errs)
			}
		}
		if n := strings.Count(errs, "\n"); tc.errsNumber >= 0 && n != tc.errsNumber {
			t.Errorf("%v: %d lines on stderr, want %d:\n%s", tc.args, n, tc.errsNumber, errs)
		}
	}
}
