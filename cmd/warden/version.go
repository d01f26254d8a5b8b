package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
)

// versionInfo is what `warden version` prints, from the binary's build
// information.
type versionInfo struct {
	Version  string `json:"version"`            // the module version: a tag, a pseudo-version, or (devel)
	Revision string `json:"revision,omitempty"` // the VCS commit, when built with VCS stamping
	Time     string `json:"time,omitempty"`     // the commit's time
	Modified bool   `json:"modified,omitempty"` // built from a work tree with changes
	Go       string `json:"go"`
	CedarGo  string `json:"cedar_go"`
}

const cedarModule = "github.com/cedar-policy/cedar-go"

func buildVersion(bi *debug.BuildInfo, ok bool) versionInfo {
	v := versionInfo{Version: "unknown", Go: runtime.Version(), CedarGo: "unknown"}
	if !ok {
		return v
	}
	v.Go = bi.GoVersion
	if bi.Main.Version != "" {
		v.Version = bi.Main.Version
	}
	for _, d := range bi.Deps {
		if d.Path == cedarModule {
			v.CedarGo = d.Version
			if d.Replace != nil {
				v.CedarGo += " => " + d.Replace.Path + " " + d.Replace.Version
			}
		}
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			v.Revision = s.Value
		case "vcs.time":
			v.Time = s.Value
		case "vcs.modified":
			v.Modified = s.Value == "true"
		}
	}
	return v
}

func cmdVersion(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("version", stderr)
	output := fs.String("output", "text", "text or json")
	if code, stop := parseFlags(fs, args); stop {
		return code
	}
	if (*output != "text" && *output != "json") || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "usage: warden version [--output text|json]")
		return exitError
	}
	v := buildVersion(debug.ReadBuildInfo())
	if *output == "json" {
		printJSON(stdout, v)
		return exitOK
	}
	fmt.Fprintf(stdout, "warden %s\n", v.Version)
	rev := v.Revision
	switch {
	case rev == "":
		rev = "unknown (built without VCS stamping: go build -buildvcs=true in a git checkout)"
	case v.Modified:
		rev += " (modified)"
	}
	if v.Time != "" {
		rev += ", " + v.Time
	}
	fmt.Fprintf(stdout, "  revision: %s\n  go:       %s\n  cedar-go: %s\n", rev, v.Go, v.CedarGo)
	return exitOK
}
