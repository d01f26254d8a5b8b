package policy

import (
	"fmt"
	"hash/maphash"
	"iter"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/cedar-policy/cedar-go"

	"github.com/wardenauthz/warden/internal/token"
)

// Result is the outcome of one authorization.
type Result struct {
	Allow     bool
	Principal cedar.EntityUID
	Action    cedar.EntityUID
	Resource  cedar.EntityUID
	Context   cedar.Record
	// Service and Template describe the matched route ("" when none).
	Service  string
	Template string
	// Reasons are the determining policy ids (read only: a list may be
	// shared between results); Errors the policies whose
	// evaluation errored ("id: message"). An erroring permit grants nothing;
	// an erroring forbid denies (PolicyError) unless the set skips errors.
	Reasons []string
	Errors  []string
	// PolicyError is set (and Allow false) when a forbid's condition
	// errored: it could have applied, so it denies (policy.on_error: deny,
	// the default). Reasons then lists the erroring forbids after any that
	// applied; no @status or step-up answer is given.
	PolicyError bool
	// RouteUnknown is set (and Allow false, with no policy evaluated) when
	// the request's service has routes but the request matches none, and
	// the set denies such requests (policy.unrouted: deny, the default).
	RouteUnknown bool
	// Status is a deny's @status (0 when none applies).
	Status int
	// StepUp is set when the deny can be cured by re-authenticating (RFC 9470).
	StepUp *StepUp
	// PathError is set (and Allow false, with no policy evaluated) when the
	// request path is malformed or ambiguous (ErrPathMalformed,
	// ErrPathAmbiguous), or its host or query malformed (ErrHostMalformed,
	// ErrQueryMalformed); the action is then the route-less one.
	PathError error
	// Logged is the Cedar request as a replayable decision record keeps
	// it (Source.Replayable; nil otherwise, and for a PathError).
	Logged *Logged
}

// StepUp is what a step-up deny asks the client for.
type StepUp struct {
	ACR    []string
	MaxAge int // seconds, -1 when not asked
}

var candPool = sync.Pool{New: func() any { b := make([]int32, 0, 64); return &b }}

// Decide authorizes r against the set.
func (s *Set) Decide(r *Request) Result {
	return s.decide(r, true)
}

type mapped struct {
	req        cedar.Request
	ents       *overlay
	actions    []cedar.EntityUID // action and its ancestors
	principals []cedar.EntityUID // principal and its ancestors
	route      *Route
	service    string
	pathErr    error
	unrouted   bool // the service has routes, the request matches none (and that denies)
	// for Logged: the request entities' parents and attributes
	principalParents, resourceParents []cedar.EntityUID
	principalAttrs                    cedar.Record
	// sc is the scratch m lives in (nil for a mapped made otherwise).
	sc *scratch
}

// scratch is one decision's working memory: the mapped request, its
// overlay and the buffers they fill, in one allocation that Decide takes
// from scratchPool and gives back once the decision is made. Nothing of
// it outlives the decision: the Result holds values (the context record,
// the uids) and copies, never its buffers.
type scratch struct {
	m          mapped
	o          overlay
	ents       [3]cedar.Entity // principal, resource, synthesized action
	params     [4]Param
	alt        [4]Param
	actions    [8]cedar.EntityUID
	principals [8]cedar.EntityUID
	parents    [4]cedar.EntityUID // the principal's groups
	sel        pooledSelection
	ctx        ctxScratch
}

var scratchPool = sync.Pool{New: func() any { return newScratch() }}

func newScratch() *scratch {
	sc := new(scratch)
	sc.sel.all = sc.sel.each
	return sc
}

// release empties sc for the pool, keeping its reusable parts (the
// selection's iterator, the context's maps): it holds nothing of the
// decision made.
func (sc *scratch) release() {
	sel, ctx := sc.sel, sc.ctx
	sel.selection = selection{}
	ctx.clear()
	*sc = scratch{sel: sel, ctx: ctx}
}

// reset readies sc (new or released) for a decision of s.
func (sc *scratch) reset(s *Set) *mapped {
	sc.o = overlay{static: s.entities, ents: sc.ents[:0]}
	sc.m = mapped{ents: &sc.o, actions: sc.actions[:0], principals: sc.principals[:0], sc: sc}
	return &sc.m
}

// pooledSelection is a selection whose iterator function is made once per
// scratch, not per decision.
type pooledSelection struct {
	selection
	all iter.Seq2[cedar.PolicyID, *cedar.Policy]
}

func (p *pooledSelection) All() iter.Seq2[cedar.PolicyID, *cedar.Policy] { return p.all }

func (s *Set) mapRequest(r *Request) *mapped {
	return s.mapInto(r, newScratch())
}

// mapInto maps r into sc (see scratch).
func (s *Set) mapInto(r *Request, sc *scratch) *mapped {
	m := sc.reset(s)
	path, rawQuery, _ := strings.Cut(r.Path, "?")
	method := strings.ToUpper(r.Method)
	host := hostOnly(r.Host)
	extService := r.Extensions["service"]
	params := sc.params[:0]
	if r.Method != "CONNECT" || r.Path != "" { // the TCP filter sends no path
		if m.pathErr = authoritySyntax(r.Host); m.pathErr == nil {
			m.pathErr = querySyntax(rawQuery)
		}
		if m.pathErr == nil {
			m.route, params, m.pathErr = s.routeForBuf(method, host, extService, path, params, sc.alt[:0])
		}
	}
	if m.pathErr != nil { // refused (400): userinfo is never the service's name (a record's resource)
		if i := strings.LastIndexByte(r.Host, '@'); i >= 0 {
			host = hostOnly(r.Host[i+1:])
		}
	}
	// Action.
	am := actionMethod(method, m.route)
	var action cedar.EntityUID
	if m.route != nil {
		action = m.route.action(method)
	} else {
		action = cedar.NewEntityUID(actionType, cedar.String(am))
		if m.pathErr == nil && r.Path != "" && !s.allowUnrouted {
			m.unrouted = s.hasRoutes(extService)
		}
	}
	s.addAction(m, action, am)
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
		if uid, ok := m.route.resource(params); ok {
			resource = uid
			if s.entities.has(resource) {
				m.resourceParents = []cedar.EntityUID{svc}
				m.ents.addMerged(s.entities, resource, m.resourceParents, cedar.Record{})
			} else { // its parents are the service alone, the same every time
				var set cedar.EntityUIDSet
				m.resourceParents, set = m.route.resourceParents(m.service, svc)
				m.ents.add(cedar.Entity{UID: resource, Parents: set})
			}
		}
	}
	// Principal.
	principal := cedar.NewEntityUID(cedar.EntityType(r.Principal.Type), cedar.String(r.Principal.ID))
	parents := sc.parents[:0]
	for _, g := range r.Principal.Groups {
		parents = append(parents, cedar.NewEntityUID("Group", cedar.String(g)))
	}
	var src attrSource
	if w := r.Workload; w != nil && r.Principal.Type == "Workload" {
		src.w, src.isW = *w, true
	} else if len(r.Principal.Attributes) > 0 {
		src.attrs = r.Principal.Attributes
	}
	if len(parents) == 0 {
		parents = nil
	}
	s.addRequestPrincipal(m, principal, parents, src)
	m.req = cedar.Request{
		Principal: principal,
		Action:    action,
		Resource:  resource,
		Context:   s.context(r, host, path, rawQuery, params, m.route, m.service, &sc.ctx),
	}
	return m
}

// result is the Result of m before any policy is evaluated.
func (m *mapped) result() Result {
	return Result{Principal: m.req.Principal, Action: m.req.Action, Resource: m.req.Resource, Context: m.req.Context, Service: m.service}
}

// addAction puts action and its ancestors in m; an action the set has not
// seen (a method of no route) gets its place in the hierarchy synthesized.
func (s *Set) addAction(m *mapped, action cedar.EntityUID, method string) {
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
func (s *Set) addPrincipal(m *mapped, principal cedar.EntityUID, parents []cedar.EntityUID, attrs cedar.Record) {
	m.principalParents, m.principalAttrs = parents, attrs
	e := s.mapPrincipal(principal, parents, attrs, m.principals)
	if e.merged {
		m.ents.add(e.ent)
	}
	m.principals = e.principals
}

// attrSource is what a request's principal attributes are made from: its
// workload (a Workload principal's) or its attribute map (an API key's).
type attrSource struct {
	w     Workload
	isW   bool
	attrs map[string]string
}

// record is the principal's attributes.
func (a attrSource) record() cedar.Record {
	switch {
	case a.isW:
		am := cedar.RecordMap{"trust_domain": str(a.w.TrustDomain)}
		if a.w.Namespace != "" {
			am["namespace"] = str(a.w.Namespace)
			am["service_account"] = str(a.w.ServiceAccount)
		}
		return cedar.NewRecord(am)
	case len(a.attrs) > 0:
		return strRecord(a.attrs)
	}
	return cedar.Record{}
}

// clone is a with copies of its strings.
func (a attrSource) clone() attrSource {
	a.w = Workload{ID: strings.Clone(a.w.ID), TrustDomain: strings.Clone(a.w.TrustDomain),
		Namespace: strings.Clone(a.w.Namespace), ServiceAccount: strings.Clone(a.w.ServiceAccount)}
	if a.attrs != nil {
		m := make(map[string]string, len(a.attrs))
		for k, v := range a.attrs {
			m[strings.Clone(k)] = strings.Clone(v)
		}
		a.attrs = m
	}
	return a
}

func cloneUID(u cedar.EntityUID) cedar.EntityUID {
	return cedar.NewEntityUID(cedar.EntityType(strings.Clone(string(u.Type))), cedar.String(strings.Clone(string(u.ID))))
}

func cloneUIDs(us []cedar.EntityUID) []cedar.EntityUID {
	out := make([]cedar.EntityUID, len(us))
	for i, u := range us {
		out[i] = cloneUID(u)
	}
	return out
}

func (a attrSource) equal(b attrSource) bool {
	return a.isW == b.isW && a.w == b.w && maps.Equal(a.attrs, b.attrs)
}

// addRequestPrincipal is addPrincipal for a request's principal, whose
// attributes come from src. It is mapped once per set and kept in the
// set's principal cache (pcache), by its uid, parents and src.
func (s *Set) addRequestPrincipal(m *mapped, principal cedar.EntityUID, parents []cedar.EntityUID, src attrSource) {
	c := s.pcache
	if c == nil || len(parents) > maxCachedParents || len(src.attrs) > maxCachedParents {
		s.addPrincipal(m, principal, parents, src.record())
		return
	}
	slot := &c.slots[c.hash(principal, parents)%principalCacheSlots]
	e := slot.Load()
	if e == nil || e.store != s.entities || e.uid != principal || !slices.Equal(e.parents, parents) || !e.src.equal(src) {
		// The entry outlives the request: it holds copies of the
		// request's strings (a workload's SPIFFE ID, an extension), never
		// the strings themselves, which share one allocation with the
		// whole request (authz's wire decoder) and would keep it alive.
		principal, parents, src = cloneUID(principal), cloneUIDs(parents), src.clone()
		attrs := src.record()
		e = s.mapPrincipal(principal, slices.Clip(parents), attrs, nil)
		e.principals = slices.Clip(e.principals)
		e.src, e.attrs = src, attrs
		slot.Store(e)
	}
	if e.merged {
		m.ents.add(e.ent)
	}
	m.principals = append(m.principals, e.principals...)
	m.principalParents, m.principalAttrs = parents, e.attrs
}

// mapPrincipal is the principal's entity merged with the set's, and the
// principal and its ancestors appended to dst.
func (s *Set) mapPrincipal(principal cedar.EntityUID, parents []cedar.EntityUID, attrs cedar.Record, dst []cedar.EntityUID) *principalEntry {
	e := &principalEntry{store: s.entities, uid: principal, parents: parents}
	if len(parents) > 0 || attrs.Len() > 0 {
		e.ent, e.merged = merged(s.entities, principal, parents, attrs), true
	}
	dst = append(dst, principal)
	dst = s.entities.appendAncestors(dst, principal)
	for _, p := range parents {
		dst = append(dst, p)
		dst = s.entities.appendAncestors(dst, p)
	}
	e.principals = dst
	return e
}

// principalCache keeps mapped principals (mapPrincipal) of a set, direct
// mapped by a hash of the uid and parents (the attributes' source is
// compared, not hashed); an entry is immutable once
// stored, and a lookup compares the whole key, so a collision costs only
// a new mapping.
type principalCache struct {
	seed  maphash.Seed
	slots [principalCacheSlots]atomic.Pointer[principalEntry]
	ctxs  [ctxCacheSlots]atomic.Pointer[ctxEntry]
}

// ctxCacheSlots bounds the contexts kept (see Set.context): as many as
// the principals, so that a few hundred active tokens mostly find theirs
// (BenchmarkDecideManyTokens: 600 tokens, 17 allocations a decision with
// 256 slots, 14 with 1,024). An entry holds its token view and record.
const ctxCacheSlots = 1024

// ctxKey is everything a context made only of parts that are the same
// for every request of a token, credential kind, source, millisecond and
// route is made from (see Set.context).
type ctxKey struct {
	needs    *ctxNeeds
	tok      *token.View // nil: none
	cred     string
	src      netip.Addr // invalid: none
	port     uint32
	now      int64
	hasNow   bool
	route    *Route
	service  string
	hasRoute bool
}

type ctxEntry struct {
	key ctxKey
	rec cedar.Record
}

// context is buildContext's record. A context that holds nothing but the
// token, the credential kind, the source, the time and the route (no
// request, path parameters, workload or extensions, because no policy
// reads them or the request has none) is kept in the set's cache, direct
// mapped by those parts, and the next request with the same ones (the
// same token view, the same connection, the same millisecond) shares it.
func (s *Set) context(r *Request, host, path, rawQuery string, params []Param, route *Route, service string, sc *ctxScratch) cedar.Record {
	c, n := s.pcache, s.needs
	if c == nil || n.wantRequest() || len(params) > 0 && n.wantTop("path_params") ||
		r.Workload != nil && n.wantTop("workload") || len(r.Extensions) > 0 && n.wantTop("extensions") {
		return buildContext(r, host, path, rawQuery, params, route, service, n, sc)
	}
	k := ctxKey{needs: n}
	h := uint64(0)
	if r.Token != nil && n.wantTop("token") {
		k.tok = r.Token
		h ^= maphash.Comparable(c.seed, r.Token) // the key compares the view itself
	}
	if r.Credential != "" && n.wantTop("credential") {
		k.cred = r.Credential
	}
	if r.SourceIP.IsValid() && n.wantTop("source") {
		k.src, k.port = r.SourceIP.Unmap().WithZone(""), r.SourcePort
		h ^= sourceHash(k.src, k.port)
	}
	if !r.Time.IsZero() && n.wantTop("now") {
		k.now, k.hasNow = r.Time.UnixMilli(), true
		h ^= uint64(k.now) * 0xBF58476D1CE4E5B9
	}
	if n.wantTop("route") {
		k.route, k.service, k.hasRoute = route, service, true
		h ^= maphash.String(c.seed, service) * 5
	}
	slot := &c.ctxs[(h^h>>29)%ctxCacheSlots]
	if e := slot.Load(); e != nil && e.key == k {
		return e.rec
	}
	// The entry outlives the request, whose strings share one allocation
	// (see addRequestPrincipal): it holds a copy of the service.
	service = strings.Clone(service)
	if k.hasRoute {
		k.service = service
	}
	rec := buildContext(r, host, path, rawQuery, params, route, service, n, sc)
	slot.Store(&ctxEntry{key: k, rec: rec})
	return rec
}

// principalCacheSlots bounds the principals kept; maxCachedParents the
// parents (groups) and attributes of one: a principal with more is mapped
// every time.
const (
	principalCacheSlots = 1024
	maxCachedParents    = 64
)

type principalEntry struct {
	store      *entityStore
	uid        cedar.EntityUID
	parents    []cedar.EntityUID // as the request gave them
	ent        cedar.Entity      // merged with the set's (when merged)
	merged     bool
	principals []cedar.EntityUID // the principal and its ancestors
	src        attrSource        // the attributes' source
	attrs      cedar.Record      // the attributes (src.record())
}

func newPrincipalCache() *principalCache { return &principalCache{seed: maphash.MakeSeed()} }

func (c *principalCache) hash(uid cedar.EntityUID, parents []cedar.EntityUID) uint64 {
	// Only the spread matters (a lookup compares the whole key): the
	// parents' ids, not their types.
	h := maphash.String(c.seed, string(uid.ID)) ^ maphash.String(c.seed, string(uid.Type))*0x9E3779B97F4A7C15
	for _, p := range parents {
		h = (h ^ maphash.String(c.seed, string(p.ID))) * 0x100000001B3
	}
	return h
}

func (s *Set) decide(r *Request, indexed bool) Result {
	sc := scratchPool.Get().(*scratch)
	defer func() { sc.release(); scratchPool.Put(sc) }()
	return s.finish(s.mapInto(r, sc), indexed)
}

// finish decides a mapped request: a path error or an unknown route as
// such, else Cedar's answer with the route's template and, for a
// replayable set, what is logged.
func (s *Set) finish(m *mapped, indexed bool) Result {
	if m.pathErr != nil {
		res := m.result()
		res.PathError = m.pathErr
		return res
	}
	if m.unrouted {
		res := m.result()
		res.RouteUnknown = true
		return res
	}
	res := s.evaluate(m, indexed)
	if m.route != nil {
		res.Template = m.route.Template
	}
	if s.replayable {
		res.Logged = m.logged(res.Allow)
	}
	return res
}

// evaluate authorizes a mapped request: Cedar over the indexed candidates
// (or every policy), then the @status and step-up answers of a deny.
func (s *Set) evaluate(m *mapped, indexed bool) Result {
	res := m.result()
	var policies cedar.PolicyIterator = fullScan{s}
	var cands []int32
	if indexed {
		bufp := candPool.Get().(*[]int32)
		defer func() { *bufp = (*bufp)[:0]; candPool.Put(bufp) }()
		*bufp = s.index.candidates((*bufp)[:0], m.actions, m.req.Principal.Type, m.principals)
		cands = *bufp
		if m.sc != nil {
			m.sc.sel.selection = selection{set: s, order: cands}
			policies = &m.sc.sel
		} else {
			policies = selection{set: s, order: cands}
		}
	}
	dec, diag := cedar.Authorize(policies, m.ents, m.req)
	res.Allow = dec == cedar.Allow
	res.Reasons, res.Errors = s.diagnostics(diag)
	if s.forbidErrored(&res, dec, diag) {
		return res
	}
	if res.Allow {
		// @step_up_max_age holds whatever the forbid's condition says.
		if su, ids := s.staleAuthAmong(m, cands, indexed); su != nil {
			res.Allow, res.Reasons, res.StepUp = false, ids, su
			return res
		}
	}
	if res.Allow || len(diag.Reasons) == 0 {
		return res
	}
	// A deny by forbids that all carry @status or step-up annotations takes
	// their answer only if the request would be allowed without them.
	forbids := make([]*compiled, 0, len(diag.Reasons))
	allStep, allStatus := true, true
	for _, rs := range diag.Reasons {
		c := s.byID[rs.PolicyID]
		forbids = append(forbids, c)
		allStep = allStep && c.stepUp()
		allStatus = allStatus && c.status != 0
	}
	if !allStep && !allStatus {
		return res
	}
	skip := func(c *compiled) bool {
		for _, f := range forbids {
			if f == c {
				return true
			}
		}
		return false
	}
	var without cedar.PolicyIterator
	switch p := policies.(type) {
	case selection:
		p.skip = skip
		without = p
	case *pooledSelection:
		sel := p.selection
		sel.skip = skip
		without = sel
	default:
		without = selection{set: s, order: allOrder(s), skip: skip}
	}
	if again, _ := cedar.Authorize(without, m.ents, m.req); again != cedar.Allow {
		return res
	}
	if allStep {
		res.StepUp = stepUpOf(forbids)
		return res
	}
	res.Status = forbids[0].status
	return res
}

// stepUpOf is the step-up that satisfies all of forbids (step-up
// annotated): every ACR they name, the smallest max age (-1: none).
func stepUpOf(forbids []*compiled) *StepUp {
	su := &StepUp{MaxAge: -1}
	for _, f := range forbids {
		if f.stepACR != "" && !contains(su.ACR, f.stepACR) {
			su.ACR = append(su.ACR, f.stepACR)
		}
		if f.stepAge >= 0 && (su.MaxAge < 0 || f.stepAge < su.MaxAge) {
			su.MaxAge = f.stepAge
		}
	}
	return su
}

// forbidErrored applies policy.on_error: deny. When a forbid's evaluation
// errored, the request is denied as if it had applied (whatever its
// condition, when or unless, and whatever the error: a missing attribute, a
// type error, an extension function's or an overflow). An erroring permit
// is left to Cedar, which ignores it: it grants nothing.
func (s *Set) forbidErrored(res *Result, dec cedar.Decision, diag cedar.Diagnostic) bool {
	if s.skipErrors {
		return false
	}
	var ids []string
	for _, e := range diag.Errors {
		if c := s.byID[e.PolicyID]; c == nil || c.forbid {
			ids = append(ids, string(e.PolicyID))
		}
	}
	if len(ids) == 0 {
		return false
	}
	if dec == cedar.Allow {
		res.Reasons = nil
	}
	res.Allow, res.PolicyError = false, true
	res.Reasons = append(res.Reasons, ids...)
	return true
}

// diagnostics are Cedar's determining policy ids and "id: message" errors.
func diagnostics(diag cedar.Diagnostic) (reasons, errs []string) {
	for _, rs := range diag.Reasons {
		reasons = append(reasons, string(rs.PolicyID))
	}
	for _, e := range diag.Errors {
		errs = append(errs, fmt.Sprintf("%s: %s", e.PolicyID, e.Message))
	}
	return reasons, errs
}

// diagnostics is diagnostics(diag), where one policy alone decides with
// its own list (compiled.alone): no allocation.
func (s *Set) diagnostics(diag cedar.Diagnostic) (reasons, errs []string) {
	if len(diag.Reasons) == 1 {
		if c := s.byID[diag.Reasons[0].PolicyID]; c != nil && len(c.alone) == 1 {
			_, errs = diagnostics(cedar.Diagnostic{Errors: diag.Errors})
			return c.alone[:1:1], errs
		}
	}
	return diagnostics(diag)
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

func allOrder(s *Set) []int32 {
	out := make([]int32, len(s.policies))
	for i := range out {
		out[i] = int32(i)
	}
	return out
}

// overlay puts the request's own entities (principal, resource, synthesized
// action) in front of the static ones.
type overlay struct {
	static *entityStore
	ents   []cedar.Entity
}

func (o *overlay) add(e cedar.Entity) { o.ents = append(o.ents, e) }

// addMerged adds uid with extra parents and attributes, merged with the
// static entity of the same uid, if any.
func (o *overlay) addMerged(static *entityStore, uid cedar.EntityUID, parents []cedar.EntityUID, attrs cedar.Record) {
	o.add(merged(static, uid, parents, attrs))
}

// merged is uid with extra parents and attributes, merged with the static
// entity of the same uid, if any.
func merged(static *entityStore, uid cedar.EntityUID, parents []cedar.EntityUID, attrs cedar.Record) cedar.Entity {
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
	return e
}

func (o *overlay) Get(uid cedar.EntityUID) (cedar.Entity, bool) {
	for i := range o.ents {
		if o.ents[i].UID == uid {
			return o.ents[i], true
		}
	}
	return o.static.Get(uid)
}
