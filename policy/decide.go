package policy

import (
	"fmt"
	"strings"
	"sync"

	"github.com/cedar-policy/cedar-go"
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
	// Reasons are the determining policy ids; Errors the policies whose
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
}

func (s *Set) mapRequest(r *Request) *mapped {
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
			m.resourceParents = []cedar.EntityUID{svc}
			m.ents.addMerged(s.entities, resource, m.resourceParents, cedar.Record{})
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
	s.addPrincipal(m, principal, parents, attrs)
	m.req = cedar.Request{
		Principal: principal,
		Action:    action,
		Resource:  resource,
		Context:   buildContext(r, host, path, rawQuery, params, m.route, m.service, s.needs),
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
	m.principals = append(m.principals, principal)
	if len(parents) > 0 || attrs.Len() > 0 {
		m.ents.addMerged(s.entities, principal, parents, attrs)
	}
	m.principals = s.entities.appendAncestors(m.principals, principal)
	for _, p := range parents {
		m.principals = append(m.principals, p)
		m.principals = s.entities.appendAncestors(m.principals, p)
	}
	m.principalParents, m.principalAttrs = parents, attrs
}

func (s *Set) decide(r *Request, indexed bool) Result {
	m := s.mapRequest(r)
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
		policies = selection{set: s, order: cands}
	}
	dec, diag := cedar.Authorize(policies, m.ents, m.req)
	res.Allow = dec == cedar.Allow
	res.Reasons, res.Errors = diagnostics(diag)
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

func (o *overlay) Get(uid cedar.EntityUID) (cedar.Entity, bool) {
	for i := range o.ents {
		if o.ents[i].UID == uid {
			return o.ents[i], true
		}
	}
	return o.static.Get(uid)
}
