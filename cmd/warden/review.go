package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/wardenauthz/warden/authz/config"
	"github.com/wardenauthz/warden/authz/review"
	"github.com/wardenauthz/warden/policy"
)

// sinceFlag is a look-back: a Go duration, a number of days ("30d"), or an
// RFC 3339 time.
type sinceFlag struct{ t time.Time }

func (s *sinceFlag) String() string { return "" }

func (s *sinceFlag) Set(v string) error {
	if d, ok := strings.CutSuffix(v, "d"); ok {
		n, err := strconv.Atoi(d)
		if err != nil || n < 0 {
			return fmt.Errorf("%q: want a number of days, a duration (12h) or an RFC 3339 time", v)
		}
		s.t = time.Now().Add(-time.Duration(n) * 24 * time.Hour)
		return nil
	}
	if d, err := time.ParseDuration(v); err == nil {
		s.t = time.Now().Add(-d)
		return nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return fmt.Errorf("%q: want a number of days (30d), a duration (12h) or an RFC 3339 time", v)
	}
	s.t = t
	return nil
}

func addSince(fs *flag.FlagSet, def time.Duration, what string) *sinceFlag {
	s := &sinceFlag{t: time.Now().Add(-def)}
	fs.Var(s, "since", what+": 30d, 12h or an RFC 3339 time")
	return s
}

// reviewInputs are what replay and access-review read: the config (routes,
// and the policies in service) and its decision log.
func reviewInputs(flags *flag.FlagSet) (cfgFile *string, af *adminFlags) {
	cfgFile = flags.String("config", "", "config: its routes, policies and decision log sinks (default: $WARDEN_CONFIG, else the embedded quick start)")
	return cfgFile, addAdminFlags(flags)
}

// fsReadFile reads a file of a policy source.
func fsReadFile(src policy.Source, name string) ([]byte, error) {
	return fs.ReadFile(src.FS, path.Join(src.Dir, name))
}

func cmdReplay(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	flags := newFlags("replay", stderr)
	cfgFile, af := reviewInputs(flags)
	dir := flags.String("policies", "", "the candidate policy directory (*.cedar, schema.cedarschema, entities.json)")
	since := addSince(flags, 24*time.Hour, "how far back")
	output := flags.String("output", "table", "table or json")
	max := flags.Int("max", 100, "show at most this many changes (all are counted)")
	failOn := flags.String("fail-on", "decisions", "exit 1 when a decision changes (decisions), or also when only the deciding policies change (policies)")
	if code, stop := parseFlags(flags, args); stop {
		return code
	}
	if *dir == "" || (*output != "table" && *output != "json") {
		fmt.Fprintln(stderr, "usage: warden replay --policies DIR [--since 24h] [--config FILE | --server ADDR] [--output table|json] [--max N] [--fail-on decisions|policies]")
		return exitError
	}
	if *failOn != "decisions" && *failOn != "policies" {
		fmt.Fprintf(stderr, "warden replay: --fail-on %q: want decisions (exit 1 when an allow becomes a deny or back) or policies (also when only the deciding policy ids change)\n", *failOn)
		return exitError
	}
	cfg, err := loadConfig(*cfgFile)
	if err != nil {
		printErrors(stderr, err)
		return exitError
	}
	cand, err := policy.Load(policy.Source{FS: os.DirFS(*dir), Dir: ".", Name: *dir}, cfg.Policy.Routes)
	if err != nil {
		printErrors(stderr, err)
		return exitError
	}
	src, err := logSourceFor(*cfgFile, af)
	if err != nil {
		printErrors(stderr, fmt.Errorf("warden replay: %w", err))
		return exitError
	}
	defer src.Close()
	rep, err := review.Replay(ctx, src, since.t, cand, *max)
	if err != nil {
		fmt.Fprintf(stderr, "warden replay: %v\n", adminError(err))
		return exitError
	}
	if *output == "json" {
		printJSON(stdout, rep)
	} else {
		printReplay(stdout, rep)
	}
	if rep.Replayed == 0 && rep.Records > 0 {
		fmt.Fprintln(stderr, "warden replay: no record holds its Cedar request: turn on decision_log.replayable")
	}
	if rep.DecisionsChanged() || (*failOn == "policies" && rep.Changed()) {
		return exitDeny
	}
	return exitOK
}

func printReplay(w io.Writer, rep *review.ReplayReport) {
	fmt.Fprintf(w, "%d records, %d replayed, %d not replayable (refused before the policies, or not logged replayable)\n",
		rep.Records, rep.Replayed, rep.NotReplayable)
	fmt.Fprintf(w, "newly denied: %d, newly allowed: %d, reasons changed: %d\n",
		rep.Counts[review.NewlyDenied], rep.Counts[review.NewlyAllowed], rep.Counts[review.ReasonsChanged])
	if len(rep.Changes) == 0 {
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "\nCHANGE\tTIME\tPRINCIPAL\tACTION\tRESOURCE\tBEFORE\tAFTER\tDECISION_ID")
	for _, c := range rep.Changes {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", c.Kind, c.Time.UTC().Format(time.RFC3339), c.Principal, c.Action, c.Resource,
			verdict(c.Before), verdict(c.After), c.DecisionID)
	}
	_ = tw.Flush()
	if rep.Truncated {
		fmt.Fprintln(w, "(more changes not shown: --max)")
	}
}

func verdict(v review.Verdict) string {
	return v.Decision + "(" + strings.Join(v.Policies, ",") + ")"
}

func cmdAccessReview(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	flags := newFlags("access-review", stderr)
	cfgFile, af := reviewInputs(flags)
	since := addSince(flags, 30*24*time.Hour, "the window reviewed")
	principal := flags.String("principal", "", `one principal, e.g. User::"corp|alice"`)
	group := flags.String("group", "", `one group, e.g. Group::"corp|staff"`)
	output := flags.String("output", "table", "table or json")
	suggest := flags.String("suggest", "", "write the suggested narrower policies to this directory (suggested.cedar, with the schema and entities of the policies in service)")
	if code, stop := parseFlags(flags, args); stop {
		return code
	}
	if *principal != "" && *group != "" || (*output != "table" && *output != "json") {
		fmt.Fprintln(stderr, "usage: warden access-review [--since 30d] [--principal P | --group G] [--config FILE | --server ADDR] [--output table|json] [--suggest DIR]")
		return exitError
	}
	cfg, set, ok := loadAll(*cfgFile, stderr)
	if !ok {
		return exitError
	}
	src, err := logSourceFor(*cfgFile, af)
	if err != nil {
		printErrors(stderr, fmt.Errorf("warden access-review: %w", err))
		return exitError
	}
	defer src.Close()
	rep, err := review.Review(ctx, src, since.t, set, review.Filter{Principal: *principal, Group: *group})
	if err != nil {
		fmt.Fprintf(stderr, "warden access-review: %v\n", adminError(err))
		return exitError
	}
	if rep.Replayable == 0 {
		fmt.Fprintln(stderr, "warden access-review: no record holds its Cedar request: turn on decision_log.replayable")
	}
	if sa := *cfg.DecisionLog.SampleAllow; sa < 1 {
		fmt.Fprintf(stderr, "warden access-review: decision_log.sample_allow is %v: some use is not logged, so some grants may look unused\n", sa)
	}
	if *suggest != "" {
		if err := writeSuggestion(*suggest, cfg, set, rep); err != nil {
			fmt.Fprintf(stderr, "warden access-review: %v\n", err)
			return exitError
		}
	}
	if *output == "json" {
		printJSON(stdout, rep)
		return exitOK
	}
	printReview(stdout, rep)
	if *suggest != "" {
		fmt.Fprintf(stdout, "\nsuggested policies: %s (checked: they load as a policy set)\n", *suggest)
	}
	return exitOK
}

// writeSuggestion writes suggested.cedar beside copies of the schema and
// entities in service, and loads the result as a check.
func writeSuggestion(dir string, cfg *config.Config, set *policy.Set, rep *review.Report) error {
	text, err := rep.Suggest(set)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	src := cfg.PolicySource()
	for _, f := range []string{policy.SchemaFile, policy.EntitiesFile} {
		if b, err := fsReadFile(src, f); err == nil {
			if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
				return err
			}
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "suggested.cedar"), []byte(text), 0o644); err != nil {
		return err
	}
	if _, err := policy.Load(policy.Source{FS: os.DirFS(dir), Dir: ".", Name: dir}, cfg.Policy.Routes); err != nil {
		return fmt.Errorf("the suggested policies do not load (please report this): %w", err)
	}
	return nil
}

func printReview(w io.Writer, rep *review.Report) {
	fmt.Fprintf(w, "window since %s: %d records, %d replayable\n", rep.Since.UTC().Format(time.RFC3339), rep.Records, rep.Replayable)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "\nPRINCIPAL\tGROUPS\tGRANTED\tUSED\tUNUSED GRANTS")
	for _, p := range rep.Principals {
		var used []string
		for _, u := range p.Used {
			used = append(used, fmt.Sprintf("%s×%d", bare(u.Action), u.Count))
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", p.Principal, dash(strings.Join(p.Groups, ",")), len(p.Granted), dash(strings.Join(used, ", ")), dash(bareAll(p.Unused)))
	}
	_ = tw.Flush()
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "\nGROUP\tMEMBERS SEEN\tPOLICIES\tUNUSED GRANTS")
	for _, g := range rep.Groups {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\n", g.Group, len(g.Members), dash(strings.Join(g.Policies, ",")), dash(bareAll(g.Unused)))
	}
	_ = tw.Flush()
	fmt.Fprintf(w, "\npermit policies that decided no allow: %s\n", dash(strings.Join(rep.UnusedPolicies, ", ")))
	fmt.Fprintln(w, "(grants are what permit scopes give, conditions not evaluated; an unconditional forbid takes its actions away)")
}

// bare drops Action::"..." around an action.
func bare(a string) string {
	if s, ok := strings.CutPrefix(a, `Action::`); ok {
		if u, err := strconv.Unquote(s); err == nil {
			return u
		}
	}
	return a
}

func bareAll(as []string) string {
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = bare(a)
	}
	return strings.Join(out, ", ")
}
