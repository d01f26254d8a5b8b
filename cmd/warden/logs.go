package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wardenauthz/warden/authz"
	"github.com/wardenauthz/warden/authz/config"
	"github.com/wardenauthz/warden/authz/server"
)

func cmdLogs(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("logs", stderr)
	cfgFile := fs.String("config", "", "read the decision log sinks of this config (redis_stream, else file)")
	serverAddr := fs.String("server", "", "ask a running Warden's admin API")
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
	if *serverAddr != "" {
		fmt.Fprintln(stderr, "warden logs: --server needs the admin API, which this build does not have yet; use --config")
		return exitError
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
	cfg, err := loadConfig(*cfgFile)
	if err != nil {
		printErrors(stderr, err)
		return exitError
	}
	src, err := openLogSource(cfg)
	if err != nil {
		fmt.Fprintf(stderr, "warden logs: %v\n", err)
		return exitError
	}
	defer src.Close()
	recs, err := src.Read(ctx, f, *limit)
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

// logSource is a queryable decision log sink.
type logSource interface {
	// Read returns the newest limit matching records, oldest first.
	Read(ctx context.Context, f authz.Filter, limit int) ([]*authz.Record, error)
	// Follow calls fn for every new matching record until ctx ends.
	Follow(ctx context.Context, f authz.Filter, fn func(*authz.Record)) error
	Close() error
}

func openLogSource(cfg *config.Config) (logSource, error) {
	for _, s := range cfg.DecisionLog.Sinks {
		if s.Kind == "redis_stream" {
			st, err := server.NewRedisStore(cfg, nil)
			if err != nil {
				return nil, err
			}
			return &streamSource{c: st.Client(), stream: s.Stream}, nil
		}
	}
	for _, s := range cfg.DecisionLog.Sinks {
		if s.Kind == "file" {
			return &fileSource{path: cfg.Resolve(s.Path)}, nil
		}
	}
	return nil, fmt.Errorf("%s has no queryable decision log sink (file or redis_stream); stdout records go wherever serve's output went", cfg.File)
}

// keep holds the newest n records.
type keep struct {
	n    int
	recs []*authz.Record
}

func (k *keep) add(r *authz.Record) {
	k.recs = append(k.recs, r)
	if len(k.recs) > k.n {
		k.recs = k.recs[1:]
	}
}

// fileSource reads a file sink and its rotated backups (lumberjack names
// them NAME-TIMESTAMP.EXT beside it).
type fileSource struct{ path string }

func (s *fileSource) files() []string {
	ext := filepath.Ext(s.path)
	backups, _ := filepath.Glob(strings.TrimSuffix(s.path, ext) + "-*" + ext)
	sort.Strings(backups) // timestamps sort oldest first
	return append(backups, s.path)
}

func (s *fileSource) Read(_ context.Context, f authz.Filter, limit int) ([]*authz.Record, error) {
	k := &keep{n: limit}
	found := false
	for _, name := range s.files() {
		fh, err := os.Open(name)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		found = true
		_, err = scanRecords(fh, f, k.add)
		fh.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
	}
	if !found {
		return nil, fmt.Errorf("%s: no decision log yet", s.path)
	}
	return k.recs, nil
}

// scanRecords decodes JSON lines, skipping lines that are not records.
func scanRecords(r io.Reader, f authz.Filter, fn func(*authz.Record)) (int64, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	var n int64
	for sc.Scan() {
		n += int64(len(sc.Bytes())) + 1
		var rec authz.Record
		if json.Unmarshal(sc.Bytes(), &rec) != nil || rec.DecisionID == "" {
			continue
		}
		if f.Match(&rec) {
			fn(&rec)
		}
	}
	return n, sc.Err()
}

func (s *fileSource) Follow(ctx context.Context, f authz.Filter, fn func(*authz.Record)) error {
	fh, err := os.Open(s.path)
	if err != nil {
		return err
	}
	defer func() { fh.Close() }()
	off, err := fh.Seek(0, io.SeekEnd)
	if err != nil {
		return err
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(300 * time.Millisecond):
		}
		if st, err := os.Stat(s.path); err == nil && st.Size() < off { // rotated
			fh.Close()
			if fh, err = os.Open(s.path); err != nil {
				return err
			}
			off = 0
		}
		if _, err := fh.Seek(off, io.SeekStart); err != nil {
			return err
		}
		// Only whole lines: a partial last line is read next time.
		b, err := io.ReadAll(fh)
		if err != nil {
			return err
		}
		if i := strings.LastIndexByte(string(b), '\n'); i >= 0 {
			n, _ := scanRecords(strings.NewReader(string(b[:i+1])), f, fn)
			off += n
		}
	}
}

func (s *fileSource) Close() error { return nil }

// streamSource reads the Redis stream sink: every replica's records.
type streamSource struct {
	c      redis.UniversalClient
	stream string
}

func (s *streamSource) decode(msgs []redis.XMessage, f authz.Filter, fn func(*authz.Record)) {
	for _, m := range msgs {
		v, _ := m.Values[authz.StreamField].(string)
		var rec authz.Record
		if json.Unmarshal([]byte(v), &rec) == nil && f.Match(&rec) {
			fn(&rec)
		}
	}
}

func (s *streamSource) Read(ctx context.Context, f authz.Filter, limit int) ([]*authz.Record, error) {
	k := &keep{n: limit}
	start := "-"
	if !f.Since.IsZero() {
		start = strconv.FormatInt(f.Since.UnixMilli(), 10)
	}
	for {
		msgs, err := s.c.XRangeN(ctx, s.stream, start, "+", 1000).Result()
		if err != nil {
			return nil, err
		}
		s.decode(msgs, f, k.add)
		if len(msgs) < 1000 {
			return k.recs, nil
		}
		start = "(" + msgs[len(msgs)-1].ID
	}
}

func (s *streamSource) Follow(ctx context.Context, f authz.Filter, fn func(*authz.Record)) error {
	last := "$"
	for {
		res, err := s.c.XRead(ctx, &redis.XReadArgs{Streams: []string{s.stream, last}, Block: time.Second, Count: 1000}).Result()
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, redis.Nil):
			continue
		case err != nil:
			return err
		}
		for _, st := range res {
			s.decode(st.Messages, f, fn)
			if n := len(st.Messages); n > 0 {
				last = st.Messages[n-1].ID
			}
		}
	}
}

func (s *streamSource) Close() error { return s.c.Close() }

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
