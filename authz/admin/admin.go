// Package admin serves Warden's admin API (proto/warden/admin/v1): decision
// log queries, revocations and policy status, each method granted to a
// caller by a bearer token file or an mTLS client list, and dials it for
// the CLI.
package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/wardenauthz/warden/authz/decisionlog"
	"github.com/wardenauthz/warden/policy"
	adminv1 "github.com/wardenauthz/warden/proto/warden/admin/v1"
	"github.com/wardenauthz/warden/ratelimit"
)

// Page sizes of QueryDecisions.
const (
	DefaultPageSize = 100
	MaxPageSize     = 1000
)

// Service implements adminv1.AdminServiceServer.
type Service struct {
	adminv1.UnimplementedAdminServiceServer
	Logs     decisionlog.LogSource
	Store    ratelimit.Store
	Policies *policy.Engine
	Node     string
	Now      func() time.Time
	// Subjects reads a subject to revoke into the principal id revocations
	// are keyed on, refusing an unknown issuer
	// (identity.Config.RevocationSubject).
	Subjects func(string) (string, error)
	// Sync, when set, writes out this replica's queued decision records
	// before a query (decisionlog.DecisionLog.Sync), so that a decision
	// made before the query is in its answer.
	Sync func(context.Context) error
	// MaxQueries bounds the decision queries computed at once (default
	// DefaultMaxQueries), MaxQueriesPerCaller one caller's (default 1);
	// past them a query is refused RESOURCE_EXHAUSTED, never queued.
	MaxQueries, MaxQueriesPerCaller int
	// MaxScan bounds the records one query reads (default DefaultMaxScan),
	// ScanTimeout its time (default DefaultScanTimeout). A query stopped
	// by either answers what it found with scan_bound_reached and a
	// next_page_token that continues.
	MaxScan     int
	ScanTimeout time.Duration

	once    sync.Once
	queries *Slots
}

// Defaults of Service's query bounds (the console's window views have the
// same).
const (
	DefaultMaxQueries  = 2
	DefaultMaxScan     = 20000
	DefaultScanTimeout = 20 * time.Second
)

// syncWait bounds how long a query waits for the queued records.
const syncWait = time.Second

func (s *Service) init() {
	s.once.Do(func() {
		if s.MaxQueries <= 0 {
			s.MaxQueries = DefaultMaxQueries
		}
		if s.MaxQueriesPerCaller <= 0 {
			s.MaxQueriesPerCaller = 1
		}
		if s.MaxScan <= 0 {
			s.MaxScan = DefaultMaxScan
		}
		if s.ScanTimeout <= 0 {
			s.ScanTimeout = DefaultScanTimeout
		}
		s.queries = NewSlots(s.MaxQueries, s.MaxQueriesPerCaller)
	})
}

// Slots bound what runs at once: max in all, perCaller for one caller
// (QueryDecisions here; the console's live and window views).
type Slots struct {
	max, perCaller int
	mu             sync.Mutex
	open           int
	by             map[string]int
}

// NewSlots bounds calls to max at once, perCaller for one caller.
func NewSlots(max, perCaller int) *Slots {
	return &Slots{max: max, perCaller: perCaller, by: map[string]int{}}
}

// Take takes a slot for who; release gives it back. ok is false when all
// slots, or who's, are taken.
func (s *Slots) Take(who string) (release func(), ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.open >= s.max || s.by[who] >= s.perCaller {
		return nil, false
	}
	s.open++
	s.by[who]++
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.open--
		if s.by[who]--; s.by[who] == 0 {
			delete(s.by, who)
		}
	}, true
}

type callerKey struct{}

// WithCaller returns ctx naming the admin caller (the Guard's name for it:
// a client ID or token:FILE:LINE); the query bounds count per caller.
func WithCaller(ctx context.Context, who string) context.Context {
	return context.WithValue(ctx, callerKey{}, who)
}

// CallerOf is the caller WithCaller named ("" when none).
func CallerOf(ctx context.Context) string {
	who, _ := ctx.Value(callerKey{}).(string)
	return who
}

// QueryDecisions implements adminv1.AdminServiceServer.
func (s *Service) QueryDecisions(ctx context.Context, req *adminv1.QueryDecisionsRequest) (*adminv1.QueryDecisionsResponse, error) {
	f, err := FilterFromProto(req, s.Now())
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	size := int(req.GetPageSize())
	switch {
	case size < 0:
		return nil, status.Error(codes.InvalidArgument, "page_size must not be negative")
	case size == 0:
		size = DefaultPageSize
	case size > MaxPageSize:
		size = MaxPageSize
	}
	s.init()
	release, ok := s.queries.Take(CallerOf(ctx))
	if !ok {
		return nil, status.Errorf(codes.ResourceExhausted, "too many decision queries under way (%d at once, %d per caller): try again shortly", s.MaxQueries, s.MaxQueriesPerCaller)
	}
	defer release()
	behind := false
	if s.Sync != nil {
		// Past syncWait the query answers with what is written, and says
		// so (log_behind): before, a stalled sink made it answer OK
		// without decisions made before it (session-12 outside attack F3).
		sctx, cancel := context.WithTimeout(ctx, syncWait)
		behind = s.Sync(sctx) != nil && ctx.Err() == nil
		cancel()
	}
	qctx, cancel := context.WithTimeout(ctx, s.ScanTimeout)
	defer cancel()
	var recs []*decisionlog.Record
	var next string
	capped := false
	if b, ok := s.Logs.(decisionlog.BoundedQuerier); ok {
		recs, next, _, capped, err = b.QueryBounded(qctx, f, size, req.GetPageToken(), s.MaxScan)
	} else {
		recs, next, err = s.Logs.Query(qctx, f, size, req.GetPageToken())
	}
	switch {
	case errors.Is(err, decisionlog.ErrBadCursor):
		return nil, status.Error(codes.InvalidArgument, "page_token: not one this server issued")
	case err != nil && ctx.Err() == nil && qctx.Err() != nil:
		return nil, status.Errorf(codes.Unavailable, "decision log (%s): the query read nothing in %s: try again shortly", s.Logs.Kind(), s.ScanTimeout)
	case err != nil:
		return nil, status.Errorf(codes.Unavailable, "decision log (%s): %v", s.Logs.Kind(), err)
	}
	out := &adminv1.QueryDecisionsResponse{NextPageToken: next, Source: s.Logs.Kind(), ScanBoundReached: capped, LogBehind: behind}
	for _, r := range recs {
		out.Decisions = append(out.Decisions, DecisionToProto(r))
	}
	return out, nil
}

// FilterFromProto checks a query's filters (every problem at once); since
// defaults to 15 minutes before now.
func FilterFromProto(req *adminv1.QueryDecisionsRequest, now time.Time) (decisionlog.Filter, error) {
	f := decisionlog.Filter{Since: now.Add(-15 * time.Minute), Decision: req.GetDecision(), Principal: req.GetPrincipal(),
		Action: req.GetAction(), Status: int(req.GetStatus()), DecisionID: req.GetDecisionId(),
		Reason: decisionlog.Reason(req.GetReason()), Resource: req.GetResource(), Policy: req.GetPolicy(), Node: req.GetNode()}
	if req.Since != nil {
		if err := req.Since.CheckValid(); err != nil {
			return f, errors.New("since: " + err.Error())
		}
		f.Since = req.Since.AsTime()
	}
	if req.Until != nil {
		if err := req.Until.CheckValid(); err != nil {
			return f, errors.New("until: " + err.Error())
		}
		f.Until = req.Until.AsTime()
	}
	return f.Check()
}

// Revoke implements adminv1.AdminServiceServer.
func (s *Service) Revoke(ctx context.Context, req *adminv1.RevokeRequest) (*adminv1.RevokeResponse, error) {
	now := s.Now()
	var r ratelimit.Revocation
	switch t := req.Target.(type) {
	case *adminv1.RevokeRequest_Token:
		if t.Token.GetJti() == "" {
			return nil, status.Error(codes.InvalidArgument, "token.jti is required")
		}
		r = ratelimit.Revocation{Kind: ratelimit.RevokeJTI, ID: t.Token.GetJti(), Until: now.Add(ratelimit.RevocationTTL)}
		if e := t.Token.GetExpires(); e != nil {
			r.Until = e.AsTime()
		}
	case *adminv1.RevokeRequest_Subject:
		if s.Subjects == nil {
			return nil, status.Error(codes.FailedPrecondition, "this server cannot read subjects (no issuers)")
		}
		sub, err := s.Subjects(t.Subject.GetSubject())
		if err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "subject %v", err)
		}
		r = ratelimit.Revocation{Kind: ratelimit.RevokeSubject, ID: sub, Before: now}
		if b := t.Subject.GetBefore(); b != nil {
			r.Before = b.AsTime()
		}
	default:
		return nil, status.Error(codes.InvalidArgument, "set token or subject")
	}
	if err := s.Store.Revoke(ctx, r); err != nil {
		return nil, status.Errorf(codes.Unavailable, "store: %v", err)
	}
	return &adminv1.RevokeResponse{Revocation: RevocationToProto(r)}, nil
}

// Unrevoke implements adminv1.AdminServiceServer: it takes back one
// revocation as ListRevocations lists it (kind and id).
func (s *Service) Unrevoke(ctx context.Context, req *adminv1.UnrevokeRequest) (*adminv1.UnrevokeResponse, error) {
	kind, id := ratelimit.RevocationKind(req.GetKind()), req.GetId()
	var errs []string
	if kind != ratelimit.RevokeJTI && kind != ratelimit.RevokeSubject {
		errs = append(errs, fmt.Sprintf("kind %q: want jti or subject", req.GetKind()))
	}
	switch {
	case id == "":
		errs = append(errs, "id is required")
	case len(id) > MaxRevocationID:
		errs = append(errs, fmt.Sprintf("id: longer than %d bytes", MaxRevocationID))
	case strings.ContainsFunc(id, unicode.IsControl) || !utf8.ValidString(id):
		errs = append(errs, "id: control characters or invalid UTF-8")
	}
	if len(errs) > 0 {
		return nil, status.Error(codes.InvalidArgument, strings.Join(errs, "; "))
	}
	if kind == ratelimit.RevokeSubject && s.Subjects != nil {
		// Read as Revoke reads it (User::"corp|alice" is corp|alice); an id
		// this server cannot read (its issuer since removed) is taken as
		// listed.
		if sub, err := s.Subjects(id); err == nil {
			id = sub
		}
	}
	if err := s.Store.Unrevoke(ctx, kind, id); err != nil {
		return nil, status.Errorf(codes.Unavailable, "store: %v", err)
	}
	return &adminv1.UnrevokeResponse{Revocation: &adminv1.Revocation{Kind: string(kind), Id: id}}, nil
}

// MaxRevocationID bounds an Unrevoke id (a jti, or ISSUER|ID).
const MaxRevocationID = 4096

// ListRevocations implements adminv1.AdminServiceServer.
func (s *Service) ListRevocations(ctx context.Context, _ *adminv1.ListRevocationsRequest) (*adminv1.ListRevocationsResponse, error) {
	rs, err := s.Store.List(ctx, s.Now())
	if err != nil {
		return nil, status.Errorf(codes.Unavailable, "store: %v", err)
	}
	out := &adminv1.ListRevocationsResponse{}
	for _, r := range rs {
		out.Revocations = append(out.Revocations, RevocationToProto(r))
	}
	return out, nil
}

// PolicyStatus implements adminv1.AdminServiceServer.
func (s *Service) PolicyStatus(context.Context, *adminv1.PolicyStatusRequest) (*adminv1.PolicyStatusResponse, error) {
	set := s.Policies.Current()
	loaded, last, lastErr := s.Policies.Status()
	out := &adminv1.PolicyStatusResponse{Node: s.Node, Policies: int32(set.Len()),
		LoadedAt: timestamppb.New(loaded), LastReloadAt: timestamppb.New(last)}
	if lastErr != nil {
		out.LastReloadError = lastErr.Error()
	}
	for _, p := range set.Policies() {
		eff := "permit"
		if p.Forbid {
			eff = "forbid"
		}
		out.Policy = append(out.Policy, &adminv1.PolicyStatusResponse_Policy{Id: p.ID, Effect: eff, Position: p.Position})
	}
	return out, nil
}

func ts(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

func tm(t *timestamppb.Timestamp) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.AsTime()
}

// RevocationToProto converts a revocation.
func RevocationToProto(r ratelimit.Revocation) *adminv1.Revocation {
	return &adminv1.Revocation{Kind: string(r.Kind), Id: r.ID, Until: ts(r.Until), Before: ts(r.Before)}
}

// RevocationFromProto converts a revocation back.
func RevocationFromProto(r *adminv1.Revocation) ratelimit.Revocation {
	return ratelimit.Revocation{Kind: ratelimit.RevocationKind(r.GetKind()), ID: r.GetId(), Until: tm(r.GetUntil()), Before: tm(r.GetBefore())}
}

// DecisionToProto converts a decision record.
func DecisionToProto(r *decisionlog.Record) *adminv1.Decision {
	d := &adminv1.Decision{
		Time: ts(r.Time), DecisionId: r.DecisionID, Decision: string(r.Decision), Status: int32(r.Status), Reason: string(r.Reason),
		Policies: r.Policies, Errors: r.Errors, Principal: r.Principal, Action: r.Action, Resource: r.Resource,
		Request: &adminv1.Decision_Request{Method: r.Request.Method, Host: r.Request.Host, Path: r.Request.Path,
			SourceIp: r.Request.SourceIP, RequestId: r.Request.RequestID},
		Workload: r.Workload, LatencyUs: r.LatencyUS, Node: r.Node, Detail: r.Detail,
	}
	if t := r.Token; t != nil {
		d.Token = &adminv1.Decision_Token{Iss: t.Iss, Jti: t.Jti, Exp: ts(t.Exp)}
	}
	if rl := r.RateLimit; rl != nil {
		d.Ratelimit = &adminv1.Decision_RateLimit{Rule: rl.Rule, Remaining: int32(rl.Remaining)}
	}
	if r.Cedar != nil {
		if b, err := json.Marshal(r.Cedar); err == nil {
			d.CedarJson = string(b)
		}
	}
	return d
}

// RecordFromProto converts a decision back to a record.
func RecordFromProto(d *adminv1.Decision) *decisionlog.Record {
	q := d.GetRequest()
	r := &decisionlog.Record{
		Time: tm(d.GetTime()), DecisionID: d.GetDecisionId(), Decision: decisionlog.Decision(d.GetDecision()), Status: int(d.GetStatus()),
		Reason: decisionlog.Reason(d.GetReason()), Policies: d.GetPolicies(), Errors: d.GetErrors(), Principal: d.GetPrincipal(),
		Action: d.GetAction(), Resource: d.GetResource(),
		Request:  decisionlog.RecordRequest{Method: q.GetMethod(), Host: q.GetHost(), Path: q.GetPath(), SourceIP: q.GetSourceIp(), RequestID: q.GetRequestId()},
		Workload: d.GetWorkload(), LatencyUS: d.GetLatencyUs(), Node: d.GetNode(), Detail: d.GetDetail(),
	}
	if r.Policies == nil {
		r.Policies = []string{}
	}
	if t := d.GetToken(); t != nil {
		r.Token = &decisionlog.RecordToken{Iss: t.GetIss(), Jti: t.GetJti(), Exp: tm(t.GetExp())}
	}
	if rl := d.GetRatelimit(); rl != nil {
		r.RateLimit = &decisionlog.RecordRateLimit{Rule: rl.GetRule(), Remaining: int(rl.GetRemaining())}
	}
	if c := d.GetCedarJson(); c != "" {
		var l policy.Logged
		if json.Unmarshal([]byte(c), &l) == nil {
			r.Cedar = &l
		}
	}
	return r
}
