package policy

import (
	"golang.org/x/net/idna"

	"encoding/json"
	"math"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/cedar-policy/cedar-go"
)

// Principal is who is calling, as the identity stage found it.
type Principal struct {
	Type   string // User, Client, Workload, Anonymous or ApiKey
	ID     string
	Groups []string // Group entity ids (the principal's parents)
	// Attributes are the principal entity's string attributes (an API
	// key's, from its file).
	Attributes map[string]string
}

// Workload is a SPIFFE workload identity.
type Workload struct {
	ID, TrustDomain, Namespace, ServiceAccount string
}

// Token is the part of a verified token that policies see.
type Token struct {
	Iss, Sub, ClientID, Acr  string
	Aud, Scopes, Groups, Amr []string
	Iat, Exp, AuthTime       int64 // Unix seconds; 0 when absent
	Claims                   map[string]any

	recOnce sync.Once
	rec     cedar.Record
}

// record is the token's Cedar record, built once: a Token shared by the
// Checks that present the same cached token converts it once, not per Check.
// The fields must not change after the first call.
func (t *Token) record() cedar.Record {
	t.recOnce.Do(func() { t.rec = tokenRecord(t) })
	return t.rec
}

// Header is one request header (lower-case name).
type Header struct{ Name, Value string }

// Request is an HTTP request as Envoy describes it, plus who made it.
type Request struct {
	Principal  Principal
	Method     string
	Scheme     string
	Host       string // :authority, may carry a port
	Path       string // raw request target, query included, not decoded
	Protocol   string
	ID         string // x-request-id
	Headers    []Header
	SourceIP   netip.Addr // invalid when unknown
	SourcePort uint32
	Time       time.Time
	Token      *Token
	// Credential is the kind of credential the caller presented
	// (identity.CredentialKind: jwt, dpop, mtls_bound, introspected,
	// api_key), "" when none: context.credential.kind.
	Credential string
	Workload   *Workload // the calling workload (mTLS peer), if any
	Extensions map[string]string
}

// Headers never copied into the Cedar context.
func secretHeader(name string) bool {
	switch name {
	case "authorization", "cookie", "proxy-authorization":
		return true
	}
	return false
}

// hostOnly is the host of an authority as routes and policies see it: its
// port dropped, lower case, a trailing dot (a fully qualified name) removed,
// and an internationalised name in its ASCII (punycode) form.
func hostOnly(authority string) string {
	h := authority
	if strings.HasPrefix(h, "[") {
		if i := strings.IndexByte(h, ']'); i > 0 {
			h = h[1:i]
		}
	} else if i := strings.LastIndexByte(h, ':'); i >= 0 && strings.Count(h, ":") == 1 {
		h = h[:i]
	}
	return normHost(h)
}

// normHost is a host name (no port) in the one form hosts are compared in.
func normHost(h string) string {
	h = strings.TrimRight(strings.ToLower(h), ".")
	for i := 0; i < len(h); i++ {
		if h[i] >= 0x80 {
			if a, err := idna.Lookup.ToASCII(h); err == nil {
				return strings.TrimRight(a, ".")
			}
			break
		}
	}
	return h
}

func str(s string) cedar.Value { return cedar.String(s) }

func strSet(ss []string) cedar.Set {
	vs := make([]cedar.Value, len(ss))
	for i, s := range ss {
		vs[i] = cedar.String(s)
	}
	return cedar.NewSet(vs...)
}

func strRecord(m map[string]string) cedar.Record {
	rm := make(cedar.RecordMap, len(m))
	for k, v := range m {
		rm[cedar.String(k)] = cedar.String(v)
	}
	return cedar.NewRecord(rm)
}

// buildContext is the Cedar context of SPEC §5 (host is hostOnly(r.Host),
// computed once by mapRequest); absent parts are omitted, and so are the
// parts no policy of the set can observe (see ctxNeeds; nil builds
// everything).
func buildContext(r *Request, host, path, rawQuery string, params []Param, route *Route, service string, n *ctxNeeds) cedar.Record {
	ctx := make(cedar.RecordMap, 8)
	if n.wantRequest() {
		req := make(cedar.RecordMap, 8)
		add := func(k, v string) {
			if v != "" && n.wantReq(k) {
				req[cedar.String(k)] = cedar.String(v)
			}
		}
		if n.wantReq("method") { // method and path are always present
			req["method"] = str(r.Method)
		}
		if n.wantReq("path") {
			req["path"] = str(path)
		}
		add("scheme", r.Scheme)
		if n.wantReq("host") { // always present (ModelSchema): "" when Envoy sent none
			req["host"] = str(host)
		}
		add("protocol", r.Protocol)
		add("id", r.ID)
		if rawQuery != "" && n.wantReq("query") {
			q, _ := url.ParseQuery(rawQuery) // querySyntax passed: every pair parses
			qm := make(cedar.RecordMap, len(q))
			for k, vs := range q {
				qm[cedar.String(k)] = strSet(vs)
			}
			req["query"] = cedar.NewRecord(qm)
		}
		if n.wantReq("headers") { // always present (ModelSchema), if empty
			hm := make(cedar.RecordMap, len(r.Headers))
			for _, h := range r.Headers {
				if secretHeader(h.Name) || strings.HasPrefix(h.Name, ":") {
					continue
				}
				if prev, ok := hm[cedar.String(h.Name)]; ok {
					hm[cedar.String(h.Name)] = cedar.String(string(prev.(cedar.String)) + "," + h.Value)
					continue
				}
				hm[cedar.String(h.Name)] = cedar.String(h.Value)
			}
			req["headers"] = cedar.NewRecord(hm)
		}
		ctx["request"] = cedar.NewRecord(req)
	}
	if len(params) > 0 && n.wantTop("path_params") {
		pm := make(cedar.RecordMap, len(params))
		for _, p := range params {
			pm[cedar.String(p.Name)] = cedar.String(p.Value)
		}
		ctx["path_params"] = cedar.NewRecord(pm)
	}
	if r.SourceIP.IsValid() && n.wantTop("source") {
		ip := r.SourceIP.Unmap().WithZone("")
		ctx["source"] = cedar.NewRecord(cedar.RecordMap{
			"ip":   cedar.IPAddr(netip.PrefixFrom(ip, ip.BitLen())),
			"port": cedar.Long(r.SourcePort),
		})
	}
	if !r.Time.IsZero() && n.wantTop("now") {
		ctx["now"] = cedar.NewDatetime(r.Time)
	}
	if r.Token != nil && n.wantTop("token") {
		ctx["token"] = r.Token.record()
	}
	if r.Credential != "" && n.wantTop("credential") {
		ctx["credential"] = cedar.NewRecord(cedar.RecordMap{"kind": str(r.Credential)})
	}
	if w := r.Workload; w != nil && n.wantTop("workload") {
		wm := cedar.RecordMap{"id": str(w.ID), "trust_domain": str(w.TrustDomain)}
		if w.Namespace != "" {
			wm["namespace"] = str(w.Namespace)
			wm["service_account"] = str(w.ServiceAccount)
		}
		ctx["workload"] = cedar.NewRecord(wm)
	}
	if len(r.Extensions) > 0 && n.wantTop("extensions") {
		ctx["extensions"] = strRecord(r.Extensions)
	}
	if n.wantTop("route") {
		rt := cedar.RecordMap{}
		if service != "" {
			rt["service"] = str(service)
		}
		if route != nil {
			rt["template"] = str(route.Template)
		}
		if len(rt) > 0 {
			ctx["route"] = cedar.NewRecord(rt)
		}
	}
	return cedar.NewRecord(ctx)
}

// tokenRecord converts the token; registered fields win over raw claims.
func tokenRecord(t *Token) cedar.Record {
	m := make(cedar.RecordMap, len(t.Claims)+4)
	for k, v := range t.Claims {
		if cv, ok := ClaimValue(v, 0); ok {
			m[cedar.String(k)] = cv
		}
	}
	set := func(k, v string) {
		if v != "" {
			m[cedar.String(k)] = str(v)
		} else {
			delete(m, cedar.String(k))
		}
	}
	set("iss", t.Iss)
	set("sub", t.Sub)
	set("client_id", t.ClientID)
	set("acr", t.Acr)
	m["aud"] = strSet(t.Aud)
	m["scope"] = strSet(t.Scopes)
	m["groups"] = strSet(t.Groups)
	m["amr"] = strSet(t.Amr)
	// The times as numbers (Unix seconds), and as datetimes to compare with
	// context.now: auth_time_datetime, iat_datetime, exp_datetime.
	for k, v := range map[string]int64{"iat": t.Iat, "exp": t.Exp, "auth_time": t.AuthTime} {
		dt := cedar.String(k + "_datetime")
		delete(m, dt)
		if v == 0 {
			delete(m, cedar.String(k))
			continue
		}
		m[cedar.String(k)] = cedar.Long(v)
		if v > -maxDatetimeSeconds && v < maxDatetimeSeconds {
			m[dt] = cedar.NewDatetime(time.Unix(v, 0))
		}
	}
	return cedar.NewRecord(m)
}

// maxDatetimeSeconds bounds the Unix times offered as datetimes (year
// 10000), well inside Cedar's millisecond range.
const maxDatetimeSeconds = 253402300800

const maxClaimDepth = 8

// ClaimValue converts a JSON claim (as decoded with UseNumber) to a Cedar
// value: strings, booleans, integers (Long), other numbers (decimal when
// representable), arrays (Set) and objects (Record). ok is false for null and
// for values Cedar cannot hold; such claims are left out.
func ClaimValue(v any, depth int) (cedar.Value, bool) {
	if depth > maxClaimDepth {
		return nil, false
	}
	switch v := v.(type) {
	case string:
		return cedar.String(v), true
	case bool:
		return cedar.Boolean(v), true
	case json.Number:
		if i, err := v.Int64(); err == nil {
			return cedar.Long(i), true
		}
		f, err := v.Float64()
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || math.Abs(f) > 9e14 {
			return nil, false
		}
		d, err := cedar.NewDecimalFromFloat(f)
		if err != nil {
			return nil, false
		}
		return d, true
	case float64:
		return ClaimValue(json.Number(strings.TrimSuffix(strings.TrimSuffix(jsonFloat(v), ".0"), ".")), depth)
	case []any:
		vs := make([]cedar.Value, 0, len(v))
		for _, e := range v {
			if cv, ok := ClaimValue(e, depth+1); ok {
				vs = append(vs, cv)
			}
		}
		return cedar.NewSet(vs...), true
	case map[string]any:
		m := make(cedar.RecordMap, len(v))
		for k, e := range v {
			if cv, ok := ClaimValue(e, depth+1); ok {
				m[cedar.String(k)] = cv
			}
		}
		return cedar.NewRecord(m), true
	}
	return nil, false
}

func jsonFloat(f float64) string {
	b, _ := json.Marshal(f)
	return string(b)
}
