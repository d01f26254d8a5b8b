package authz

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
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

// headerNames are the identity header names under the configured prefix.
type headerNames struct {
	prefix, principal, subject, issuer, groups, scopes, workload, decisionID string
	// spelling is the prefix as spellingOf reads it.
	spelling string
}

func newHeaderNames(prefix string) headerNames {
	p := strings.ToLower(prefix)
	return headerNames{prefix: p, principal: p + "principal", subject: p + "subject", issuer: p + "issuer",
		groups: p + "groups", scopes: p + "scopes", workload: p + "workload", decisionID: p + "decision-id",
		spelling: spellingOf(p)}
}

// spellingOf is a header name as upstreams read it: case-insensitive, and
// "_" the same as "-" (CGI, WSGI, Rack, PHP and nginx's
// underscores_in_headers turn both into "_", so x_warden_groups reaches an
// application as X-Warden-Groups would).
func spellingOf(name string) string {
	b := []byte(name)
	for i, c := range b {
		switch {
		case 'A' <= c && c <= 'Z':
			b[i] = c + 'a' - 'A'
		case c == '_':
			b[i] = '-'
		}
	}
	return string(b)
}

// underPrefix reports whether a client header name reads as one under the
// identity header prefix in any spelling: x-warden-groups, x_warden_groups,
// X_Warden-Principal.
func (h headerNames) underPrefix(name string) bool {
	return len(name) >= len(h.spelling) && spellingOf(name[:len(h.spelling)]) == h.spelling
}

// problem is an RFC 9457 problem details body.
type problem struct {
	Type       string `json:"type"`
	Title      string `json:"title"`
	Status     int    `json:"status"`
	Detail     string `json:"detail"`
	DecisionID string `json:"decision_id"`
}

// ProblemType is the problem "type" URI of a reason.
func ProblemType(r Reason) string { return "urn:warden:problem:" + string(r) }

// appendFalse is shared by every header option: messages are only read
// (marshalled) once built, which protobuf allows concurrently.
var appendFalse = wrapperspb.Bool(false)

// set is an overwriting header. Envoy ≤ 1.36 honours only the deprecated
// append field (not append_action), so it is set explicitly to false.
func set(key, value string) *corev3.HeaderValueOption {
	//lint:ignore SA1019 Envoy ≤ 1.36 reads only append (ENVOY.md)
	return &corev3.HeaderValueOption{Header: &corev3.HeaderValue{Key: key, Value: value}, Append: appendFalse}
}

// headerSlab hands out the overwriting header options of one response from
// two allocations instead of two per header.
type headerSlab struct {
	opts []corev3.HeaderValueOption
	vals []corev3.HeaderValue
}

func newHeaderSlab(n int) headerSlab {
	return headerSlab{opts: make([]corev3.HeaderValueOption, 0, n), vals: make([]corev3.HeaderValue, 0, n)}
}

// set is set(key, value), from the slab while it lasts.
func (s *headerSlab) set(key, value string) *corev3.HeaderValueOption {
	if len(s.opts) == cap(s.opts) {
		return set(key, value)
	}
	s.vals = append(s.vals, corev3.HeaderValue{Key: key, Value: value})
	s.opts = s.opts[:len(s.opts)+1]
	o := &s.opts[len(s.opts)-1]
	o.Header = &s.vals[len(s.vals)-1]
	//lint:ignore SA1019 Envoy ≤ 1.36 reads only append (ENVOY.md)
	o.Append = appendFalse
	return o
}

// validValue reports whether v can be sent as a header value (no control
// characters; Envoy with validate_mutations would answer 500).
func validValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < 0x20 && c != '\t' || c == 0x7f {
			return false
		}
	}
	return len(v) <= 8192
}

// deny is the response to a denial; rec is its record (record).
func (a *Authorizer) deny(rec *decisionlog.Record, d *denial) *authv3.CheckResponse {
	m := mapping[d.reason]
	status := rec.Status
	// The detail and the challenge may quote the request (a path
	// parameter, a token error): what leaves Warden goes through the same
	// redaction as records (the record is redacted when it is bound).
	detail, _ := credential.Redact(d.detail, false)
	body, _ := json.Marshal(problem{Type: ProblemType(d.reason), Title: m.title, Status: status, Detail: detail, DecisionID: rec.DecisionID})
	headers := []*corev3.HeaderValueOption{
		set("content-type", "application/problem+json"),
		set("cache-control", "no-store"),
		set(a.h.decisionID, rec.DecisionID),
	}
	if d.www != "" {
		www, _ := credential.Redact(d.www, false)
		headers = append(headers, set("www-authenticate", www))
	}
	if d.retryAfter > 0 {
		headers = append(headers, set("retry-after", strconv.Itoa(ceilSeconds(d.retryAfter))))
	}
	if d.rateLimit.Matched() {
		addRateLimitHeaders(&headers, d.rateLimit)
	}
	if d.dpopNonce != "" {
		headers = append(headers, set("dpop-nonce", d.dpopNonce))
	}
	return &authv3.CheckResponse{
		Status: &rpcstatus.Status{Code: int32(m.code), Message: string(d.reason)},
		HttpResponse: &authv3.CheckResponse_DeniedResponse{DeniedResponse: &authv3.DeniedHttpResponse{
			Status:  &typev3.HttpStatus{Code: typev3.StatusCode(status)},
			Headers: headers,
			Body:    string(body),
		}},
		DynamicMetadata: metadata(rec),
	}
}

// allow is the response to an allow: the identity headers (the groups and
// scopes as id.Token's view carries them), the client's spoofed ones
// removed, and rl's rate-limit headers (when rl matched); rec is its record.
func (a *Authorizer) allow(rec *decisionlog.Record, in *request, id *identity.Identity, rl ratelimit.Decision) *authv3.CheckResponse {
	ok := &authv3.OkHttpResponse{Headers: make([]*corev3.HeaderValueOption, 0, 7)}
	slab := newHeaderSlab(7)
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
		addRateLimitHeaders(&ok.ResponseHeadersToAdd, rl)
	}
	return &authv3.CheckResponse{
		Status:          &rpcstatus.Status{Code: int32(codes.OK)},
		HttpResponse:    &authv3.CheckResponse_OkResponse{OkResponse: ok},
		DynamicMetadata: metadata(rec),
	}
}

// addRateLimitHeaders adds RateLimit-Policy and RateLimit
// (draft-ietf-httpapi-ratelimit-headers) and, when denied, Retry-After.
func addRateLimitHeaders(dst *[]*corev3.HeaderValueOption, d ratelimit.Decision) {
	*dst = append(*dst,
		set("ratelimit-policy", fmt.Sprintf(`"%s";q=%d;w=%d`, d.Rule, d.Limit, ceilSeconds(d.Window))),
		set("ratelimit", fmt.Sprintf(`"%s";r=%d;t=%d`, d.Rule, d.Remaining, ceilSeconds(d.Reset))))
	if !d.Allowed {
		for _, h := range *dst {
			if h.Header.Key == "retry-after" {
				return
			}
		}
		*dst = append(*dst, set("retry-after", strconv.Itoa(ceilSeconds(d.RetryAfter))))
	}
}

func ceilSeconds(d time.Duration) int {
	return int(math.Ceil(max(d, 0).Seconds()))
}

// metadata is the dynamic metadata Envoy's access log sees, built directly
// (structpb.NewStruct would go through map[string]any and a type switch).
// Like NewStruct, it gives none when a string is not valid UTF-8 (proto3
// could not marshal the response).
func metadata(rec *decisionlog.Record) *structpb.Struct {
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
