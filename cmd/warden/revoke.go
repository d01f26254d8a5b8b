package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/wardenauthz/warden/authz/admin"
	"github.com/wardenauthz/warden/authz/config"
	"github.com/wardenauthz/warden/authz/server"
	adminv1 "github.com/wardenauthz/warden/proto/warden/admin/v1"
	"github.com/wardenauthz/warden/ratelimit"
)

const revokeUsage = `usage:
  warden revoke [--config FILE | --server ADDR] --jti ID [--exp TIME]
  warden revoke [--config FILE | --server ADDR] --subject ISSUER|ID [--before TIME]
  warden revoke --undo [--config FILE | --server ADDR] --jti ID | --subject ISSUER|ID
  warden revoke list [--config FILE | --server ADDR] [--output table|json]
--undo takes a revocation back (unrevoke), as 'warden revoke list' lists
it; through the admin API it needs the Revoke grant.
--subject revokes every token of a principal issued before --before, with
or without a jti: ISSUER is the issuer's configured name or its URL (as
x-warden-issuer shows it), ID the token's sub, or its client id for a
client-credentials token — the principal as records and x-warden-principal
show it (corp|alice, dev|svc, User::"corp|alice"), or ApiKey::"NAME" for an
API key. An issuer that is not configured is an error. Times are RFC 3339. --before defaults to now; --exp
(when the token expires, so the entry can be forgotten) defaults to 7 days
from now.
With --server (or a config with the memory store and an admin API), the
revocation goes through a running Warden's admin API; otherwise it is
written to the config's Redis store. Admin flags: --token-file, --ca-file,
--cert-file, --key-file.`

// revocations is where revocations are written: the Redis store, or a
// server's admin API.
type revocations interface {
	Revoke(ctx context.Context, r ratelimit.Revocation) error
	List(ctx context.Context, now time.Time) ([]ratelimit.Revocation, error)
	Unrevoke(ctx context.Context, kind ratelimit.RevocationKind, id string) error
	Close() error
}

type adminRevocations struct {
	c     adminv1.AdminServiceClient
	close func() error
	// done is the revocation as the server recorded it (its subject read
	// against the server's issuers).
	done *ratelimit.Revocation
}

func (a adminRevocations) Revoke(ctx context.Context, r ratelimit.Revocation) error {
	req := &adminv1.RevokeRequest{}
	if r.Kind == ratelimit.RevokeJTI {
		req.Target = &adminv1.RevokeRequest_Token{Token: &adminv1.RevokeToken{Jti: r.ID, Expires: timestamppb.New(r.Until)}}
	} else {
		req.Target = &adminv1.RevokeRequest_Subject{Subject: &adminv1.RevokeSubject{Subject: r.ID, Before: timestamppb.New(r.Before)}}
	}
	resp, err := a.c.Revoke(ctx, req)
	if err != nil {
		return adminError(err)
	}
	*a.done = admin.RevocationFromProto(resp.GetRevocation())
	return nil
}

func (a adminRevocations) List(ctx context.Context, _ time.Time) ([]ratelimit.Revocation, error) {
	resp, err := a.c.ListRevocations(ctx, &adminv1.ListRevocationsRequest{})
	if err != nil {
		return nil, adminError(err)
	}
	out := make([]ratelimit.Revocation, len(resp.Revocations))
	for i, r := range resp.Revocations {
		out[i] = admin.RevocationFromProto(r)
	}
	return out, nil
}

func (a adminRevocations) Unrevoke(ctx context.Context, kind ratelimit.RevocationKind, id string) error {
	resp, err := a.c.Unrevoke(ctx, &adminv1.UnrevokeRequest{Kind: string(kind), Id: id})
	if err != nil {
		return adminError(err)
	}
	*a.done = admin.RevocationFromProto(resp.GetRevocation())
	return nil
}

func (a adminRevocations) Close() error { return a.close() }

// openRevocations opens where revocations go, with the local config (nil
// with --server).
func openRevocations(cfgFile string, af *adminFlags) (revocations, *config.Config, error) {
	cfg, err := af.config(cfgFile)
	if err != nil {
		return nil, nil, err
	}
	if cfg != nil {
		switch {
		case cfg.Store.Kind == "redis":
			st, err := server.NewRedisStore(cfg, nil, server.CLIRedisTimeout)
			return st, cfg, err
		case !cfg.Admin.Enabled():
			return nil, nil, fmt.Errorf("%s uses the memory store, which lives inside one 'warden serve' process, and has no admin API to reach it;\n"+
				"enable admin (admin.token_file) and use --server, or use store.kind: redis (shared by every replica and kept across restarts)", cfg.File)
		}
	}
	c, closer, err := af.dial(cfg)
	if err != nil {
		return nil, nil, err
	}
	return adminRevocations{c: c, close: closer, done: new(ratelimit.Revocation)}, cfg, nil
}

func cmdRevoke(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	list := len(args) > 0 && args[0] == "list"
	if list {
		args = args[1:]
	}
	fs := newFlags("revoke", stderr)
	cfgFile := fs.String("config", "", "config whose store is written (default: $WARDEN_CONFIG)")
	jti := fs.String("jti", "", "revoke the token with this jti")
	exp := fs.String("exp", "", "the token's expiry (RFC 3339)")
	subject := fs.String("subject", "", "revoke every token of the principal ISSUER|ID issued before --before")
	before := fs.String("before", "", "cut-off time (RFC 3339, default now)")
	output := fs.String("output", "table", "list output: table or json")
	undo := fs.Bool("undo", false, "take back the revocation of --jti or --subject (unrevoke)")
	af := addAdminFlags(fs)
	if code, stop := parseFlags(fs, args); stop {
		return code
	}
	if (!list && (*jti == "") == (*subject == "")) || (list && *undo) || (*undo && (*exp != "" || *before != "")) {
		fmt.Fprintln(stderr, revokeUsage)
		return exitError
	}
	store, cfg, err := openRevocations(*cfgFile, af)
	if err != nil {
		printErrors(stderr, fmt.Errorf("warden revoke: %w", err))
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
			printJSON(stdout, rs)
			return exitOK
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "KIND\tID\tUNTIL/BEFORE")
		for _, r := range rs {
			t := r.Until
			if r.Kind == ratelimit.RevokeSubject {
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
	if *undo {
		kind, id := ratelimit.RevokeJTI, *jti
		if *subject != "" {
			kind, id = ratelimit.RevokeSubject, *subject
			if cfg != nil { // else the server reads it against its issuers
				if id, err = cfg.Identity.RevocationSubject(id); err != nil {
					fmt.Fprintf(stderr, "warden revoke --undo: --subject %v\n", err)
					return exitError
				}
			}
		}
		if err := store.Unrevoke(ctx, kind, id); err != nil {
			fmt.Fprintf(stderr, "warden revoke --undo: %v\n", err)
			return exitError
		}
		if a, ok := store.(adminRevocations); ok { // as the server read it
			kind, id = a.done.Kind, a.done.ID
		}
		fmt.Fprintf(stdout, "unrevoked %s %s\n", kind, id)
		return exitOK
	}
	var r ratelimit.Revocation
	if *jti != "" {
		until, ok := parse("exp", *exp, time.Now().Add(ratelimit.RevocationTTL))
		if !ok {
			return exitError
		}
		r = ratelimit.Revocation{Kind: ratelimit.RevokeJTI, ID: *jti, Until: until}
	} else {
		id := *subject
		if cfg != nil { // else the server reads it against its issuers
			if id, err = cfg.Identity.RevocationSubject(id); err != nil {
				fmt.Fprintf(stderr, "warden revoke: --subject %v\n", err)
				return exitError
			}
		}
		b, ok := parse("before", *before, time.Now())
		if !ok {
			return exitError
		}
		r = ratelimit.Revocation{Kind: ratelimit.RevokeSubject, ID: id, Before: b}
	}
	if err := store.Revoke(ctx, r); err != nil {
		fmt.Fprintf(stderr, "warden revoke: %v\n", err)
		return exitError
	}
	if a, ok := store.(adminRevocations); ok {
		r = *a.done
	}
	fmt.Fprintf(stdout, "revoked %s %s\n", r.Kind, r.ID)
	return exitOK
}
