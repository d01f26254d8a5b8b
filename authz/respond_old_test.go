package authz

// The response builders as they were before the pooled, pre-sized
// response (issue 18): the differential tests hold the new ones to them.

import (
	"encoding/json"
	"fmt"
	"strconv"
	"unicode/utf8"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/wardenauthz/warden/authz/decisionlog"
	"github.com/wardenauthz/warden/identity"
	"github.com/wardenauthz/warden/internal/credential"
	"github.com/wardenauthz/warden/ratelimit"
)

// setOld is the old set: its own BoolValue per header.
func setOld(key, value string) *corev3.HeaderValueOption {
	//lint:ignore SA1019 Envoy ≤ 1.36 reads only append (ENVOY.md)
	return &corev3.HeaderValueOption{Header: &corev3.HeaderValue{Key: key, Value: value}, Append: wrapperspb.Bool(false)}
}

// oldHeaderSlab is the old headerSlab.
type oldHeaderSlab struct{}

func newHeaderSlabOld(int) oldHeaderSlab { return oldHeaderSlab{} }

func (*oldHeaderSlab) set(key, value string) *corev3.HeaderValueOption { return setOld(key, value) }

// deny is the response to a denial; rec is its record (record).
func (a *Authorizer) denyOld(rec *decisionlog.Record, d *denial) *authv3.CheckResponse {
	m := mapping[d.reason]
	status := rec.Status
	// The detail and the challenge may quote the request (a path
	// parameter, a token error): what leaves Warden goes through the same
	// redaction as records (the record is redacted when it is bound).
	detail, _ := credential.Redact(d.detail, false)
	body, _ := json.Marshal(problem{Type: ProblemType(d.reason), Title: m.title, Status: status, Detail: detail, DecisionID: rec.DecisionID})
	headers := []*corev3.HeaderValueOption{
		setOld("content-type", "application/problem+json"),
		setOld("cache-control", "no-store"),
		setOld(a.h.decisionID, rec.DecisionID),
	}
	if d.www != "" {
		www, _ := credential.Redact(d.www, false)
		headers = append(headers, setOld("www-authenticate", www))
	}
	if d.retryAfter > 0 {
		headers = append(headers, setOld("retry-after", strconv.Itoa(ceilSeconds(d.retryAfter))))
	}
	if d.rateLimit.Matched() {
		addRateLimitHeadersOld(&headers, d.rateLimit)
	}
	if d.dpopNonce != "" {
		headers = append(headers, setOld("dpop-nonce", d.dpopNonce))
	}
	return &authv3.CheckResponse{
		Status: &rpcstatus.Status{Code: int32(m.code), Message: string(d.reason)},
		HttpResponse: &authv3.CheckResponse_DeniedResponse{DeniedResponse: &authv3.DeniedHttpResponse{
			Status:  &typev3.HttpStatus{Code: typev3.StatusCode(status)},
			Headers: headers,
			Body:    string(body),
		}},
		DynamicMetadata: metadataOld(rec),
	}
}

// allow is the response to an allow: the identity headers (the groups and
// scopes as id.Token's view carries them), the client's spoofed ones
// removed, and rl's rate-limit headers (when rl matched); rec is its record.
func (a *Authorizer) allowOld(rec *decisionlog.Record, in *request, id *identity.Identity, rl ratelimit.Decision) *authv3.CheckResponse {
	ok := &authv3.OkHttpResponse{Headers: make([]*corev3.HeaderValueOption, 0, 7)}
	slab := newHeaderSlabOld(7)
	add := func(name, value string) {
		if value != "" && validValue(value) {
			ok.Headers = append(ok.Headers, slab.set(name, value))
		}
	}
	add(a.h.principal, rec.Principal)
	if t := id.Token; t != nil {
		add(a.h.subject, t.Sub)
		add(a.h.issuer, t.Iss)
		add(a.h.groups, t.GroupsHeader())
		add(a.h.scopes, t.ScopesHeader())
	}
	if id.Peer != nil {
		add(a.h.workload, id.Peer.ID)
	}
	add(a.h.decisionID, rec.DecisionID)
	// Strip every client-sent header under our prefix, in any spelling
	// (underPrefix), that we did not set: the upstream must be able to trust
	// them.
	for _, h := range in.headers {
		if !a.h.underPrefix(h.Name) {
			continue
		}
		ours := false
		for _, o := range ok.Headers {
			ours = ours || o.Header.Key == h.Name
		}
		if !ours {
			ok.HeadersToRemove = append(ok.HeadersToRemove, h.Name)
		}
	}
	// An API key is Warden's credential, never the upstream's: stripped
	// whatever forward_authorization says (tokens, introspected ones too,
	// follow it: an upstream may present them onward).
	if (!a.o.ForwardAuthorization || id.Credential == identity.CredentialAPIKey) && in.authorization != "" {
		ok.HeadersToRemove = append(ok.HeadersToRemove, "authorization")
	}
	if rl.Matched() {
		addRateLimitHeadersOld(&ok.ResponseHeadersToAdd, rl)
	}
	return &authv3.CheckResponse{
		Status:          &rpcstatus.Status{Code: int32(codes.OK)},
		HttpResponse:    &authv3.CheckResponse_OkResponse{OkResponse: ok},
		DynamicMetadata: metadataOld(rec),
	}
}

// addRateLimitHeaders adds RateLimit-Policy and RateLimit
// (draft-ietf-httpapi-ratelimit-headers) and, when denied, Retry-After.
func addRateLimitHeadersOld(dst *[]*corev3.HeaderValueOption, d ratelimit.Decision) {
	*dst = append(*dst,
		setOld("ratelimit-policy", fmt.Sprintf(`"%s";q=%d;w=%d`, d.Rule, d.Limit, ceilSeconds(d.Window))),
		setOld("ratelimit", fmt.Sprintf(`"%s";r=%d;t=%d`, d.Rule, d.Remaining, ceilSeconds(d.Reset))))
	if !d.Allowed {
		for _, h := range *dst {
			if h.Header.Key == "retry-after" {
				return
			}
		}
		*dst = append(*dst, setOld("retry-after", strconv.Itoa(ceilSeconds(d.RetryAfter))))
	}
}

// metadata is the dynamic metadata Envoy's access log sees, built directly
// (structpb.NewStruct would go through map[string]any and a type switch).
// Like NewStruct, it gives none when a string is not valid UTF-8 (proto3
// could not marshal the response).
func metadataOld(rec *decisionlog.Record) *structpb.Struct {
	for _, s := range []string{rec.DecisionID, rec.Principal, string(rec.Reason), rec.Action, rec.Resource} {
		if !utf8.ValidString(s) {
			return nil
		}
	}
	// The values come from two slabs rather than two allocations each.
	n := 5 + len(rec.Policies)
	vals := make([]structpb.Value, n)
	strs := make([]structpb.Value_StringValue, n)
	str := func(i int, s string) *structpb.Value {
		strs[i].StringValue = s
		vals[i].Kind = &strs[i]
		return &vals[i]
	}
	policies := make([]*structpb.Value, len(rec.Policies))
	for i, p := range rec.Policies {
		if !utf8.ValidString(p) {
			return nil
		}
		policies[i] = str(5+i, p)
	}
	md := &structpb.Struct{Fields: map[string]*structpb.Value{
		"decision_id": str(0, rec.DecisionID),
		"principal":   str(1, rec.Principal),
		"policies":    structpb.NewListValue(&structpb.ListValue{Values: policies}),
		"reason":      str(2, string(rec.Reason)),
		"action":      str(3, rec.Action),
		"resource":    str(4, rec.Resource),
	}}
	if len(rec.Errors) > 0 { // the policies that errored ("id: message")
		// Cedar's messages quote the values they failed on (a header, a
		// claim): redacted as in records, so that Envoy's access log and
		// `warden check` never see a credential. Errors deny, so this cost
		// is off the allow path.
		errs := make([]*structpb.Value, len(rec.Errors))
		for i, e := range rec.Errors {
			if !utf8.ValidString(e) {
				return nil
			}
			e, _ = credential.Redact(e, false)
			errs[i] = structpb.NewStringValue(e)
		}
		md.Fields["errors"] = structpb.NewListValue(&structpb.ListValue{Values: errs})
	}
	return md
}
