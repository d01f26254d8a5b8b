package main

import (
	"context"
	"errors"
	"flag"
	"os"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/wardenauthz/warden/authz/admin"
	"github.com/wardenauthz/warden/authz/config"
	"github.com/wardenauthz/warden/authz/decisionlog"
	adminv1 "github.com/wardenauthz/warden/proto/warden/admin/v1"
)

// adminFlags are the flags of commands that can talk to the admin API.
type adminFlags struct {
	server, tokenFile, caFile, certFile, keyFile *string
}

func addAdminFlags(fs *flag.FlagSet) *adminFlags {
	return &adminFlags{
		server:    fs.String("server", "", "a running Warden's admin API address (admin.addr, e.g. 127.0.0.1:9193)"),
		tokenFile: fs.String("token-file", "", "admin bearer token file (default: $WARDEN_ADMIN_TOKEN_FILE, else the quick start's dev token)"),
		caFile:    fs.String("ca-file", "", "CA certificate of an admin API served over TLS"),
		certFile:  fs.String("cert-file", "", "client certificate for an mTLS admin API"),
		keyFile:   fs.String("key-file", "", "client certificate key"),
	}
}

// config loads the local config, or returns nil when --server is given.
func (a *adminFlags) config(cfgFile string) (*config.Config, error) {
	if *a.server != "" {
		return nil, nil
	}
	return loadConfig(cfgFile)
}

// dial connects to --server, else to cfg's admin API (cfg's token file is
// the last resort for credentials).
func (a *adminFlags) dial(cfg *config.Config) (adminv1.AdminServiceClient, func() error, error) {
	addr := *a.server
	if addr == "" {
		addr = cfg.Admin.Addr
	}
	o := admin.ClientOptions{TokenFile: *a.tokenFile, CAFile: *a.caFile, CertFile: *a.certFile, KeyFile: *a.keyFile}
	if o.TokenFile == "" {
		o.TokenFile = os.Getenv("WARDEN_ADMIN_TOKEN_FILE")
	}
	if o.TokenFile == "" && cfg != nil && cfg.Admin.TokenFile != "" {
		o.TokenFile = cfg.Resolve(cfg.Admin.TokenFile)
	}
	if o.TokenFile == "" && o.CertFile == "" {
		if p, err := admin.DevTokenPath(); err == nil {
			if _, err := os.Stat(p); err == nil {
				o.TokenFile = p
			}
		}
	}
	return admin.Dial(addr, o)
}

// adminError explains an admin API failure.
func adminError(err error) error {
	switch status.Code(err) {
	case codes.Unauthenticated:
		return errors.New(status.Convert(err).Message() + " (give --token-file or a client certificate)")
	case codes.PermissionDenied, codes.InvalidArgument:
		return errors.New(status.Convert(err).Message())
	case codes.Unavailable:
		return errors.New("admin API unavailable: " + status.Convert(err).Message())
	case codes.ResourceExhausted:
		return errors.New("admin API busy: " + status.Convert(err).Message())
	}
	return err
}

// remoteSource reads decisions through a server's admin API.
type remoteSource struct {
	c     adminv1.AdminServiceClient
	close func() error
	// warn, when set, is told once that the server's log was behind (its
	// answer may lack its latest decisions).
	warn   func(string)
	warned bool
}

func (r *remoteSource) Kind() string { return "admin API" }
func (r *remoteSource) Close() error { return r.close() }

func (r *remoteSource) Query(ctx context.Context, f decisionlog.Filter, limit int, cursor string) ([]*decisionlog.Record, string, error) {
	req := &adminv1.QueryDecisionsRequest{Decision: f.Decision, Principal: f.Principal, Action: f.Action,
		Status: int32(f.Status), PageSize: int32(min(limit, admin.MaxPageSize)), PageToken: cursor,
		DecisionId: f.DecisionID, Reason: string(f.Reason), Resource: f.Resource, Policy: f.Policy, Node: f.Node}
	if !f.Since.IsZero() {
		req.Since = timestamppb.New(f.Since)
	}
	if !f.Until.IsZero() {
		req.Until = timestamppb.New(f.Until)
	}
	resp, err := r.c.QueryDecisions(ctx, req)
	if err != nil {
		return nil, "", adminError(err)
	}
	if resp.LogBehind && r.warn != nil && !r.warned {
		r.warned = true
		r.warn("the server's decision log is behind (a sink stalled or slow): its latest decisions may be missing")
	}
	// A server older than a filter field ignores it: every record is checked
	// here too, so no record outside the filter is shown.
	recs := make([]*decisionlog.Record, 0, len(resp.Decisions))
	for _, d := range resp.Decisions {
		if r := admin.RecordFromProto(d); f.Match(r) {
			recs = append(recs, r)
		}
	}
	return recs, resp.NextPageToken, nil
}

// Follow polls every second, looking back a few seconds for records that
// replicas wrote late, and prints each record once.
func (r *remoteSource) Follow(ctx context.Context, f decisionlog.Filter, fn func(*decisionlog.Record)) error {
	const lookback = 10 * time.Second
	seen := map[string]time.Time{}
	first := true
	for {
		since := time.Now().Add(-lookback)
		if since.Before(f.Since) {
			since = f.Since
		}
		q := f
		q.Since = since
		recs, err := newest(ctx, r, q, 100000)
		if err != nil {
			return err
		}
		for _, rec := range recs {
			if _, ok := seen[rec.DecisionID]; !ok {
				seen[rec.DecisionID] = rec.Time
				if !first {
					fn(rec)
				}
			}
		}
		first = false
		for id, t := range seen {
			if t.Before(since.Add(-lookback)) {
				delete(seen, id)
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// newest returns the newest limit matching records, oldest first.
func newest(ctx context.Context, src decisionlog.LogSource, f decisionlog.Filter, limit int) ([]*decisionlog.Record, error) {
	var out []*decisionlog.Record
	cursor := ""
	for len(out) < limit {
		recs, next, err := src.Query(ctx, f, limit-len(out), cursor)
		if err != nil {
			return nil, err
		}
		out = append(out, recs...)
		if next == "" {
			break
		}
		cursor = next
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out, nil
}
