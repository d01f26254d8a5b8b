package main

import (
	"fmt"
	"io"

	"github.com/wardenauthz/warden/envoy/envoycheck"
)

func cmdEnvoyValidate(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("envoy validate", stderr)
	strict := fs.Bool("strict", false, "treat security warnings as errors (exit 1)")
	if code, stop := parseFlags(fs, args); stop {
		return code
	}
	if fs.NArg() == 0 {
		fmt.Fprintln(stderr, "usage: warden envoy validate [--strict] FILE...  (Envoy bootstrap or listener YAML)")
		return exitError
	}
	bad := 0
	for _, f := range fs.Args() {
		ps := envoycheck.File(f)
		warnings := 0
		for _, p := range ps {
			fmt.Fprintln(stderr, p)
			if p.Warning {
				warnings++
			}
		}
		errs := len(ps) - warnings
		switch {
		case errs > 0 || (*strict && warnings > 0):
			bad++
			fmt.Fprintf(stderr, "%s: %d errors, %d warnings\n", f, errs, warnings)
		case warnings > 0:
			fmt.Fprintf(stdout, "ok: %s (%d security warnings; --strict fails on them)\n", f, warnings)
		default:
			fmt.Fprintf(stdout, "ok: %s\n", f)
		}
	}
	if bad > 0 {
		return exitDeny
	}
	return exitOK
}
