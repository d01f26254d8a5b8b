package main

import (
	"fmt"
	"io"

	"github.com/wardenauthz/warden/envoycheck"
)

func cmdEnvoyValidate(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("envoy validate", stderr)
	if code, stop := parseFlags(fs, args); stop {
		return code
	}
	if fs.NArg() == 0 {
		fmt.Fprintln(stderr, "usage: warden envoy validate FILE...  (Envoy bootstrap or listener YAML)")
		return exitError
	}
	bad := 0
	for _, f := range fs.Args() {
		ps := envoycheck.File(f)
		for _, p := range ps {
			fmt.Fprintln(stderr, p)
		}
		if len(ps) > 0 {
			bad++
			continue
		}
		fmt.Fprintf(stdout, "ok: %s\n", f)
	}
	if bad > 0 {
		return exitDeny
	}
	return exitOK
}
