package policy

// The request mapping as it was before the decision's scratch (pooled
// buffers, memoised parent sets and context parts): kept as the oracle of
// TestMapRequestDifferential.

import (
	"net/netip"
	"net/url"
	"strings"

	"github.com/cedar-policy/cedar-go"
)

func (s *Set) mapRequestOld(r *Request) *mapped {
	m := &mapped{ents: &overlay{static: s.entities}}
	path, rawQuery, _ := strings.Cut(r.Path, "?")
	method := strings.ToUpper(r.Method)
	host := hostOnly(r.Host)
	extService := r.Extensions["service"]
	var params []Param
	if r.Method != "CONNECT" || r.Path != "" { // the TCP filter sends no path
		if m.pathErr = authoritySyntax(r.Host); m.pathErr == nil {
			m.pathErr = querySyntax(rawQuery)
		}
		if m.pathErr == nil {
			m.route, params, m.pathErr = s.routeFor(method, host, extService, path, params)
		}
	}
	// Action.
	am := actionMethod(method, m.route)
	action := cedar.NewEntityUID(actionType, cedar.String(am))
	if m.route != nil {
		action = routeAction(am, m.route.Template)
	} else if m.pathErr == nil && r.Path != "" && !s.allowUnrouted {
		m.unrouted = s.hasRoutes(extService)
	}
	s.addActionOld(m, action, am)
	// Resource.
	m.service = extService
	if m.service == "" && m.route != nil {
		m.service = m.route.Service
	}
	if m.service == "" {
		m.service = host
	}
	svc := cedar.NewEntityUID("Service", cedar.String(m.service))
	resource := svc
	if m.route != nil {
		if uid, ok := m.route.resourceOld(params); ok {
			resource = uid
			m.resourceParents = []cedar.EntityUID{svc}
			addMergedOld(m.ents, s.entities, resource, m.resourceParents, cedar.Record{})
		}
	}
	// Principal.
	principal := cedar.NewEntityUID(cedar.EntityType(r.Principal.Type), cedar.String(r.Principal.ID))
	var parents []cedar.EntityUID
	for _, g := range r.Principal.Groups {
		parents = append(parents, cedar.NewEntityUID("Group", cedar.String(g)))
	}
	var attrs cedar.Record
	if w := r.Workload; w != nil && r.Principal.Type == "Workload" {
		am := cedar.RecordMap{"trust_domain": str(w.TrustDomain)}
		if w.Namespace != "" {
			am["namespace"] = str(w.Namespace)
			am["service_account"] = str(w.ServiceAccount)
		}
		attrs = cedar.NewRecord(am)
	} else if len(r.Principal.Attributes) > 0 {
		attrs = strRecord(r.Principal.Attributes)
	}
	s.addPrincipalOld(m, principal, parents, attrs)
	m.req = cedar.Request{
		Principal: principal,
		Action:    action,
		Resource:  resource,
		Context:   buildContextOld(r, host, path, rawQuery, params, m.route, m.service, s.needs),
	}
	return m
}

// addAction puts action and its ancestors in m; an action the set has not
// seen (a method of no route) gets its place in the hierarchy synthesized.
func (s *Set) addActionOld(m *mapped, action cedar.EntityUID, method string) {
	m.actions = append(m.actions, action)
	if s.entities.hasParents(action) {
		m.actions = s.entities.appendAncestors(m.actions, action)
		return
	}
	methodUID := cedar.NewEntityUID(actionType, cedar.String(method))
	parents := []cedar.EntityUID{methodGroup(method)}
	if action != methodUID {
		parents = append(parents, methodUID)
	}
	m.ents.add(cedar.Entity{UID: action, Parents: cedar.NewEntityUIDSet(parents...)})
	m.actions = append(m.actions, parents...)
	m.actions = s.entities.appendAncestors(m.actions, methodUID)
}

// addPrincipal puts the principal with its parents and attributes in m.
func (s *Set) addPrincipalOld(m *mapped, principal cedar.EntityUID, parents []cedar.EntityUID, attrs cedar.Record) {
	m.principals = append(m.principals, principal)
	if len(parents) > 0 || attrs.Len() > 0 {
		addMergedOld(m.ents, s.entities, principal, parents, attrs)
	}
	m.principals = s.entities.appendAncestors(m.principals, principal)
	for _, p := range parents {
		m.principals = append(m.principals, p)
		m.principals = s.entities.appendAncestors(m.principals, p)
	}
	m.principalParents, m.principalAttrs = parents, attrs
}

// addMerged adds uid with extra parents and attributes, merged with the
// static entity of the same uid, if any.
func addMergedOld(o *overlay, static *entityStore, uid cedar.EntityUID, parents []cedar.EntityUID, attrs cedar.Record) {
	e := cedar.Entity{UID: uid, Attributes: attrs}
	if se, ok := static.Get(uid); ok {
		for p := range se.Parents.All() {
			parents = append(parents, p)
		}
		if attrs.Len() == 0 {
			e.Attributes = se.Attributes
		} else if se.Attributes.Len() > 0 {
			am := se.Attributes.Map()
			for k, v := range attrs.All() {
				am[k] = v
			}
			e.Attributes = cedar.NewRecord(am)
		}
		e.Tags = se.Tags
	}
	e.Parents = cedar.NewEntityUIDSet(parents...)
	o.add(e)
}

// buildContext is the Cedar context of SPEC §5 (host is hostOnly(r.Host),
// computed once by mapRequest); absent parts are omitted, and so are the
// parts no policy of the set can observe (see ctxNeeds; nil builds
// everything).
func buildContextOld(r *Request, host, path, rawQuery string, params []Param, route *Route, service string, n *ctxNeeds) cedar.Record {
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
		ctx["token"] = r.Token.Record()
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

// resource fills the resource template; ok is false when the route has none.
func (r *Route) resourceOld(params []Param) (cedar.EntityUID, bool) {
	if !r.hasRes {
		return cedar.EntityUID{}, false
	}
	var b strings.Builder
	for _, s := range r.resID {
		if s.param == "" {
			b.WriteString(s.lit)
			continue
		}
		for _, p := range params {
			if p.Name == s.param {
				b.WriteString(p.Value)
				break
			}
		}
	}
	return cedar.NewEntityUID(r.resType, cedar.String(b.String())), true
}
