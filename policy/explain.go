package policy

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/cedar-policy/cedar-go"
	cast "github.com/cedar-policy/cedar-go/ast"
	xast "github.com/cedar-policy/cedar-go/x/exp/ast"
	xeval "github.com/cedar-policy/cedar-go/x/exp/eval"
)

// Explanation says how a Set decides one request, step by step: the route,
// the request's entities with their ancestors, every policy the index
// could not rule out (each evaluated on its own: its scope, then each
// condition), and the rule that decided. It is built off the hot path
// (Explain evaluates each candidate separately) and its conclusion is the
// decision Decide gives the same request.
type Explanation struct {
	Route     RouteExplanation  `json:"route"`
	Principal EntityExplanation `json:"principal"`
	Action    EntityExplanation `json:"action"`
	Resource  EntityExplanation `json:"resource"`
	// Policies are the candidates, in file order. Skipped counts the
	// policies the index ruled out: their principal or action scope cannot
	// match, so they can neither apply nor error.
	Policies []PolicyExplanation `json:"policies"`
	Skipped  int                 `json:"skipped"`
	// Decision is allow or deny; Reason the policy stage's reason
	// (policy_allow, policy_deny, policy_error, step_up, route_unknown,
	// request_invalid).
	Decision string `json:"decision"`
	Reason   string `json:"reason"`
	// Determining are the deciding policy ids (Result.Reasons).
	Determining []string `json:"determining"`
	Status      int      `json:"status,omitempty"`  // a deny's @status
	StepUp      *StepUp  `json:"step_up,omitempty"` // what a step-up deny asks for
	// Rule is the deciding rule, in words.
	Rule string `json:"rule"`
}

// RouteExplanation is how the request was routed.
type RouteExplanation struct {
	Matched  bool    `json:"matched"`
	Service  string  `json:"service,omitempty"`
	Method   string  `json:"method,omitempty"`
	Path     string  `json:"path,omitempty"` // the route's template
	Host     string  `json:"host,omitempty"`
	Resource string  `json:"resource,omitempty"` // the route's resource template
	Params   []Param `json:"params,omitempty"`
	// Note says why no route matched and what follows from it.
	Note string `json:"note,omitempty"`
	// Considered are the routes for the request's host and service that
	// did not match, each with why (at most maxExplainRoutes).
	Considered []RouteMiss `json:"considered,omitempty"`
}

// RouteMiss is a route that did not match, and why.
type RouteMiss struct {
	Route string `json:"route"` // "GET /orders/{id}"
	Why   string `json:"why"`
}

// EntityExplanation is an entity of the request and its ancestors.
type EntityExplanation struct {
	UID       string   `json:"uid"`
	Ancestors []string `json:"ancestors"`
}

// PolicyExplanation is one candidate policy evaluated on its own.
type PolicyExplanation struct {
	ID       string `json:"id"`
	Effect   string `json:"effect"` // permit or forbid
	Position string `json:"position"`
	// Scope says whether each of principal, action and resource scope
	// matched ("matched", "no", or "error: ...").
	Scope      ScopeExplanation       `json:"scope"`
	Conditions []ConditionExplanation `json:"conditions,omitempty"`
	// Outcome: applies, scope_mismatch, condition_false or error.
	Outcome string `json:"outcome"`
	Error   string `json:"error,omitempty"`
}

// ScopeExplanation is a policy's scope, part by part.
type ScopeExplanation struct {
	Matched   bool   `json:"matched"`
	Principal string `json:"principal"`
	Action    string `json:"action"`
	Resource  string `json:"resource"`
}

// ConditionExplanation is one when or unless clause.
type ConditionExplanation struct {
	Kind string `json:"kind"` // when or unless
	Text string `json:"text"`
	// Result is the expression's value: true, false, error, or
	// not_evaluated (an earlier part already failed). Passed says whether
	// the clause lets the policy apply (a when true, an unless false).
	Result string `json:"result"`
	Passed bool   `json:"passed"`
	Error  string `json:"error,omitempty"`
}

// Policy outcomes.
const (
	OutcomeApplies        = "applies"
	OutcomeScopeMismatch  = "scope_mismatch"
	OutcomeConditionFalse = "condition_false"
	OutcomeError          = "error"
)

const maxExplainRoutes = 20

// Explain explains how s decides r (see Explanation).
func (s *Set) Explain(r *Request) *Explanation {
	m := s.mapRequest(r)
	e := &Explanation{}
	e.Route = s.explainRoute(r, m)
	e.Principal = entityExplanation(m.ents, m.req.Principal)
	e.Action = entityExplanation(m.ents, m.req.Action)
	e.Resource = entityExplanation(m.ents, m.req.Resource)
	e.Decision = "deny"
	switch {
	case m.pathErr != nil:
		e.Reason = "request_invalid"
		e.Rule = fmt.Sprintf("the request path is refused before any policy (400): %v", m.pathErr)
		e.Determining = []string{}
		return e
	case m.unrouted:
		e.Reason = "route_unknown"
		e.Rule = fmt.Sprintf("no route of service %q matches, and policy.unrouted is deny: 403 route_unknown before any policy", m.service)
		e.Determining = []string{}
		return e
	}
	order := s.index.candidates(nil, m.actions, m.req.Principal.Type, m.principals)
	e.Skipped = len(s.policies) - len(order)
	s.explainPolicies(e, order, m.ents, m.req, m)
	return e
}

// ExplainCedar explains a plain Cedar request as Authorize decides it:
// every policy, over s's entities overlaid by ents.
func (s *Set) ExplainCedar(ents cedar.EntityMap, req cedar.Request) *Explanation {
	all := s.entities.overlaid(ents)
	e := &Explanation{
		Principal: entityExplanation(all, req.Principal),
		Action:    entityExplanation(all, req.Action),
		Resource:  entityExplanation(all, req.Resource),
		Decision:  "deny",
	}
	e.Route.Note = "a plain Cedar request: no route"
	uids := func(x EntityExplanation, uid cedar.EntityUID) []cedar.EntityUID {
		out := []cedar.EntityUID{uid}
		for _, a := range x.Ancestors {
			var u cedar.EntityUID
			if u.UnmarshalCedar([]byte(a)) == nil {
				out = append(out, u)
			}
		}
		return out
	}
	order := s.index.candidates(nil, uids(e.Action, req.Action), req.Principal.Type, uids(e.Principal, req.Principal))
	e.Skipped = len(s.policies) - len(order)
	s.explainPolicies(e, order, all, req, nil)
	// Authorize gives no @status or step-up answer.
	if e.StepUp != nil || e.Status != 0 {
		e.StepUp, e.Status, e.Reason = nil, 0, "policy_deny"
		e.Rule = "forbid " + strings.Join(e.Determining, ", ") + " applies"
	}
	return e
}

// explainPolicies evaluates each policy of order on its own and concludes
// as evaluate and forbidErrored do (m: the mapped request, whose allow
// @step_up_max_age may still refuse; nil for a plain Cedar request).
func (s *Set) explainPolicies(e *Explanation, order []int32, ents cedar.EntityGetter, req cedar.Request, m *mapped) {
	env := xeval.Env{Entities: ents, Principal: req.Principal, Action: req.Action, Resource: req.Resource, Context: req.Context}
	var permits, forbids, errForbids, errPermits []*compiled
	for _, i := range order {
		c := s.policies[i]
		pe := explainPolicy(c, env)
		// The outcome is Cedar's own, for this one policy.
		dec, diag := cedar.Authorize(selection{set: s, order: []int32{i}}, ents, req)
		switch {
		case len(diag.Errors) > 0:
			pe.Outcome, pe.Error = OutcomeError, diag.Errors[0].Message
			if c.forbid {
				errForbids = append(errForbids, c)
			} else {
				errPermits = append(errPermits, c)
			}
		case len(diag.Reasons) > 0:
			pe.Outcome = OutcomeApplies
			if dec == cedar.Deny {
				forbids = append(forbids, c)
			} else {
				permits = append(permits, c)
			}
		case pe.Outcome == "" || pe.Outcome == OutcomeApplies || pe.Outcome == OutcomeError:
			pe.Outcome = OutcomeConditionFalse
		}
		e.Policies = append(e.Policies, pe)
	}
	ids := func(cs []*compiled) []string {
		out := []string{}
		for _, c := range cs {
			out = append(out, string(c.id))
		}
		return out
	}
	onErr := "policy.on_error: deny"
	if s.skipErrors {
		onErr = "policy.on_error: skip"
	}
	ignored := ""
	if len(errPermits) > 0 {
		ignored = fmt.Sprintf("; permit %s errored and grants nothing", strings.Join(ids(errPermits), ", "))
	}
	switch {
	case len(errForbids) > 0 && !s.skipErrors:
		e.Reason = "policy_error"
		e.Determining = append(ids(forbids), ids(errForbids)...)
		e.Rule = fmt.Sprintf("forbid %s errored: policy_error (%s)", strings.Join(ids(errForbids), ", "), onErr)
		if len(forbids) > 0 {
			e.Rule += fmt.Sprintf("; forbid %s applies", strings.Join(ids(forbids), ", "))
		}
	case len(forbids) > 0:
		e.Reason = "policy_deny"
		e.Determining = ids(forbids)
		e.Rule = "forbid " + strings.Join(e.Determining, ", ") + " applies"
		allStep, allStatus := true, true
		for _, f := range forbids {
			allStep = allStep && f.stepUp()
			allStatus = allStatus && f.status != 0
		}
		switch {
		case len(permits) == 0 && (allStep || allStatus):
			e.Rule += " (no permit applies either, so its annotations give no answer)"
		case allStep:
			e.StepUp, e.Reason = stepUpOf(forbids), "step_up"
			e.Rule += fmt.Sprintf(", and only it: permit %s would allow; step-up asked (401 insufficient_user_authentication)", strings.Join(ids(permits), ", "))
		case allStatus:
			e.Status = forbids[0].status
			e.Rule += fmt.Sprintf(", and only it: permit %s would allow; its @status %d answers", strings.Join(ids(permits), ", "), e.Status)
		}
	case len(permits) > 0 && m != nil && s.staleStepUp(e, m, ids(permits)):
	case len(permits) > 0:
		e.Decision, e.Reason = "allow", "policy_allow"
		e.Determining = ids(permits)
		e.Rule = "permit " + strings.Join(e.Determining, ", ") + " applies and no forbid"
		if len(errForbids) > 0 {
			e.Rule += fmt.Sprintf(" (forbid %s errored and is ignored: %s)", strings.Join(ids(errForbids), ", "), onErr)
		}
	default:
		e.Reason = "policy_deny"
		e.Determining = []string{}
		e.Rule = "no permit matched: default deny"
		if len(errForbids) > 0 {
			e.Rule += fmt.Sprintf(" (forbid %s errored and is ignored: %s)", strings.Join(ids(errForbids), ", "), onErr)
		}
	}
	e.Rule += ignored
}

// staleStepUp concludes e when permits allow m but a @step_up_max_age
// forbid in whose scope m is needs a fresher authentication (staleAuth).
func (s *Set) staleStepUp(e *Explanation, m *mapped, permits []string) bool {
	su, ids := s.staleAuth(m)
	if su == nil {
		return false
	}
	e.Decision, e.Reason, e.StepUp, e.Determining = "deny", "step_up", su, ids
	age := "the token has no auth_time"
	if d, known := authAge(m.req.Context); known {
		age = fmt.Sprintf("the token's auth_time is %s old", d.Round(time.Second))
	}
	e.Rule = fmt.Sprintf("permit %s applies, but the request is in the scope of forbid %s, whose @step_up_max_age (%ds) is not met (%s): step-up asked (401 insufficient_user_authentication)",
		strings.Join(permits, ", "), strings.Join(ids, ", "), su.MaxAge, age)
	return true
}

// explainPolicy evaluates c's scope and conditions separately, in Cedar's
// order, stopping at the first part that fails.
func explainPolicy(c *compiled, env xeval.Env) PolicyExplanation {
	pe := PolicyExplanation{ID: string(c.id), Effect: "permit", Position: c.pos}
	if c.forbid {
		pe.Effect = "forbid"
	}
	all := xast.Scope{}
	part := func(p *xast.Policy) (bool, string) {
		v, err := xeval.Eval(xeval.PolicyToNode(p).AsIsNode(), env)
		if err != nil {
			return false, "error: " + err.Error()
		}
		if v == cedar.True {
			return true, "matched"
		}
		return false, "no"
	}
	var okP, okA, okR bool
	okP, pe.Scope.Principal = part(&xast.Policy{Principal: c.ast.Principal, Action: all.All(), Resource: all.All()})
	okA, pe.Scope.Action = part(&xast.Policy{Principal: all.All(), Action: c.ast.Action, Resource: all.All()})
	okR, pe.Scope.Resource = part(&xast.Policy{Principal: all.All(), Action: all.All(), Resource: c.ast.Resource})
	pe.Scope.Matched = okP && okA && okR
	failed := !pe.Scope.Matched
	if failed {
		pe.Outcome = OutcomeScopeMismatch
	}
	for _, cond := range c.ast.Conditions {
		ce := ConditionExplanation{Kind: "when", Text: conditionText(cond)}
		if cond.Condition == xast.ConditionUnless {
			ce.Kind = "unless"
		}
		if failed {
			ce.Result = "not_evaluated"
			pe.Conditions = append(pe.Conditions, ce)
			continue
		}
		// The body's value, as a when clause sees it (a non-boolean is
		// Cedar's type error).
		when := xast.ConditionType{Condition: xast.ConditionWhen, Body: cond.Body}
		v, err := xeval.Eval(xeval.PolicyToNode(&xast.Policy{Principal: all.All(), Action: all.All(), Resource: all.All(), Conditions: []xast.ConditionType{when}}).AsIsNode(), env)
		switch {
		case err != nil:
			ce.Result, ce.Error = "error", err.Error()
			failed, pe.Outcome = true, OutcomeError
		default:
			ce.Result = "false"
			if v == cedar.True {
				ce.Result = "true"
			}
			ce.Passed = (v == cedar.True) == (cond.Condition == xast.ConditionWhen)
			if !ce.Passed {
				failed, pe.Outcome = true, OutcomeConditionFalse
			}
		}
		pe.Conditions = append(pe.Conditions, ce)
	}
	if !failed {
		pe.Outcome = OutcomeApplies
	}
	return pe
}

// conditionText is a condition in Cedar syntax: `when { ... }`.
func conditionText(cond xast.ConditionType) string {
	p := xast.Permit()
	if cond.Condition == xast.ConditionUnless {
		p.Unless(xast.NewNode(cond.Body))
	} else {
		p.When(xast.NewNode(cond.Body))
	}
	text := string(cedar.NewPolicyFromAST((*cast.Policy)(p)).MarshalCedar())
	for _, kw := range []string{"\nwhen", "\nunless"} {
		if i := strings.Index(text, kw); i >= 0 {
			text = text[i+1:]
			break
		}
	}
	text = strings.TrimSuffix(strings.TrimSpace(text), ";")
	return strings.Join(strings.Fields(text), " ")
}

// entityExplanation is uid with its ancestors in ents (breadth first, each
// once, each entity's parents sorted).
func entityExplanation(ents cedar.EntityGetter, uid cedar.EntityUID) EntityExplanation {
	out := EntityExplanation{UID: uid.String(), Ancestors: []string{}}
	seen := map[cedar.EntityUID]bool{uid: true}
	queue := []cedar.EntityUID{uid}
	for len(queue) > 0 {
		e, ok := ents.Get(queue[0])
		queue = queue[1:]
		if !ok {
			continue
		}
		var next []cedar.EntityUID
		for p := range e.Parents.All() {
			if !seen[p] {
				seen[p] = true
				next = append(next, p)
			}
		}
		// Parents are a set: in a stable order.
		sort.Slice(next, func(i, j int) bool { return next[i].String() < next[j].String() })
		for _, p := range next {
			queue = append(queue, p)
			out.Ancestors = append(out.Ancestors, p.String())
		}
	}
	return out
}

// explainRoute is how mapRequest routed r.
func (s *Set) explainRoute(r *Request, m *mapped) RouteExplanation {
	var re RouteExplanation
	if rt := m.route; rt != nil {
		re.Matched = true
		re.Service, re.Method, re.Path, re.Host, re.Resource = rt.Service, rt.Method, rt.Template, rt.Host, ""
		if rt.hasRes {
			re.Resource = rt.resourceTemplate()
		}
		path, _, _ := strings.Cut(r.Path, "?")
		re.Params, _ = rt.match(strings.ToUpper(r.Method), hostOnly(r.Host), r.Extensions["service"], path, nil, false)
		return re
	}
	host, service := hostOnly(r.Host), r.Extensions["service"]
	path, _, _ := strings.Cut(r.Path, "?")
	method := strings.ToUpper(r.Method)
	for _, rt := range s.routes {
		if (rt.Host != "" && rt.Host != host) || (service != "" && rt.Service != "" && rt.Service != service) {
			continue
		}
		if len(re.Considered) == maxExplainRoutes {
			re.Note = fmt.Sprintf("(only the first %d routes considered are listed) ", maxExplainRoutes)
			break
		}
		re.Considered = append(re.Considered, RouteMiss{Route: rt.Method + " " + rt.Template, Why: rt.mismatch(method, host, service, path)})
	}
	switch {
	case m.pathErr != nil:
		re.Note += fmt.Sprintf("the path is not routed: %v", m.pathErr)
	case r.Path == "":
		re.Note += "no path (a TCP connection): the route-less action"
	case len(re.Considered) == 0:
		re.Note += fmt.Sprintf("no route for host %q / service %q: the route-less action %s", host, m.service, m.req.Action)
	case m.unrouted:
		re.Note += "no route matches, and policy.unrouted is deny: route_unknown"
	default:
		re.Note += fmt.Sprintf("no route matches; policy.unrouted is allow_policies: the route-less action %s", m.req.Action)
	}
	return re
}

// resourceTemplate is the route's resource as configured: Type::"{id}".
func (r *Route) resourceTemplate() string {
	var b strings.Builder
	for _, s := range r.resID {
		if s.param == "" {
			b.WriteString(s.lit)
		} else {
			b.WriteString("{" + s.param + "}")
		}
	}
	return fmt.Sprintf("%s::%q", r.resType, b.String())
}

// mismatch says why r does not match method and path (host and service
// already match).
func (r *Route) mismatch(method, host, service, path string) string {
	if r.Method != "*" && r.Method != method && !(method == "HEAD" && r.Method == "GET") {
		return fmt.Sprintf("method %s, the route's is %s", method, r.Method)
	}
	if _, ok := r.match(method, host, service, path, nil, false); ok {
		return "matches as written, but not every reading of the path does"
	}
	segs := strings.Split(strings.TrimPrefix(path, "/"), "/")
	for i, s := range r.segs {
		if i >= len(segs) {
			return fmt.Sprintf("the path has %d segments, the route needs %d", len(segs), len(r.segs))
		}
		if s.param == "" && segs[i] != s.lit {
			return fmt.Sprintf("segment %d is %q, the route's is %q", i+1, segs[i], s.lit)
		}
		if s.param != "" && segs[i] == "" {
			return fmt.Sprintf("segment %d is empty, {%s} needs a value", i+1, s.param)
		}
	}
	if !r.prefix && len(segs) > len(r.segs) {
		return fmt.Sprintf("the path has %d segments, the route %d", len(segs), len(r.segs))
	}
	if r.prefix && len(segs) <= len(r.segs) {
		return "the route matches only paths below it"
	}
	return "the path does not match the template"
}

// Agrees reports how the explanation's conclusion differs from res, the
// decision Decide (or Authorize, for ExplainCedar) gave the same request
// (nil when it does not).
func (e *Explanation) Agrees(res Result) error {
	reason := "policy_deny"
	switch {
	case res.PathError != nil:
		reason = "request_invalid"
	case res.RouteUnknown:
		reason = "route_unknown"
	case res.PolicyError:
		reason = "policy_error"
	case res.Allow:
		reason = "policy_allow"
	case res.StepUp != nil:
		reason = "step_up"
	}
	var diffs []string
	if (e.Decision == "allow") != res.Allow {
		diffs = append(diffs, fmt.Sprintf("decision %s, Decide allow=%v", e.Decision, res.Allow))
	}
	if e.Reason != reason {
		diffs = append(diffs, fmt.Sprintf("reason %s, Decide %s", e.Reason, reason))
	}
	a, b := append([]string{}, e.Determining...), append([]string{}, res.Reasons...)
	sort.Strings(a)
	sort.Strings(b)
	if strings.Join(a, ",") != strings.Join(b, ",") {
		diffs = append(diffs, fmt.Sprintf("determining %v, Decide %v", e.Determining, res.Reasons))
	}
	if e.Status != res.Status {
		diffs = append(diffs, fmt.Sprintf("status %d, Decide %d", e.Status, res.Status))
	}
	if (e.StepUp == nil) != (res.StepUp == nil) || e.StepUp != nil && (strings.Join(e.StepUp.ACR, " ") != strings.Join(res.StepUp.ACR, " ") || e.StepUp.MaxAge != res.StepUp.MaxAge) {
		diffs = append(diffs, fmt.Sprintf("step-up %+v, Decide %+v", e.StepUp, res.StepUp))
	}
	if len(diffs) == 0 {
		return nil
	}
	return fmt.Errorf("explanation disagrees with the decision: %s", strings.Join(diffs, "; "))
}
