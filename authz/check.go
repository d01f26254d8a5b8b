package authz

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/cedar-policy/cedar-go"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	"google.golang.org/grpc"

	"github.com/wardenauthz/warden/authz/decisionlog"
	"github.com/wardenauthz/warden/identity"
	"github.com/wardenauthz/warden/policy"
	"github.com/wardenauthz/warden/ratelimit"
)

// Authenticator says who is calling.
type Authenticator interface {
	Authenticate(ctx context.Context, in identity.Input) (identity.Identity, error)
}

// Policies gives the policy set in service.
type Policies interface {
	Current() *policy.Set
}

// Revocations says whether a token is revoked.
type Revocations interface {
	Revoked(ctx context.Context, subject, jti string, iat time.Time) (bool, error)
}

// RateLimiter applies the rate-limit rules.
type RateLimiter interface {
	Allow(ctx context.Context, r *ratelimit.Request) (ratelimit.Decision, error)
}

// Recorder receives decision records; it must not block.
type Recorder interface {
	Record(r *decisionlog.Record)
}

// Options configure an Authorizer.
type Options struct {
	Authenticator Authenticator
	Policies      Policies
	Revocations   Revocations // nil: no revocation stage
	RateLimiter   RateLimiter // nil: no rate limiting
	Recorder      Recorder    // nil: no decision log
	Metrics       *Metrics    // nil: no metrics
	Logger        *slog.Logger
	// Tracer makes a span per Check, continuing the request's traceparent.
	// Nil: no tracing.
	Tracer trace.Tracer
	Now    func() time.Time
	Node   string

	ForwardAuthorization bool
	HeadersPrefix        string
	RevocationFailOpen   bool
	RateLimitFailOpen    bool
	// SampleAllow is the fraction of allows recorded (deny is always).
	SampleAllow float64
	// Limits bound what a CheckRequest may carry; zero fields are unlimited.
	Limits Limits
}

// Limits bound the headers and body Warden considers. A request over one is
// denied (431 or 413) before any credential is looked at.
// It is also the config's server.limits.
type Limits struct {
	MaxHeaders     int `yaml:"max_headers"`      // header fields as Envoy sent them, pseudo-headers included
	MaxHeaderBytes int `yaml:"max_header_bytes"` // their names and values
	MaxBodyBytes   int `yaml:"max_body_bytes"`   // body or raw_body (with_request_body)
}

// headersOver reports whether count header fields of size bytes are over
// l (screen then refuses them).
func (l Limits) headersOver(count, bytes int) bool {
	return l.MaxHeaders > 0 && count > l.MaxHeaders || l.MaxHeaderBytes > 0 && bytes > l.MaxHeaderBytes
}

// screen is the first stage: a request over the limits is refused unread.
func (l Limits) screen(in *request) *denial {
	switch {
	case l.MaxHeaders > 0 && in.headerCount > l.MaxHeaders:
		return &denial{reason: ReasonRequestInvalid, status: http.StatusRequestHeaderFieldsTooLarge,
			detail: fmt.Sprintf("%d header fields: the limit is %d", in.headerCount, l.MaxHeaders)}
	case l.MaxHeaderBytes > 0 && in.headerBytes > l.MaxHeaderBytes:
		return &denial{reason: ReasonRequestInvalid, status: http.StatusRequestHeaderFieldsTooLarge,
			detail: fmt.Sprintf("%d bytes of headers: the limit is %d", in.headerBytes, l.MaxHeaderBytes)}
	case extensionsOver(in.extCount, in.extBytes):
		return &denial{reason: ReasonRequestInvalid, status: http.StatusBadRequest,
			detail: fmt.Sprintf("%d context extensions of %d bytes: the limit is %d of %d bytes", in.extCount, in.extBytes, maxExtensions, maxExtensionBytes)}
	case l.MaxBodyBytes > 0 && in.bodyBytes > l.MaxBodyBytes:
		return &denial{reason: ReasonRequestInvalid, status: http.StatusRequestEntityTooLarge,
			detail: fmt.Sprintf("%d bytes of body: the limit is %d", in.bodyBytes, l.MaxBodyBytes)}
	}
	return nil
}

// Live is what a warden.yaml reload changes together with the routes:
// attached to the policy set (policy.Engine.Attach), so that a Check uses
// the rate-limit rules of the same generation as its routes and policies.
type Live struct {
	RateLimiter RateLimiter // nil: no rate limiting
}

// Authorizer runs the pipeline. It is safe for concurrent use.
type Authorizer struct {
	o Options
	h headerNames
	// sampleAllow is o.SampleAllow, changed by SetSampleAllow.
	sampleAllow atomic.Uint64
	// grpcInfo and grpcHandler are what RegisterGRPC gives the server's
	// interceptor for every Check.
	grpcInfo    *grpc.UnaryServerInfo
	grpcHandler grpc.UnaryHandler
	// traced: o.Tracer was given. Without it no Check reads the request's
	// traceparent or starts a span (a no-op tracer's span is dropped
	// anyway: 2% of the CPU at 5,000 Checks/s went to that).
	traced bool
}

// SetSampleAllow changes the fraction of allows recorded (a reloaded
// decision_log.sample_allow).
func (a *Authorizer) SetSampleAllow(f float64) { a.sampleAllow.Store(math.Float64bits(f)) }

// New builds an Authorizer.
func New(o Options) *Authorizer {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.HeadersPrefix == "" {
		o.HeadersPrefix = "x-warden-"
	}
	traced := o.Tracer != nil
	if !traced {
		o.Tracer = noop.NewTracerProvider().Tracer("")
	}
	a := &Authorizer{o: o, h: newHeaderNames(o.HeadersPrefix), traced: traced}
	a.SetSampleAllow(o.SampleAllow)
	return a
}

// Outcome is the result of one Check: the response for Envoy and the record.
type Outcome struct {
	Response *authv3.CheckResponse
	Record   *decisionlog.Record
	Result   *policy.Result // nil when the request never reached authorization
	// Request is what the policy stage was asked (nil when the request
	// never reached it), for policy.Set.Explain.
	Request *policy.Request

	pooled pooledResponse // Response's slab, for checkWire
}

// Check implements envoy.service.auth.v3.Authorization/Check.
func (a *Authorizer) Check(ctx context.Context, req *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	return a.Evaluate(ctx, req).Response, nil
}

// Evaluate runs the pipeline and returns the response with its record. It
// never fails: an internal fault is a deny (503).
func (a *Authorizer) Evaluate(ctx context.Context, req *authv3.CheckRequest) Outcome {
	return a.evaluate(ctx, inputOf(req, a.o.Limits), 0)
}

// evaluate is Evaluate of a request as read from the message or the wire;
// held is the size of the one allocation its strings share, if they do.
func (a *Authorizer) evaluate(ctx context.Context, ci *checkInput, held int) (out Outcome) {
	start := time.Now()
	now := a.o.Now()
	in := parseInput(ci, now, a.o.Limits)
	in.shared = held
	c := &check{in: &in, decisionID: newDecisionID(), time: now}
	if in.sourceIP.IsValid() {
		c.sourceIP = in.sourceIP.Unmap().String()
	}
	span := trace.SpanFromContext(context.Background()) // not recording
	if a.traced {
		ctx, span = a.o.Tracer.Start(traceContext.Extract(ctx, headerCarrier{&in}), "warden.Check", trace.WithSpanKind(trace.SpanKindServer))
	}
	c.transport = transportOf(ctx)
	defer func() {
		if p := recover(); p != nil {
			a.o.Logger.Error("panic in Check; denying", "panic", fmt.Sprint(p), "decision_id", c.decisionID)
			out = a.concludePanic(c)
		}
		rec := out.Record
		took := time.Since(start)
		rec.LatencyUS = took.Microseconds()
		a.o.Metrics.observe(rec, took)
		if a.o.Recorder != nil && (rec.Decision == Deny || a.sampled()) {
			rec.Hold(in.heldBytes())
			a.o.Recorder.Record(rec)
		}
		if span.IsRecording() {
			span.SetAttributes(
				attribute.String("warden.decision", string(rec.Decision)),
				attribute.String("warden.reason", string(rec.Reason)),
				attribute.String("warden.decision_id", rec.DecisionID),
				attribute.Int("http.response.status_code", rec.Status),
				attribute.String("warden.transport", rec.Transport),
			)
		}
		span.End()
	}()
	d, err := a.run(ctx, c)
	if err != nil {
		a.o.Logger.Error("check failed; denying", "err", err, "decision_id", c.decisionID)
		d = &denial{reason: ReasonUnavailable, detail: "authorization is temporarily unavailable", retryAfter: time.Second}
	}
	return a.conclude(c, d)
}

func (a *Authorizer) sampled() bool {
	s := math.Float64frombits(a.sampleAllow.Load())
	if s >= 1 {
		return true
	}
	if s <= 0 {
		return false
	}
	var b [2]byte
	_, _ = rand.Read(b[:])
	return float64(uint16(b[0])<<8|uint16(b[1]))/65536 < s
}

// check is one Check: the request as read, and what each stage returned
// so far. The stages never write it; run stores their results, and
// conclude makes the record and the response from it alone. (It is a
// struct rather than run's locals so that, after a panic, Evaluate still
// records what the stages had returned.)
type check struct {
	in         *request
	decisionID string
	time       time.Time // the Authorizer's clock when the Check began
	transport  string
	sourceIP   string // in.sourceIP as text, "" when unknown

	// id is what authenticate returned (its Peer even when it denied);
	// authenticated is set when it did not deny.
	id            identity.Identity
	authenticated bool
	// set, req and res are authorize's: the policy set, what it was asked
	// and its answer; nil until it ran.
	set *policy.Set
	req *policy.Request
	res *policy.Result
	// rl is limit's: the rule that applied (zero when none did: see
	// ratelimit.Decision.Matched).
	rl ratelimit.Decision
}

// run is the pipeline (see doc.go): each stage in turn, until one denies.
// A nil denial is an allow. An error is an internal fault (Evaluate denies
// with 503).
func (a *Authorizer) run(ctx context.Context, c *check) (*denial, error) {
	if d := a.screen(ctx, c.in); d != nil {
		return d, nil
	}
	var d *denial
	if c.id, d = a.authenticate(ctx, c.in); d != nil {
		return d, nil
	}
	c.authenticated = true
	if d := a.checkRevocation(ctx, &c.id); d != nil {
		return d, nil
	}
	set, req, res, d, err := a.authorize(c.in, &c.id)
	if err != nil {
		return nil, err
	}
	c.set, c.req, c.res = set, req, &res
	if d != nil {
		return d, nil
	}
	c.rl, d = a.limit(ctx, c.in, c.sourceIP, &c.id, c.set, c.res)
	return d, nil
}

// screen refuses, before any credential is read, a request over the
// limits, one its transport refused (WithRefusal) and an HTTP request
// without a host.
func (a *Authorizer) screen(ctx context.Context, in *request) *denial {
	if d := a.o.Limits.screen(in); d != nil {
		return d
	}
	if d := refused(ctx); d != nil {
		return d
	}
	if !in.network && in.host == "" {
		// Envoy always sends an HTTP request's :authority (it refuses
		// HTTP/1.0 without Host unless configured with a default host).
		return &denial{reason: ReasonRequestInvalid, detail: "malformed request host: no :authority"}
	}
	return nil
}

// authenticate says who is calling: the identity (its Peer is set even when
// it denies), or a denial (anonymous_deny, token_invalid, unavailable).
func (a *Authorizer) authenticate(ctx context.Context, in *request) (identity.Identity, *denial) {
	id, err := a.o.Authenticator.Authenticate(ctx, in.identityInput())
	if err != nil {
		return id, authDenial(err)
	}
	return id, nil
}

// checkRevocation denies a revoked token (token_revoked), or unavailable
// when the revocation state cannot be read (unless
// revocation.fail_open). Revocation is by jti or by principal: id.ID is
// "issuer|sub", or "issuer|client_id" for a client-credentials token; an
// API key's subject is ApiKey::"name".
func (a *Authorizer) checkRevocation(ctx context.Context, id *identity.Identity) *denial {
	subject, jti, iat, ok := id.RevocationTarget()
	if !ok || a.o.Revocations == nil {
		return nil
	}
	revoked, err := a.o.Revocations.Revoked(ctx, subject, jti, iat)
	switch {
	case err != nil && !a.o.RevocationFailOpen:
		a.o.Metrics.storeError("revocation")
		a.o.Logger.Warn("revocation check failed; denying", "err", err)
		return &denial{reason: ReasonUnavailable, detail: "revocation state unavailable", retryAfter: time.Second}
	case err != nil:
		a.o.Metrics.storeError("revocation")
		a.o.Logger.Warn("revocation check failed; allowing (revocation.fail_open)", "err", err)
	case revoked:
		return &denial{reason: ReasonTokenRevoked, detail: "token revoked",
			www: `Bearer error="invalid_token", error_description="token revoked"`}
	}
	return nil
}

// authorize asks the policy set in service about the request: the set, the
// request it was asked and its answer, and the answer's denial (nil for an
// allow; resultDenial). An error is an internal fault (no policy set).
func (a *Authorizer) authorize(in *request, id *identity.Identity) (set *policy.Set, req *policy.Request, res policy.Result, d *denial, err error) {
	set = a.o.Policies.Current()
	if set == nil {
		return nil, nil, res, nil, errors.New("no policy set loaded")
	}
	req = in.policyRequest(id)
	res = set.Decide(req)
	return set, req, res, resultDenial(id, &res), nil
}

// resultDenial is the denial of a policy answer, nil for an allow:
// request_invalid (a path it will not judge), route_unknown,
// policy_error, then the deny of policyDenial.
func resultDenial(id *identity.Identity, res *policy.Result) *denial {
	switch {
	case res.PathError != nil:
		return &denial{reason: ReasonRequestInvalid, detail: res.PathError.Error()}
	case res.RouteUnknown:
		return &denial{reason: ReasonRouteUnknown, detail: "no route of this service matches the request"}
	case res.PolicyError:
		return &denial{reason: ReasonPolicyError, detail: "access denied: a policy could not be evaluated"}
	case !res.Allow:
		return policyDenial(id, res)
	}
	return nil
}

// limit applies the rate-limit rules of the set's generation (Live), else
// Options.RateLimiter: the rule that applied (zero when none matched or
// the store failed open), and rate_limited when it is exhausted, or
// unavailable when the store fails (unless ratelimit.fail_open).
func (a *Authorizer) limit(ctx context.Context, in *request, sourceIP string, id *identity.Identity, set *policy.Set, res *policy.Result) (ratelimit.Decision, *denial) {
	limiter := a.o.RateLimiter
	if l, ok := set.Attached().(*Live); ok && l != nil {
		limiter = l.RateLimiter
	}
	if limiter == nil {
		return ratelimit.Decision{}, nil
	}
	r := rateRequest(in, sourceIP, id, res)
	r.Header, r.Claim = in.header, tokenClaim(id.Token)
	d, err := limiter.Allow(ctx, &r)
	switch {
	case err != nil && !a.o.RateLimitFailOpen:
		a.o.Metrics.storeError("ratelimit")
		a.o.Logger.Warn("rate limit check failed; denying", "err", err)
		return ratelimit.Decision{}, &denial{reason: ReasonUnavailable, detail: "rate limit state unavailable", retryAfter: time.Second}
	case err != nil:
		a.o.Metrics.storeError("ratelimit")
		a.o.Logger.Warn("rate limit check failed; allowing (ratelimit.fail_open)", "err", err)
	case d.Matched() && !d.Allowed:
		return d, &denial{reason: ReasonRateLimited, detail: "rate limit " + d.Rule + " exceeded", retryAfter: d.RetryAfter, rateLimit: d}
	case d.Matched():
		return d, nil
	}
	return ratelimit.Decision{}, nil
}

// conclude makes the outcome of c ending with d (nil: allow): the record,
// filled here and only here, and the response made from it.
func (a *Authorizer) conclude(c *check, d *denial) Outcome {
	rec := a.record(c, d)
	out := Outcome{Record: rec, Result: c.res, Request: c.req}
	if d != nil {
		out.pooled = a.denied(rec, d)
	} else {
		out.pooled = a.allowed(rec, c.in, &c.id, c.rl)
	}
	out.Response = out.pooled.response()
	return out
}

// concludePanic is the outcome of a Check whose stages panicked: a 503
// with the record of what they returned; if making that panics too, the
// record of the request alone.
func (a *Authorizer) concludePanic(c *check) (out Outcome) {
	d := &denial{reason: ReasonUnavailable, detail: "internal error", retryAfter: time.Second}
	defer func() {
		if recover() != nil {
			out = a.conclude(&check{in: c.in, decisionID: c.decisionID, time: c.time, transport: c.transport, sourceIP: c.sourceIP}, d)
		}
	}()
	return a.conclude(c, d)
}

// recordSlab is a record and its token and rate-limit sections in one
// allocation.
type recordSlab struct {
	rec decisionlog.Record
	tok decisionlog.RecordToken
	rl  decisionlog.RecordRateLimit
}

// record is the decision record of c ending with d (nil: allow).
func (a *Authorizer) record(c *check, d *denial) *decisionlog.Record {
	in := c.in
	s := new(recordSlab)
	rec := &s.rec
	*rec = decisionlog.Record{
		Time:       c.time,
		DecisionID: c.decisionID,
		Node:       a.o.Node,
		Request: decisionlog.RecordRequest{
			Method: in.method, Host: in.host, Path: in.pathOnly(), RequestID: in.requestID,
		},
		Transport: c.transport,
	}
	rec.Request.SourceIP = c.sourceIP
	if p := c.id.Peer; p != nil {
		rec.Workload = p.ID
	}
	if t := c.id.Token; t != nil && c.authenticated {
		s.tok = decisionlog.RecordToken{Iss: t.Iss, Jti: t.Jti, Exp: t.Exp}
		rec.Token = &s.tok
	}
	if res := c.res; res != nil {
		if t := c.id.Token; t != nil && t.Principal() == res.Principal {
			rec.Principal = t.PrincipalText()
		}
		if rec.Principal == "" {
			rec.Principal = uidString(res.Principal)
		}
		rec.Action, rec.Resource = c.set.UIDString(res.Action), uidString(res.Resource)
		rec.Policies, rec.Errors = res.Reasons, res.Errors
		rec.Cedar = res.Logged
		if rec.Policies == nil {
			rec.Policies = []string{}
		}
	}
	if rl := c.rl; rl.Matched() {
		s.rl = decisionlog.RecordRateLimit{Rule: rl.Rule, Remaining: rl.Remaining}
		rec.RateLimit = &s.rl
	}
	if d == nil {
		rec.Decision, rec.Status, rec.Reason = Allow, http.StatusOK, ReasonPolicyAllow
	} else {
		rec.Decision, rec.Status, rec.Reason, rec.Detail = Deny, d.httpStatus(), d.reason, d.detail
	}
	return rec
}

// uidString is u.String() (Type::"id", the id escaped as Rust's
// escape_debug does) in one allocation when the id needs no escaping:
// printable ASCII without quotes or backslashes.
func uidString(u cedar.EntityUID) string {
	for i := 0; i < len(u.ID); i++ {
		if c := u.ID[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '\'' {
			return u.String()
		}
	}
	var b strings.Builder
	b.Grow(len(u.Type) + len(u.ID) + 4)
	b.WriteString(string(u.Type))
	b.WriteString(`::"`)
	b.WriteString(string(u.ID))
	b.WriteByte('"')
	return b.String()
}

// authDenial maps an authentication error to a denial.
func authDenial(err error) *denial {
	switch {
	case errors.Is(err, identity.ErrNoCredentials):
		return &denial{reason: ReasonAnonymousDeny, detail: "credentials required", www: `Bearer realm="warden"`}
	case identity.IsUnavailable(err):
		return &denial{reason: ReasonUnavailable, detail: identity.Unavailable(err) + " unavailable", retryAfter: identity.RetryAfter(err, time.Second)}
	}
	if d, ok := dpopDenial(err); ok {
		return d
	}
	desc := describeTokenError(err)
	return &denial{reason: ReasonTokenInvalid, detail: desc, www: `Bearer error="invalid_token", error_description="` + desc + `"`}
}

// describeTokenError is the client-safe description of a token error: the
// sentinel's text only, never token contents.
func describeTokenError(err error) string {
	for _, s := range []error{
		identity.ErrExpired, identity.ErrNotYetValid, identity.ErrIssuedInFuture, identity.ErrTooLarge,
		identity.ErrUnsupportedForm, identity.ErrAlgorithm, identity.ErrUnknownIssuer, identity.ErrUnknownKey,
		identity.ErrSignature, identity.ErrAudience, identity.ErrType, identity.ErrClaims, identity.ErrMalformed,
		identity.ErrCertBound,
	} {
		if errors.Is(err, s) {
			return s.Error()
		}
	}
	return "invalid token"
}

// policyDenial maps a Cedar deny to a denial.
func policyDenial(id *identity.Identity, res *policy.Result) *denial {
	if su := res.StepUp; su != nil {
		www := `Bearer error="insufficient_user_authentication", error_description="stronger authentication required"`
		if len(su.ACR) > 0 {
			www += `, acr_values="` + strings.Join(su.ACR, " ") + `"`
		}
		if su.MaxAge >= 0 {
			www += fmt.Sprintf(", max_age=%d", su.MaxAge)
		}
		return &denial{reason: ReasonStepUp, detail: "stronger authentication required", www: www}
	}
	if id.Kind == identity.Anonymous {
		return &denial{reason: ReasonAnonymousDeny, detail: "credentials required", www: `Bearer realm="warden"`}
	}
	return &denial{reason: ReasonPolicyDeny, status: res.Status, detail: "access denied by policy"}
}

// rateRequest is what the rate-limit rules see of a Check, but for its
// Header and Claim lookups (limit sets them: see there).
func rateRequest(in *request, sourceIP string, id *identity.Identity, res *policy.Result) ratelimit.Request {
	r := ratelimit.Request{
		PrincipalType: id.Kind.String(),
		Principal:     id.ID,
		Groups:        id.Groups,
		Action:        string(res.Action.ID),
		Method:        in.method,
		Service:       res.Service,
		Route:         res.Template,
		SourceIP:      sourceIP,
	}
	if t := id.Token; t != nil {
		r.ClientID = t.ClientID
	}
	return r
}

// tokenClaim is the rate limiter's claim lookup of t (a string claim, ""
// otherwise); nil without a token. It is inlined into its caller.
func tokenClaim(t *identity.Token) func(name string) string {
	if t == nil {
		return nil
	}
	return func(name string) string {
		s, _ := t.Claims[name].(string)
		return s
	}
}

func newDecisionID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// policyRequest builds the policy stage's view of the request.
func (in *request) policyRequest(id *identity.Identity) *policy.Request {
	r := &policy.Request{
		Principal:  policy.Principal{Type: id.Kind.String(), ID: id.ID, Groups: id.Groups},
		Method:     in.method,
		Scheme:     in.scheme,
		Host:       in.host,
		Path:       in.path,
		Protocol:   in.protocol,
		ID:         in.requestID,
		Headers:    in.headers,
		SourceIP:   in.sourceIP,
		SourcePort: in.sourcePort,
		Time:       in.time,
		Extensions: in.extensions,
	}
	if k := id.APIKey; k != nil {
		r.Principal.Attributes = k.Attributes
	}
	if p := id.Peer; p != nil {
		r.Workload = &policy.Workload{ID: p.ID, TrustDomain: p.TrustDomain, Namespace: p.Namespace, ServiceAccount: p.ServiceAccount}
	}
	if t := id.Token; t != nil {
		r.Token = &t.View
	}
	r.Credential = string(id.Credential)
	return r
}
