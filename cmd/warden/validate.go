package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/wardenauthz/warden/authz/config"
	"github.com/wardenauthz/warden/policy"
	adminv1 "github.com/wardenauthz/warden/proto/warden/admin/v1"
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
	for _, w := range cfg.Warnings {
		fmt.Fprintln(stderr, "warning: "+w)
	}
	fmt.Fprintf(stdout, "ok: %s (%d policies, %d routes)\n", cfg.File, set.Len(), len(cfg.Policy.Routes))
	return exitOK
}

func cmdPolicySchema(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("policy schema", stderr)
	cfgFile := fs.String("config", "", "config whose routes (and policy directory's schema.cedarschema) the schema is for (default: $WARDEN_CONFIG, else the embedded quick start)")
	if code, stop := parseFlags(fs, args); stop {
		return code
	}
	cfg, err := loadConfig(*cfgFile)
	if err != nil {
		printErrors(stderr, err)
		return exitError
	}
	set, err := policy.Load(cfg.PolicySource(), cfg.Policy.Routes)
	if err != nil {
		printErrors(stderr, err)
		return exitError
	}
	sc, err := set.ModelSchema()
	if err != nil {
		printErrors(stderr, err)
		return exitError
	}
	b, err := sc.MarshalCedar()
	if err != nil {
		printErrors(stderr, err)
		return exitError
	}
	fmt.Fprintf(stdout, "// Cedar schema of Warden's model for %s (warden policy schema).\n// Declare Headers, Query, Extensions or TokenClaims, or any entity type or action,\n// in %s to add or replace attributes.\n", cfg.File, cfg.PolicySource().Name+"/"+policy.SchemaFile)
	stdout.Write(b)
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
	if errs := set.ValidateModel(); len(errs) > 0 {
		printErrors(stderr, errors.Join(errs...))
		return nil, nil, false
	}
	return cfg, set, true
}

func cmdPolicyStatus(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("policy status", stderr)
	cfgFile := fs.String("config", "", "ask the admin API of this config (default: $WARDEN_CONFIG, else the quick start)")
	output := fs.String("output", "table", "table or json")
	af := addAdminFlags(fs)
	if code, stop := parseFlags(fs, args); stop {
		return code
	}
	cfg, err := af.config(*cfgFile)
	if err != nil {
		printErrors(stderr, err)
		return exitError
	}
	c, closer, err := af.dial(cfg)
	if err != nil {
		fmt.Fprintf(stderr, "warden policy status: %v\n", err)
		return exitError
	}
	defer closer()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	st, err := c.PolicyStatus(ctx, &adminv1.PolicyStatusRequest{})
	if err != nil {
		fmt.Fprintf(stderr, "warden policy status: %v\n", adminError(err))
		return exitError
	}
	if *output == "json" {
		b, _ := protojson.MarshalOptions{Multiline: true}.Marshal(st)
		fmt.Fprintln(stdout, string(b))
	} else {
		fmt.Fprintf(stdout, "node %s: %d policies, loaded %s\n", st.Node, st.Policies, st.LoadedAt.AsTime().Format(time.RFC3339))
		if st.LastReloadError != "" {
			fmt.Fprintf(stdout, "last reload at %s FAILED (serving the last good set):\n%s\n", st.LastReloadAt.AsTime().Format(time.RFC3339), st.LastReloadError)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tEFFECT\tPOSITION")
		for _, p := range st.Policy {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", p.Id, p.Effect, p.Position)
		}
		_ = tw.Flush()
	}
	if st.LastReloadError != "" {
		return exitDeny
	}
	return exitOK
}
