package main

import (
	"encoding/json"
	"regexp"
	"runtime/debug"
	"strings"
	"testing"
)

// TestHelpEverySubcommand: 'warden CMD --help' (and 'warden help CMD')
// prints a description, examples and the flags on stdout, exit 0; every flag
// an example uses is one of the command's flags.
func TestHelpEverySubcommand(t *testing.T) {
	flagRe := regexp.MustCompile(`(?:^|\s)--?([a-z][a-z-]*)`)
	for name := range help {
		args := append(strings.Fields(name), "--help")
		code, out, errs := runCLI(t, args...)
		if code != 0 || errs != "" {
			t.Errorf("%s --help: exit %d, stderr %q", name, code, errs)
		}
		for _, want := range []string{"Usage: warden " + name, "\nExamples:\n", "\nFlags:\n"} {
			if !strings.Contains(out, want) {
				t.Errorf("%s --help lacks %q:\n%s", name, want, out)
			}
		}
		desc, _, _ := strings.Cut(out, "\nExamples:\n")
		if strings.Count(desc, "\n") < 3 {
			t.Errorf("%s --help: no description:\n%s", name, out)
		}
		_, flags, _ := strings.Cut(out, "\nFlags:\n")
		_, examples, _ := strings.Cut(out, "\nExamples:\n")
		examples, _, _ = strings.Cut(examples, "\nFlags:\n")
		for _, line := range strings.Split(examples, "\n") {
			line, _, _ = strings.Cut(line, "#")
			if !strings.Contains(line, "warden "+name) {
				continue
			}
			_, line, _ = strings.Cut(line, "warden "+name)
			line, _, _ = strings.Cut(line, "&&")
			for _, m := range flagRe.FindAllStringSubmatch(line, -1) {
				if !regexp.MustCompile(`(?m)^  -` + m[1] + `[\s]`).MatchString(flags) {
					t.Errorf("%s: example %q uses --%s, which is not a flag", name, strings.TrimSpace(line), m[1])
				}
			}
		}
		if code, out2, _ := runCLI(t, append([]string{"help"}, strings.Fields(name)...)...); code != 0 || out2 != out {
			t.Errorf("help %s: exit %d, not the same text", name, code)
		}
	}
	for _, g := range []string{"policy", "dev", "config", "envoy", "routes", "apikey"} {
		if code, out, _ := runCLI(t, g, "--help"); code != 0 || !strings.Contains(out, "Usage:\n  warden "+g+" ") {
			t.Errorf("%s --help: exit %d\n%s", g, code, out)
		}
		if code, _, errs := runCLI(t, g); code != 2 || !strings.Contains(errs, "Usage:") {
			t.Errorf("%s without a subcommand: exit %d\n%s", g, code, errs)
		}
	}
	// A usage error still goes to stderr, with exit 2.
	if code, out, errs := runCLI(t, "logs", "--bogus"); code != 2 || out != "" || !strings.Contains(errs, "flag provided but not defined: -bogus") ||
		!strings.Contains(errs, "Run 'warden logs --help' for its flags and examples.") || strings.Contains(errs, "Examples:") {
		t.Errorf("logs --bogus: exit %d\n%s%s", code, out, errs)
	}
}

// TestVersion: the module version, revision, Go and cedar-go versions.
func TestVersion(t *testing.T) {
	code, out, _ := runCLI(t, "version")
	if code != 0 || !strings.HasPrefix(out, "warden ") || !strings.Contains(out, "\n  go:       go1.") || !regexp.MustCompile(`cedar-go: v1\.\d+\.\d+`).MatchString(out) {
		t.Errorf("version: exit %d\n%s", code, out)
	}
	code, out, _ = runCLI(t, "version", "--output", "json")
	var v versionInfo
	if err := json.Unmarshal([]byte(out), &v); code != 0 || err != nil || v.Go == "" || !strings.HasPrefix(v.CedarGo, "v1.") {
		t.Errorf("version --output json: exit %d %v\n%s", code, err, out)
	}
	bi := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "github.com/wardenauthz/warden", Version: "v1.4.0"},
		Deps:     []*debug.Module{{Path: "github.com/redis/go-redis/v9", Version: "v9.1.0"}, {Path: cedarModule, Version: "v1.9.0"}},
		Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "58c3853"}, {Key: "vcs.modified", Value: "true"}, {Key: "vcs.time", Value: "2026-11-28T10:00:00Z"}}}
	want := versionInfo{Version: "v1.4.0", Revision: "58c3853", Time: "2026-11-28T10:00:00Z", Modified: true, Go: "go1.26.8", CedarGo: "v1.9.0"}
	if got := buildVersion(bi, true); got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
	if got := buildVersion(nil, false); got.Version != "unknown" || got.CedarGo != "unknown" {
		t.Errorf("no build info: %+v", got)
	}
}
