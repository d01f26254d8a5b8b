package policy

import (
	"slices"
	"strings"

	"github.com/cedar-policy/cedar-go"
	xast "github.com/cedar-policy/cedar-go/x/exp/ast"
)

// Actions are the actions a request can have in this set: every route
// action and every method action (not the read and write groups), sorted.
func (s *Set) Actions() []cedar.EntityUID {
	var out []cedar.EntityUID
	for uid := range s.entities.all() {
		if uid.Type == actionType && uid != readAction && uid != writeAct {
			out = append(out, uid)
		}
	}
	slices.SortFunc(out, func(a, b cedar.EntityUID) int { return strings.Compare(string(a.ID), string(b.ID)) })
	return out
}

// Grant is an action a principal is granted by scope, with the permit
// policies that grant it.
type Grant struct {
	Action   cedar.EntityUID
	Policies []string
}

// Grants are the actions whose permit policies' principal and action
// scopes match principal (with parents, as logged) and no unconditional
// forbid's scopes also match. Conditions and resource scopes are not
// evaluated: a grant is what the scopes give, the upper bound of what the
// principal may do.
func (s *Set) Grants(principal cedar.EntityUID, parents []cedar.EntityUID) []Grant {
	m := &mapped{ents: &overlay{static: s.entities}}
	s.addPrincipal(m, principal, parents, cedar.Record{})
	var out []Grant
	for _, a := range s.Actions() {
		am := &mapped{ents: m.ents}
		method, _, _ := strings.Cut(string(a.ID), " ")
		s.addAction(am, a, method)
		var g Grant
		forbidden := false
		for _, i := range s.index.candidates(nil, am.actions, principal.Type, m.principals) {
			c := s.policies[i]
			if !scopeHas(c.ast.Principal, principal, m.principals) || !scopeHas(c.ast.Action, a, am.actions) {
				continue
			}
			if c.forbid {
				forbidden = forbidden || len(c.ast.Conditions) == 0
				continue
			}
			g.Policies = append(g.Policies, string(c.id))
		}
		if len(g.Policies) > 0 && !forbidden {
			g.Action = a
			out = append(out, g)
		}
	}
	return out
}

// scopeHas reports whether a principal or action scope matches uid, whose
// ancestors (uid first) are anc.
func scopeHas(scope xast.IsScopeNode, uid cedar.EntityUID, anc []cedar.EntityUID) bool {
	switch sc := scope.(type) {
	case xast.ScopeTypeAll:
		return true
	case xast.ScopeTypeEq:
		return sc.Entity == uid
	case xast.ScopeTypeIn:
		return slices.Contains(anc, sc.Entity)
	case xast.ScopeTypeInSet:
		for _, e := range sc.Entities {
			if slices.Contains(anc, e) {
				return true
			}
		}
		return false
	case xast.ScopeTypeIs:
		return uid.Type == sc.Type
	case xast.ScopeTypeIsIn:
		return uid.Type == sc.Type && slices.Contains(anc, sc.Entity)
	}
	return false
}

// Permits are the ids of the set's permit policies, in file order.
func (s *Set) Permits() []string {
	var out []string
	for _, c := range s.policies {
		if !c.forbid {
			out = append(out, string(c.id))
		}
	}
	return out
}

// PolicyGrant is what one permit policy grants by its scopes.
type PolicyGrant struct {
	ID string
	// Entity is the principal scope's entity (principal == E, in E, is T in
	// E), zero when the scope names none.
	Entity  cedar.EntityUID
	Actions []cedar.EntityUID
}

// PolicyGrants are the set's permit policies with the actions their
// action scopes take in, in file order.
func (s *Set) PolicyGrants() []PolicyGrant {
	actions := s.Actions()
	var out []PolicyGrant
	for _, c := range s.policies {
		if c.forbid {
			continue
		}
		g := PolicyGrant{ID: string(c.id)}
		switch sc := c.ast.Principal.(type) {
		case xast.ScopeTypeEq:
			g.Entity = sc.Entity
		case xast.ScopeTypeIn:
			g.Entity = sc.Entity
		case xast.ScopeTypeIsIn:
			g.Entity = sc.Entity
		}
		for _, a := range actions {
			if scopeHas(c.ast.Action, a, s.entities.appendAncestors([]cedar.EntityUID{a}, a)) {
				g.Actions = append(g.Actions, a)
			}
		}
		out = append(out, g)
	}
	return out
}

// Ancestors are uid's ancestors in the set's entities (not uid itself).
func (s *Set) Ancestors(uid cedar.EntityUID) []cedar.EntityUID {
	return s.entities.appendAncestors(nil, uid)
}

// Policy is the policy with the given id, nil when there is none.
func (s *Set) Policy(id string) *cedar.Policy {
	if c, ok := s.byID[cedar.PolicyID(id)]; ok {
		return c.policy
	}
	return nil
}

// Forbids are the ids of the set's forbid policies, in file order.
func (s *Set) Forbids() []string {
	var out []string
	for _, c := range s.policies {
		if c.forbid {
			out = append(out, string(c.id))
		}
	}
	return out
}
