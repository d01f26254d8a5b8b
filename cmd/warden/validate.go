package main

import (
	"fmt"
	"io"

	"github.com/wardenauthz/warden/policy"
)

func cmdPolicyValidate(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("policy validate", stderr)
	cfgFile := fs.String("config", "", "config file (default: $WARDEN_CONFIG, else the embedded quick start)")
	if code, stop := parseFlags(fs, args); stop {
		return code
	}
	cfg, err := loadConfig(*cfgFile)
	if err != nil {
		printErrors(stderr, err)
		return exitDeny
	}
	set, err := policy.Load(cfg.PolicySource(), cfg.Policy.Routes)
	if err != nil {
		printErrors(stderr, err)
		return exitDeny
	}
	fmt.Fprintf(stdout, "ok: %d policies, %d routes (%s)\n", set.Len(), len(cfg.Policy.Routes), cfg.PolicySource().Name)
	return exitOK
}

func cmdConfigValidate(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("config validate", stderr)
	if code, stop := parseFlags(fs, args); stop {
		return code
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "usage: warden config validate FILE")
		return exitError
	}
	cfg, err := loadConfig(fs.Arg(0))
	if err != nil {
		printErrors(stderr, err)
		return exitDeny
	}
	set, err := policy.Load(cfg.PolicySource(), cfg.Policy.Routes)
	if err != nil {
		printErrors(stderr, err)
		return exitDeny
	}
	fmt.Fprintf(stdout, "ok: %s (%d policies, %d routes)\n", cfg.File, set.Len(), len(cfg.Policy.Routes))
	return exitOK
}
