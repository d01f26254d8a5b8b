package authz

import (
	"math"
	"strconv"
	"strings"
	"sync"
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

// problemJSON appends p as json.Marshal writes it (FuzzResponse holds the
// two equal), without reflection.
func problemJSON(b []byte, p problem) []byte {
	b = decisionlog.AppendJSONString(append(b, `{"type":`...), p.Type)
	b = decisionlog.AppendJSONString(append(b, `,"title":`...), p.Title)
	b = strconv.AppendInt(append(b, `,"status":`...), int64(p.Status), 10)
	b = decisionlog.AppendJSONString(append(b, `,"detail":`...), p.Detail)
	b = decisionlog.AppendJSONString(append(b, `,"decision_id":`...), p.DecisionID)
	return append(b, '}')
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

// slabHeaders is how many header options a response's slab holds: the
// seven identity headers and the two rate-limit ones of an allow, or the
// content-type, cache-control, decision id, WWW-Authenticate, Retry-After,
// rate-limit and DPoP-Nonce headers of a deny. More come from the heap.
const slabHeaders = 9

// respSlab is what every response holds, allocated with it: the
// CheckResponse, its status, its header options and its metadata.
// Messages are only read (marshalled) once built, so sharing one
// allocation is safe. A slab is reused only once the codec has written
// the response for gRPC (pooledResponse), zeroed.
type respSlab struct {
	resp   authv3.CheckResponse
	status rpcstatus.Status
	ptrs   [slabHeaders]*corev3.HeaderValueOption
	opts   [slabHeaders]corev3.HeaderValueOption
	vals   [slabHeaders]corev3.HeaderValue
	n      int
	md     mdSlab
}

// set is set(key, value), from the slab while it lasts.
func (s *respSlab) set(key, value string) *corev3.HeaderValueOption {
	if s.n == slabHeaders {
		return set(key, value)
	}
	v, o := &s.vals[s.n], &s.opts[s.n]
	s.n++
	v.Key, v.Value = key, value
	o.Header = v
	//lint:ignore SA1019 Envoy ≤ 1.36 reads only append (ENVOY.md)
	o.Append = appendFalse
	return o
}

// allowSlab is an allow's response in one allocation.
type allowSlab struct {
	respSlab
	oneof  authv3.CheckResponse_OkResponse
	ok     authv3.OkHttpResponse
	remove [2]string // the headers to remove: authorization, a spoofed one
}

// denySlab is a deny's response in one allocation.
type denySlab struct {
	respSlab
	oneof  authv3.CheckResponse_DeniedResponse
	denied authv3.DeniedHttpResponse
	code   typev3.HttpStatus
}

// The slabs' pools. A Check answered over gRPC (checkWire) hands its slab
// to the codec, whose Marshal writes the response into its own buffer and
// then gives the slab back (release); checkWire says when gRPC could read
// it after that. Every other caller's response (HTTP authorization, check
// --explain, Check) is never given back, and left to the collector.
var (
	allowSlabs = sync.Pool{New: func() any { return new(allowSlab) }}
	denySlabs  = sync.Pool{New: func() any { return new(denySlab) }}
)

// pooledResponse is a response whose slab goes back to its pool once
// written: release must be the last use of the response.
type pooledResponse interface {
	response() *authv3.CheckResponse
	release()
}

func (s *respSlab) response() *authv3.CheckResponse { return &s.resp }

// Each release zeroes the whole slab (a field added later is zeroed too),
// keeping only its metadata's map, cleared, for the next response.

func (s *allowSlab) release() {
	fields := s.md.st.Fields
	clear(fields)
	*s = allowSlab{}
	s.md.st.Fields = fields
	allowSlabs.Put(s)
}

func (s *denySlab) release() {
	fields := s.md.st.Fields
	clear(fields)
	*s = denySlab{}
	s.md.st.Fields = fields
	denySlabs.Put(s)
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

// denied is the response to a denial, in its slab; rec is its record
// (record).
func (a *Authorizer) denied(rec *decisionlog.Record, d *denial) *denySlab {
	m := mapping[d.reason]
	status := rec.Status
	// The detail and the challenge may quote the request (a path
	// parameter, a token error): what leaves Warden goes through the same
	// redaction as records (the record is redacted when it is bound).
	detail, _ := credential.Redact(d.detail, false)
	var bodyBuf [320]byte
	body := problemJSON(bodyBuf[:0], problem{Type: ProblemType(d.reason), Title: m.title, Status: status, Detail: detail, DecisionID: rec.DecisionID})
	s := denySlabs.Get().(*denySlab)
	headers := s.ptrs[:0]
	headers = append(headers,
		s.set("content-type", "application/problem+json"),
		s.set("cache-control", "no-store"),
		s.set(a.h.decisionID, rec.DecisionID),
	)
	if d.www != "" {
		www, _ := credential.Redact(d.www, false)
		headers = append(headers, s.set("www-authenticate", www))
	}
	if d.retryAfter > 0 {
		headers = append(headers, s.set("retry-after", strconv.Itoa(ceilSeconds(d.retryAfter))))
	}
	if d.rateLimit.Matched() {
		s.addRateLimitHeaders(&headers, d.rateLimit)
	}
	if d.dpopNonce != "" {
		headers = append(headers, s.set("dpop-nonce", d.dpopNonce))
	}
	s.code.Code = typev3.StatusCode(status)
	s.denied.Status, s.denied.Headers, s.denied.Body = &s.code, headers, string(body)
	s.oneof.DeniedResponse = &s.denied
	s.status.Code, s.status.Message = int32(m.code), string(d.reason)
	s.resp.Status, s.resp.HttpResponse = &s.status, &s.oneof
	s.resp.DynamicMetadata = s.md.metadata(rec)
	return s
}

// allow is the response to an allow: the identity headers (the groups and
// scopes as id.Token's view carries them), the client's spoofed ones
// removed, and rl's rate-limit headers (when rl matched); rec is its record.
func (a *Authorizer) allow(rec *decisionlog.Record, in *request, id *identity.Identity, rl ratelimit.Decision) *authv3.CheckResponse {
	return a.allowed(rec, in, id, rl).response()
}

// allowed is allow's response in its slab.
func (a *Authorizer) allowed(rec *decisionlog.Record, in *request, id *identity.Identity, rl ratelimit.Decision) *allowSlab {
	s := allowSlabs.Get().(*allowSlab)
	ok := &s.ok
	ok.Headers = s.ptrs[:0]
	add := func(name, value string) {
		if value != "" && validValue(value) {
			ok.Headers = append(ok.Headers, s.set(name, value))
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
	ok.Headers = ok.Headers[:len(ok.Headers):len(ok.Headers)] // the rest of s.ptrs is the rate-limit headers
	// Strip every client-sent header under our prefix, in any spelling
	// (underPrefix), that we did not set: the upstream must be able to trust
	// them.
	remove := s.remove[:0]
	for _, h := range in.headers {
		if !a.h.underPrefix(h.Name) {
			continue
		}
		ours := false
		for _, o := range ok.Headers {
			ours = ours || o.Header.Key == h.Name
		}
		if !ours {
			remove = append(remove, h.Name)
		}
	}
	// An API key is Warden's credential, never the upstream's: stripped
	// whatever forward_authorization says (tokens, introspected ones too,
	// follow it: an upstream may present them onward).
	if (!a.o.ForwardAuthorization || id.Credential == identity.CredentialAPIKey) && in.authorization != "" {
		remove = append(remove, "authorization")
	}
	if len(remove) > 0 {
		ok.HeadersToRemove = remove
	}
	if rl.Matched() {
		// The slab's rest; the identity headers never pass its end today
		// (7 of slabHeaders), and if they did, appending moved them out.
		ok.ResponseHeadersToAdd = s.ptrs[min(len(ok.Headers), len(s.ptrs)):][:0]
		s.addRateLimitHeaders(&ok.ResponseHeadersToAdd, rl)
	}
	s.status.Code = int32(codes.OK)
	s.oneof.OkResponse = ok
	s.resp.Status, s.resp.HttpResponse = &s.status, &s.oneof
	s.resp.DynamicMetadata = s.md.metadata(rec)
	return s
}

// addRateLimitHeaders adds RateLimit-Policy and RateLimit
// (draft-ietf-httpapi-ratelimit-headers) and, when denied, Retry-After.
// Both values are formatted into one string.
func (s *respSlab) addRateLimitHeaders(dst *[]*corev3.HeaderValueOption, d ratelimit.Decision) {
	var buf [96]byte
	b := append(buf[:0], '"')
	b = append(b, d.Rule...)
	b = append(b, `";q=`...)
	b = strconv.AppendInt(b, int64(d.Limit), 10)
	b = append(b, ";w="...)
	b = strconv.AppendInt(b, int64(ceilSeconds(d.Window)), 10)
	n := len(b)
	b = append(b, '"')
	b = append(b, d.Rule...)
	b = append(b, `";r=`...)
	b = strconv.AppendInt(b, int64(d.Remaining), 10)
	b = append(b, ";t="...)
	b = strconv.AppendInt(b, int64(ceilSeconds(d.Reset)), 10)
	v := string(b)
	*dst = append(*dst, s.set("ratelimit-policy", v[:n]), s.set("ratelimit", v[n:]))
	if !d.Allowed {
		for _, h := range *dst {
			if h.Header.Key == "retry-after" {
				return
			}
		}
		*dst = append(*dst, s.set("retry-after", strconv.Itoa(ceilSeconds(d.RetryAfter))))
	}
}

func ceilSeconds(d time.Duration) int {
	return int(math.Ceil(max(d, 0).Seconds()))
}

// slabPolicies is how many determining policies mdSlab holds; more come
// from the heap.
const slabPolicies = 4

// mdSlab is a response's dynamic metadata, allocated with the response:
// the Struct, its five strings and the policies' list.
type mdSlab struct {
	st       structpb.Struct
	vals     [6 + slabPolicies]structpb.Value
	strs     [5 + slabPolicies]structpb.Value_StringValue
	listKind structpb.Value_ListValue
	list     structpb.ListValue
	policies [slabPolicies]*structpb.Value
}

// metadata is the dynamic metadata Envoy's access log sees, built directly
// (structpb.NewStruct would go through map[string]any and a type switch).
// Like NewStruct, it gives none when a string is not valid UTF-8 (proto3
// could not marshal the response).
func (m *mdSlab) metadata(rec *decisionlog.Record) *structpb.Struct {
	for _, s := range [...]string{rec.DecisionID, rec.Principal, string(rec.Reason), rec.Action, rec.Resource} {
		if !utf8.ValidString(s) {
			return nil
		}
	}
	for _, p := range rec.Policies {
		if !utf8.ValidString(p) {
			return nil
		}
	}
	vals, strs := m.vals[:], m.strs[:]
	if n := len(rec.Policies); n > slabPolicies {
		vals, strs = make([]structpb.Value, 6+n), make([]structpb.Value_StringValue, 5+n)
	}
	str := func(i int, s string) *structpb.Value {
		strs[i].StringValue = s
		vals[i].Kind = &strs[i]
		return &vals[i]
	}
	policies := m.policies[:0]
	for i, p := range rec.Policies {
		policies = append(policies, str(5+i, p))
	}
	m.list.Values = policies
	m.listKind.ListValue = &m.list
	vals[5+len(rec.Policies)].Kind = &m.listKind
	fields := m.st.Fields // a pooled slab's, cleared
	if fields == nil {
		fields = make(map[string]*structpb.Value, 7)
	}
	fields["decision_id"] = str(0, rec.DecisionID)
	fields["principal"] = str(1, rec.Principal)
	fields["policies"] = &vals[5+len(rec.Policies)]
	fields["reason"] = str(2, string(rec.Reason))
	fields["action"] = str(3, rec.Action)
	fields["resource"] = str(4, rec.Resource)
	m.st.Fields = fields
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
		fields["errors"] = structpb.NewListValue(&structpb.ListValue{Values: errs})
	}
	return &m.st
}
