package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/wardenauthz/warden/authz/decisionlog"
	"github.com/wardenauthz/warden/authz/server"
)

func cmdLogs(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("logs", stderr)
	cfgFile := fs.String("config", "", "read the decision log sinks of this config (redis_stream, else file; else ask its admin API)")
	af := addAdminFlags(fs)
	since := addSince(fs, 15*time.Minute, "records at or after (default 15m)")
	until := &sinceFlag{}
	fs.Var(until, "until", "records before: 30d, 12h ago or an RFC 3339 time (default: now)")
	decisionID := fs.String("decision-id", "", "exact decision id (32 hex digits), as a client was given it")
	decision := fs.String("decision", "", "allow or deny")
	reason := fs.String("reason", "", "a reason: "+reasonList())
	principal := fs.String("principal", "", `exact principal, e.g. User::"corp|alice" (quote it for the shell)`)
	action := fs.String("action", "", `exact action, e.g. Action::"GET /orders/{id}" (the Action:: prefix may be left out)`)
	resource := fs.String("resource", "", `exact resource, e.g. Resource::"orders-api:/orders/42"`)
	policyID := fs.String("policy", "", "records this policy id decided (one of the record's policies)")
	node := fs.String("node", "", "records of this replica (the config's node)")
	status := fs.Int("status", 0, "HTTP status")
	limit := fs.Int("limit", 100, "at most this many records (the newest)")
	follow := fs.Bool("follow", false, "keep printing new records until interrupted")
	output := fs.String("output", "table", "table or json (JSON lines)")
	if code, stop := parseFlags(fs, args); stop {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "warden logs: unexpected argument %q (filters are flags, e.g. --principal 'User::\"corp|alice\"')\n", fs.Arg(0))
		return exitError
	}
	if *output != "table" && *output != "json" {
		fmt.Fprintln(stderr, "warden logs: --output must be table or json")
		return exitError
	}
	if *limit < 1 {
		fmt.Fprintln(stderr, "warden logs: --limit must be at least 1")
		return exitError
	}
	act := *action
	if act != "" && !strings.HasPrefix(act, "Action::") {
		act = "Action::" + strconv.Quote(act)
	}
	f := decisionlog.Filter{Since: since.t, Until: until.t, DecisionID: *decisionID, Decision: *decision, Reason: decisionlog.Reason(*reason),
		Principal: *principal, Action: act, Resource: *resource, Policy: *policyID, Node: *node, Status: *status}
	f, err := f.Check()
	if err != nil {
		for _, e := range strings.Split(err.Error(), "\n") {
			field, msg, _ := strings.Cut(e, ": ")
			fmt.Fprintf(stderr, "warden logs: --%s: %s\n", strings.ReplaceAll(field, "_", "-"), msg)
		}
		return exitError
	}
	if *follow && !f.Until.IsZero() {
		fmt.Fprintln(stderr, "warden logs: --follow and --until do not go together")
		return exitError
	}
	src, err := logSourceFor(*cfgFile, af)
	if err != nil {
		printErrors(stderr, fmt.Errorf("warden logs: %w", err))
		return exitError
	}
	defer src.Close()
	if r, ok := src.(*remoteSource); ok {
		r.warn = func(msg string) { fmt.Fprintln(stderr, "warden logs: warning: "+msg) }
	}
	recs, err := newest(ctx, src, f, *limit)
	if err != nil {
		fmt.Fprintf(stderr, "warden logs: %v\n", err)
		return exitError
	}
	p := newPrinter(stdout, *output)
	p.print(recs)
	if *follow {
		if fsrc, ok := src.(*decisionlog.FileSource); ok {
			fsrc.OnSkip = func(n int64, skipped int) {
				fmt.Fprintf(stderr, "warden logs: skipped a line of %d bytes, over the %d-byte bound (%d skipped so far)\n", n, cmp.Or(fsrc.MaxLineBytes, decisionlog.DefaultMaxLineBytes), skipped)
			}
		}
		err := src.Follow(ctx, f, func(r *decisionlog.Record) { p.print([]*decisionlog.Record{r}) })
		if err != nil && !errors.Is(err, context.Canceled) {
			fmt.Fprintf(stderr, "warden logs: %v\n", err)
			return exitError
		}
	}
	return exitOK
}

// logSourceFor picks where decisions are read: --server's admin API, else
// the config's queryable sink, else the config's own admin API.
func logSourceFor(cfgFile string, af *adminFlags) (decisionlog.Follower, error) {
	cfg, err := af.config(cfgFile)
	if err != nil {
		return nil, err
	}
	if cfg != nil {
		src, err := server.OpenLogSource(cfg)
		if err == nil || !cfg.Admin.Enabled() {
			return src, err
		}
		// A stdout sink: ask the server, which keeps recent records.
	}
	c, closer, err := af.dial(cfg)
	if err != nil {
		return nil, err
	}
	return &remoteSource{c: c, close: closer}, nil
}

type printer struct {
	w      io.Writer
	json   bool
	header bool
}

func newPrinter(w io.Writer, output string) *printer { return &printer{w: w, json: output == "json"} }

func (p *printer) print(recs []*decisionlog.Record) {
	if p.json {
		enc := json.NewEncoder(p.w)
		for _, r := range recs {
			_ = enc.Encode(r)
		}
		return
	}
	tw := tabwriter.NewWriter(p.w, 0, 4, 2, ' ', 0)
	if !p.header {
		fmt.Fprintln(tw, "TIME\tDECISION\tSTATUS\tREASON\tPRINCIPAL\tACTION\tRESOURCE\tPOLICIES\tNODE\tDECISION_ID")
		p.header = true
	}
	for _, r := range recs {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Time.UTC().Format(time.RFC3339), r.Decision, r.Status, r.Reason,
			dash(r.Principal), dash(r.Action), dash(r.Resource), dash(strings.Join(r.Policies, ",")), dash(r.Node), r.DecisionID)
	}
	_ = tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func reasonList() string {
	names := make([]string, len(decisionlog.Reasons))
	for i, r := range decisionlog.Reasons {
		names[i] = string(r)
	}
	return strings.Join(names, ", ")
}
