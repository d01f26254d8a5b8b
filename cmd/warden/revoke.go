package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/wardenauthz/warden/authz/server"
	"github.com/wardenauthz/warden/ratelimit"
)

const revokeUsage = `usage:
  warden revoke [--config FILE] --jti ID [--exp TIME]
  warden revoke [--config FILE] --subject ISSUER|SUB [--before TIME]
  warden revoke list [--config FILE] [--output table|json]
Times are RFC 3339. --before defaults to now; --exp (when the token expires,
so the entry can be forgotten) defaults to 7 days from now.`

func cmdRevoke(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	list := len(args) > 0 && args[0] == "list"
	if list {
		args = args[1:]
	}
	fs := newFlags("revoke", stderr)
	fs.Usage = func() { fmt.Fprintln(stderr, revokeUsage) }
	cfgFile := fs.String("config", "", "config whose store is written (default: $WARDEN_CONFIG)")
	jti := fs.String("jti", "", "revoke the token with this jti")
	exp := fs.String("exp", "", "the token's expiry (RFC 3339)")
	subject := fs.String("subject", "", "revoke every token of ISSUER|SUB issued before --before")
	before := fs.String("before", "", "cut-off time (RFC 3339, default now)")
	output := fs.String("output", "table", "list output: table or json")
	if code, stop := parseFlags(fs, args); stop {
		return code
	}
	if !list && (*jti == "") == (*subject == "") {
		fmt.Fprintln(stderr, revokeUsage)
		return exitError
	}
	cfg, err := loadConfig(*cfgFile)
	if err != nil {
		printErrors(stderr, err)
		return exitError
	}
	if cfg.Store.Kind != "redis" {
		fmt.Fprintf(stderr, "warden revoke: %s uses the memory store, which lives inside one 'warden serve' process;\n"+
			"revocations need store.kind: redis (shared by every replica and kept across restarts)\n", cfg.File)
		return exitError
	}
	store, err := server.NewRedisStore(cfg, nil)
	if err != nil {
		fmt.Fprintf(stderr, "warden revoke: %v\n", err)
		return exitError
	}
	defer store.Close()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if list {
		rs, err := store.List(ctx, time.Now())
		if err != nil {
			fmt.Fprintf(stderr, "warden revoke list: %v\n", err)
			return exitError
		}
		if *output == "json" {
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			_ = enc.Encode(rs)
			return exitOK
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "KIND\tID\tUNTIL/BEFORE")
		for _, r := range rs {
			t := r.Until
			if r.Kind == "subject" {
				t = r.Before
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\n", r.Kind, r.ID, t.UTC().Format(time.RFC3339))
		}
		_ = tw.Flush()
		return exitOK
	}
	parse := func(name, v string, def time.Time) (time.Time, bool) {
		if v == "" {
			return def, true
		}
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			fmt.Fprintf(stderr, "warden revoke: --%s %q: want RFC 3339, e.g. 2026-06-02T14:00:00Z\n", name, v)
			return t, false
		}
		return t, true
	}
	var r ratelimit.Revocation
	if *jti != "" {
		until, ok := parse("exp", *exp, time.Now().Add(7*24*time.Hour))
		if !ok {
			return exitError
		}
		r = ratelimit.Revocation{Kind: "jti", ID: *jti, Until: until}
	} else {
		if !strings.Contains(*subject, "|") {
			fmt.Fprintf(stderr, "warden revoke: --subject %q: want ISSUER|SUB, e.g. corp|alice (the issuer's configured name)\n", *subject)
			return exitError
		}
		b, ok := parse("before", *before, time.Now())
		if !ok {
			return exitError
		}
		r = ratelimit.Revocation{Kind: "subject", ID: *subject, Before: b}
	}
	if err := store.Revoke(ctx, r); err != nil {
		fmt.Fprintf(stderr, "warden revoke: %v\n", err)
		return exitError
	}
	fmt.Fprintf(stdout, "revoked %s %s\n", r.Kind, r.ID)
	return exitOK
}
