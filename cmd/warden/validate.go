package main

import (
	"fmt"
	"io"

	"github.com/wardenauthz/warden/authz/config"
	"github.com/wardenauthz/warden/policy"
)

func cmdPolicyValidate(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("policy validate", stderr)
	cfgFile := fs.String("config", "", "config file (default: $WARDEN_CONFIG, else the embedded quick start)")
	if code, stop := parseFlags(fs, args); stop {
		return code
	}
	cfg, set, ok := loadAll(*cfgFile, stderr)
	if !ok {
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
	cfg, set, ok := loadAll(fs.Arg(0), stderr)
	if !ok {
		return exitDeny
	}
	fmt.Fprintf(stdout, "ok: %s (%d policies, %d routes)\n", cfg.File, set.Len(), len(cfg.Policy.Routes))
	return exitOK
}

// loadAll loads a config and its policies, printing every problem.
func loadAll(file string, stderr io.Writer) (*config.Config, *policy.Set, bool) {
	cfg, err := loadConfig(file)
	if err != nil {
		printErrors(stderr, err)
		return nil, nil, false
	}
	set, err := policy.Load(cfg.PolicySource(), cfg.Policy.Routes)
	if err != nil {
		printErrors(stderr, err)
		return nil, nil, false
	}
	return cfg, set, true
}
