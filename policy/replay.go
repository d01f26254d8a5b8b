package policy

import (
	"errors"
	"strings"

	"github.com/cedar-policy/cedar-go"
	"github.com/cedar-policy/cedar-go/types"

	"github.com/wardenauthz/warden/internal/credential"
)

// uid is an entity UID in Cedar's implicit JSON form, {"type": T, "id": I}.
type uid = types.ImplicitlyMarshaledEntityUID

// Logged is one decision's Cedar request as a replayable decision record
// keeps it (decision_log.replayable): the request entities with their
// parents, the action, and the whole context, which never holds the
// credential headers, and whose headers and query parameters that look
// like credentials are Redacted. Replay evaluates it again against another
// set.
type Logged struct {
	// Decision is the policy decision: allow or deny.
	Decision        string        `json:"decision"`
	Principal       uid           `json:"principal"`
	Parents         []uid         `json:"parents,omitempty"`
	Attrs           *cedar.Record `json:"attrs,omitempty"`
	Action          uid           `json:"action"`
	Resource        uid           `json:"resource"`
	ResourceParents []uid         `json:"resource_parents,omitempty"`
	Context         cedar.Record  `json:"context"`
	// ResourceAttrs are attributes a caller stated for the resource (an
	// AuthZEN evaluation's resource properties the set does not define).
	ResourceAttrs *cedar.Record `json:"resource_attrs,omitempty"`
	// Source is "authzen" for an AuthZEN evaluation (Set.Evaluate): its
	// action is replayed as stated, with no HTTP method group synthesized.
	Source string `json:"source,omitempty"`
}

// logged is m's request in its logged form.
func (m *mapped) logged(allow bool) *Logged {
	l := &Logged{Decision: "deny", Principal: uid(m.req.Principal), Action: uid(m.req.Action), Resource: uid(m.req.Resource), Context: redact(m.req.Context)}
	if allow {
		l.Decision = "allow"
	}
	for _, p := range m.principalParents {
		l.Parents = append(l.Parents, uid(p))
	}
	if m.principalAttrs.Len() > 0 {
		a := m.principalAttrs
		l.Attrs = &a
	}
	for _, p := range m.resourceParents {
		l.ResourceParents = append(l.ResourceParents, uid(p))
	}
	return l
}

// Replay decides a logged request against s, as s would have decided it:
// the same entities (principal parents and attributes from the log, the
// rest from s's entities), the same indexed evaluation and deny answers.
func (s *Set) Replay(l *Logged) (Result, error) {
	m, err := s.mapLogged(l)
	if err != nil {
		return Result{}, err
	}
	return s.evaluate(m, true), nil
}

// ExplainLogged explains how s decides a logged request (as Replay decides
// it): the entities, each candidate policy, the deciding rule. The route is
// not known from the log; the action names it.
func (s *Set) ExplainLogged(l *Logged) (*Explanation, error) {
	m, err := s.mapLogged(l)
	if err != nil {
		return nil, err
	}
	e := &Explanation{Decision: "deny"}
	e.Route.Note = "a logged request: the route is the action " + m.req.Action.String()
	e.Principal = entityExplanation(m.ents, m.req.Principal)
	e.Action = entityExplanation(m.ents, m.req.Action)
	e.Resource = entityExplanation(m.ents, m.req.Resource)
	order := s.index.candidates(nil, m.actions, m.req.Principal.Type, m.principals)
	e.Skipped = len(s.policies) - len(order)
	s.explainPolicies(e, order, m.ents, m.req, m)
	return e, nil
}

// mapLogged is a logged request mapped as Decide maps a live one.
func (s *Set) mapLogged(l *Logged) (*mapped, error) {
	if l.Principal.Type == "" || l.Action.Type == "" || l.Resource.Type == "" {
		return nil, errors.New("logged request lacks its principal, action or resource")
	}
	m := &mapped{ents: &overlay{static: s.entities}}
	action := cedar.EntityUID(l.Action)
	if l.Source == SourceAuthZEN {
		m.actions = s.entities.appendAncestors(append(m.actions, action), action)
	} else {
		method, _, _ := strings.Cut(string(action.ID), " ")
		s.addAction(m, action, method)
	}
	resource := cedar.EntityUID(l.Resource)
	if len(l.ResourceParents) > 0 || l.ResourceAttrs != nil {
		var ra cedar.Record
		if l.ResourceAttrs != nil {
			ra = *l.ResourceAttrs
		}
		m.ents.addMerged(s.entities, resource, uids(l.ResourceParents), ra)
	}
	var attrs cedar.Record
	if l.Attrs != nil {
		attrs = *l.Attrs
	}
	principal := cedar.EntityUID(l.Principal)
	s.addPrincipal(m, principal, uids(l.Parents), attrs)
	m.req = cedar.Request{Principal: principal, Action: action, Resource: resource, Context: l.Context}
	return m, nil
}

func uids(us []uid) []cedar.EntityUID {
	out := make([]cedar.EntityUID, len(us))
	for i, u := range us {
		out[i] = cedar.EntityUID(u)
	}
	return out
}

// Redacted replaces, in a logged context, the values of headers and query
// parameters whose names look like credentials (see sensitive).
const Redacted = "[REDACTED]"

// sensitive reports whether a header or query parameter name looks like it
// carries a credential (credential.SensitiveName: the one list every
// string of a decision record is redacted by). Such values never leave in
// a decision record; a policy that compares them with a literal replays
// against Redacted.
func sensitive(name string) bool { return credential.SensitiveName(name) }

// redact is ctx with request.headers and request.query values of sensitive
// names replaced (ctx itself, unchanged, when there are none).
func redact(ctx cedar.Record) cedar.Record {
	rv, ok := ctx.Get("request")
	req, isRec := rv.(cedar.Record)
	if !ok || !isRec {
		return ctx
	}
	changed := false
	rm := req.Map()
	for _, member := range []cedar.String{"headers", "query"} {
		v, ok := rm[member]
		sub, isRec := v.(cedar.Record)
		if !ok || !isRec {
			continue
		}
		sm := sub.Map()
		hit := false
		for k, val := range sm {
			if !sensitive(string(k)) {
				continue
			}
			hit = true
			if set, ok := val.(cedar.Set); ok {
				vs := make([]cedar.Value, 0, set.Len())
				for range set.All() {
					vs = append(vs, cedar.String(Redacted))
				}
				sm[k] = cedar.NewSet(vs...)
			} else {
				sm[k] = cedar.String(Redacted)
			}
		}
		if hit {
			rm[member] = cedar.NewRecord(sm)
			changed = true
		}
	}
	if !changed {
		return ctx
	}
	cm := ctx.Map()
	cm["request"] = cedar.NewRecord(rm)
	return cedar.NewRecord(cm)
}
