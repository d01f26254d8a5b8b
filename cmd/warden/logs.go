package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/wardenauthz/warden/authz"
	"github.com/wardenauthz/warden/authz/server"
)

func cmdLogs(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("logs", stderr)
	cfgFile := fs.String("config", "", "read the decision log sinks of this config (redis_stream, else file; else ask its admin API)")
	af := addAdminFlags(fs)
	since := fs.Duration("since", 15*time.Minute, "how far back")
	decision := fs.String("decision", "", "allow or deny")
	principal := fs.String("principal", "", `exact principal, e.g. User::"corp|alice"`)
	action := fs.String("action", "", `exact action, e.g. Action::"GET /orders/{id}" (the Action:: prefix may be left out)`)
	status := fs.Int("status", 0, "HTTP status")
	limit := fs.Int("limit", 100, "at most this many records (the newest)")
	follow := fs.Bool("follow", false, "keep printing new records until interrupted")
	output := fs.String("output", "table", "table or json (JSON lines)")
	if code, stop := parseFlags(fs, args); stop {
		return code
	}
	if *decision != "" && *decision != "allow" && *decision != "deny" {
		fmt.Fprintln(stderr, "warden logs: --decision must be allow or deny")
		return exitError
	}
	if *output != "table" && *output != "json" {
		fmt.Fprintln(stderr, "warden logs: --output must be table or json")
		return exitError
	}
	act := *action
	if act != "" && !strings.HasPrefix(act, "Action::") {
		act = "Action::" + strconv.Quote(act)
	}
	f := authz.Filter{Since: time.Now().Add(-*since), Decision: *decision, Principal: *principal, Action: act, Status: *status}
	src, err := logSourceFor(*cfgFile, af)
	if err != nil {
		printErrors(stderr, fmt.Errorf("warden logs: %w", err))
		return exitError
	}
	defer src.Close()
	recs, err := newest(ctx, src, f, *limit)
	if err != nil {
		fmt.Fprintf(stderr, "warden logs: %v\n", err)
		return exitError
	}
	p := newPrinter(stdout, *output)
	p.print(recs)
	if *follow {
		err := src.Follow(ctx, f, func(r *authz.Record) { p.print([]*authz.Record{r}) })
		if err != nil && !errors.Is(err, context.Canceled) {
			fmt.Fprintf(stderr, "warden logs: %v\n", err)
			return exitError
		}
	}
	return exitOK
}

// logSourceFor picks where decisions are read: --server's admin API, else
// the config's queryable sink, else the config's own admin API.
func logSourceFor(cfgFile string, af *adminFlags) (authz.Follower, error) {
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

func (p *printer) print(recs []*authz.Record) {
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
