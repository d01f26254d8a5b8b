package main

import (
	"context"
	"fmt"
	"io"

	"github.com/wardenauthz/warden/authz/policytest"
)

func cmdPolicyTest(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("policy test", stderr)
	cfgFile := fs.String("config", "", "config whose policies, routes and identity are tested (default: $WARDEN_CONFIG, else the embedded quick start)")
	verbose := fs.Bool("v", false, "print every test, not only the failures, and explain each failure (route, entities, each policy that could apply, the deciding rule)")
	if code, stop := parseFlags(fs, args); stop {
		return code
	}
	if fs.NArg() == 0 {
		printHelp(fs)
		return exitError
	}
	files, err := policytest.Files(fs.Args())
	if err != nil {
		fmt.Fprintf(stderr, "warden policy test: %v\n", err)
		return exitError
	}
	cfg, err := loadConfig(*cfgFile)
	if err != nil {
		printErrors(stderr, err)
		return exitError
	}
	r, err := policytest.New(cfg)
	if err != nil {
		printErrors(stderr, err)
		return exitError
	}
	r.Explain = *verbose
	passed, failed, broken := 0, 0, 0
	for _, f := range files {
		outs, err := r.RunFile(ctx, f)
		if err != nil {
			printErrors(stderr, err)
			broken++
			continue
		}
		for _, o := range outs {
			if o.Passed() {
				passed++
				if *verbose {
					fmt.Fprintf(stdout, "ok    %s:%d: %s\n", o.File, o.Line, o.Name)
				}
				continue
			}
			failed++
			fmt.Fprintf(stdout, "FAIL  %s:%d: %s\n", o.File, o.Line, o.Name)
			for _, m := range o.Failures {
				fmt.Fprintf(stdout, "      %s\n", m)
			}
			if o.Got != "" {
				fmt.Fprintf(stdout, "      got: %s\n", o.Got)
			}
			if o.Explanation != nil {
				fmt.Fprintln(stdout, "      explanation:")
				o.Explanation.WriteText(stdout, "        ")
			}
		}
	}
	fmt.Fprintf(stdout, "%d passed, %d failed", passed, failed)
	if broken > 0 {
		fmt.Fprintf(stdout, ", %d file%s not run", broken, map[bool]string{true: "s"}[broken > 1])
	}
	fmt.Fprintf(stdout, " (%s)\n", cfg.PolicySource().Name)
	switch {
	case broken > 0:
		return exitError
	case failed > 0:
		return exitDeny
	}
	return exitOK
}
