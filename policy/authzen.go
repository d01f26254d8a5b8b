package policy

import (
	"slices"
	"strings"

	"github.com/cedar-policy/cedar-go"
)

// SourceAuthZEN is Logged.Source for a request decided by Evaluate.
const SourceAuthZEN = "authzen"

// EvalEntity is a request entity given by the caller of an evaluation API
// (AuthZEN): its uid and the attributes the caller states for it.
type EvalEntity struct {
	UID   cedar.EntityUID
	Attrs cedar.Record
}

// EvalRequest is a Cedar request stated entity by entity, as an AuthZEN
// access evaluation is: no route mapping, no token, no HTTP context.
type EvalRequest struct {
	Principal EvalEntity
	Action    cedar.EntityUID
	Resource  EvalEntity
	Context   cedar.Record
}

// Evaluate decides r against the set through the same index, overlay and
// deny rules (policy.on_error) as Decide. The principal's and resource's
// parents are the set's (entities.json) alone: a caller cannot add
// memberships. Their attributes are the set's, plus those the caller states
// that the set does not define: a stored attribute is never overridden. The
// action's ancestors are the set's; an action the set does not define gets
// none (no HTTP method group is synthesized for it), so only a policy naming
// it exactly, or with an unconstrained action scope, can apply.
func (s *Set) Evaluate(r *EvalRequest) Result {
	m := &mapped{ents: &overlay{static: s.entities}}
	m.actions = append(m.actions, r.Action)
	m.actions = s.entities.appendAncestors(m.actions, r.Action)
	m.principals = append(m.principals, r.Principal.UID)
	m.principals = s.entities.appendAncestors(m.principals, r.Principal.UID)
	m.principalAttrs = s.addStated(m, r.Principal)
	rattrs := s.addStated(m, r.Resource)
	m.req = cedar.Request{Principal: r.Principal.UID, Action: r.Action, Resource: r.Resource.UID, Context: r.Context}
	res := s.evaluate(m, true)
	if s.replayable {
		res.Logged = m.logged(res.Allow)
		res.Logged.Source = SourceAuthZEN
		if rattrs.Len() > 0 {
			res.Logged.ResourceAttrs = &rattrs
		}
	}
	return res
}

// addStated puts e in m's overlay when the caller stated attributes the set
// does not define for it (merged with the stored ones, which win); it
// returns those attributes: what a replay must add to the stored entity.
func (s *Set) addStated(m *mapped, e EvalEntity) cedar.Record {
	if e.Attrs.Len() == 0 {
		return cedar.Record{}
	}
	extra := e.Attrs
	if se, ok := s.entities.Get(e.UID); ok && se.Attributes.Len() > 0 {
		am := e.Attrs.Map()
		for k := range se.Attributes.All() {
			delete(am, k) // stored attributes win
		}
		extra = cedar.NewRecord(am)
	}
	if extra.Len() > 0 {
		m.ents.addMerged(s.entities, e.UID, nil, extra)
	}
	return extra
}

// EntitiesOfType lists the uids of the set's entities (entities.json and
// Warden's action entities) of type t, sorted by id.
func (s *Set) EntitiesOfType(t cedar.EntityType) []cedar.EntityUID {
	var out []cedar.EntityUID
	for uid := range s.entities.all() {
		if uid.Type == t {
			out = append(out, uid)
		}
	}
	slices.SortFunc(out, func(a, b cedar.EntityUID) int { return strings.Compare(string(a.ID), string(b.ID)) })
	return out
}
