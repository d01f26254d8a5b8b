package policy

import (
	"encoding/binary"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/cedar-policy/cedar-go"
	"golang.org/x/net/idna"

	"github.com/wardenauthz/warden/internal/token"
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
	// Token is the verified token (nil when none was presented): identity
	// built it; policy reads its Cedar record.
	Token *token.View
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

// ctxScratch holds the maps buildContext fills: cedar.NewRecord copies
// them, so a decision's scratch keeps them, cleared, for the next.
type ctxScratch struct {
	ctx, req, hdr, params cedar.RecordMap
	// now is context.now of the last request, at nowMs: requests of the
	// same millisecond share it.
	nowMs int64
	now   cedar.Value
}

// maxKeptKeys bounds the members of a map kept for reuse.
const maxKeptKeys = 64

// get is the map *p (made with room for hint members when none is kept).
func (c *ctxScratch) get(p *cedar.RecordMap, hint int) cedar.RecordMap {
	if *p == nil {
		*p = make(cedar.RecordMap, hint)
	}
	return *p
}

// clear empties the maps, dropping any grown past maxKeptKeys.
func (c *ctxScratch) clear() {
	for _, p := range [...]*cedar.RecordMap{&c.ctx, &c.req, &c.hdr, &c.params} {
		if len(*p) > maxKeptKeys {
			*p = nil
		} else {
			clear(*p)
		}
	}
}

// credentialRecords are context.credential for the credential kinds
// identity names (identity.CredentialKind), made once.
var credentialRecords = func() map[string]cedar.Value {
	out := map[string]cedar.Value{}
	for _, k := range []string{"jwt", "dpop", "mtls_bound", "introspected", "api_key"} {
		out[k] = cedar.NewRecord(cedar.RecordMap{"kind": str(k)})
	}
	return out
}()

// methodValues are the standard methods as cedar.Values, made once.
var methodValues = func() map[string]cedar.Value {
	out := map[string]cedar.Value{}
	for _, m := range append(slices.Clone(stdMethods), "CONNECT") {
		out[m] = str(m)
	}
	return out
}()

func methodValue(m string) cedar.Value {
	if v, ok := methodValues[m]; ok {
		return v
	}
	return str(m)
}

// sourceCache keeps context.source records, direct mapped by address and
// port: the requests of one client connection share one. A collision or
// a new connection costs one record.
var sourceCache [sourceCacheSlots]atomic.Pointer[sourceEntry]

const sourceCacheSlots = 256

type sourceEntry struct {
	ip   netip.Addr
	port uint32
	rec  cedar.Value
}

// sourceHash spreads a source address and port over cache slots (the
// source records here, the set's contexts).
func sourceHash(ip netip.Addr, port uint32) uint64 {
	a := ip.As16()
	return (binary.LittleEndian.Uint64(a[:8])*31 ^ binary.LittleEndian.Uint64(a[8:]) ^ uint64(port)) * 0x9E3779B97F4A7C15
}

// sourceRecord is context.source for ip (unmapped, without zone) and port.
func sourceRecord(ip netip.Addr, port uint32) cedar.Value {
	slot := &sourceCache[sourceHash(ip, port)>>56%sourceCacheSlots]
	if e := slot.Load(); e != nil && e.ip == ip && e.port == port {
		return e.rec
	}
	e := &sourceEntry{ip: ip, port: port, rec: cedar.NewRecord(cedar.RecordMap{
		"ip":   cedar.IPAddr(netip.PrefixFrom(ip, ip.BitLen())),
		"port": cedar.Long(port),
	})}
	slot.Store(e)
	return e.rec
}

func credentialRecord(kind string) cedar.Value {
	if v, ok := credentialRecords[kind]; ok {
		return v
	}
	return cedar.NewRecord(cedar.RecordMap{"kind": str(kind)})
}

// buildContext is the Cedar context of SPEC §5 (host is hostOnly(r.Host),
// computed once by mapRequest); absent parts are omitted, and so are the
// parts no policy of the set can observe (see ctxNeeds; nil builds
// everything). Its maps are sc's (nil: made afresh); the parts that are
// the same for every request of a token, credential kind or route are
// made once (token.View.RecordValue, credentialRecord,
// Route.contextRoute).
func buildContext(r *Request, host, path, rawQuery string, params []Param, route *Route, service string, n *ctxNeeds, sc *ctxScratch) cedar.Record {
	if sc == nil {
		sc = &ctxScratch{}
	}
	ctx := sc.get(&sc.ctx, 8)
	if n.wantRequest() {
		req := sc.get(&sc.req, 8)
		add := func(k, v string) {
			if v != "" && n.wantReq(k) {
				req[cedar.String(k)] = cedar.String(v)
			}
		}
		if n.wantReq("method") { // method and path are always present
			req["method"] = methodValue(r.Method)
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
			hm := sc.get(&sc.hdr, len(r.Headers))
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
		pm := sc.get(&sc.params, len(params))
		for _, p := range params {
			pm[cedar.String(p.Name)] = cedar.String(p.Value)
		}
		ctx["path_params"] = cedar.NewRecord(pm)
	}
	if r.SourceIP.IsValid() && n.wantTop("source") {
		ctx["source"] = sourceRecord(r.SourceIP.Unmap().WithZone(""), r.SourcePort)
	}
	if !r.Time.IsZero() && n.wantTop("now") {
		if ms := r.Time.UnixMilli(); sc.now == nil || sc.nowMs != ms {
			sc.now, sc.nowMs = cedar.NewDatetime(r.Time), ms
		}
		ctx["now"] = sc.now
	}
	if r.Token != nil && n.wantTop("token") {
		ctx["token"] = r.Token.RecordValue()
	}
	if r.Credential != "" && n.wantTop("credential") {
		ctx["credential"] = credentialRecord(r.Credential)
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
		switch {
		case route != nil:
			ctx["route"] = route.contextRoute(service)
		case service != "":
			ctx["route"] = cedar.NewRecord(cedar.RecordMap{"service": str(service)})
		}
	}
	return cedar.NewRecord(ctx)
}
