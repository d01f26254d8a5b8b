package policy

import (
	"errors"
	"strings"

	"github.com/cedar-policy/cedar-go"
	"github.com/cedar-policy/cedar-go/types"
)

// uid is an entity UID in Cedar's implicit JSON form, {"type": T, "id": I}.
type uid = types.ImplicitlyMarshaledEntityUID

// Logged is one decision's Cedar request as a replayable decision record
// keeps it (decision_log.replayable): the request entities with their
// parents, the action, and the whole context (which never holds the
// credential headers). Replay evaluates it again against another set.
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
}

// logged is m's request in its logged form.
func (m *mapped) logged(allow bool) *Logged {
	l := &Logged{Decision: "deny", Principal: uid(m.req.Principal), Action: uid(m.req.Action), Resource: uid(m.req.Resource), Context: m.req.Context}
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
	if l.Principal.Type == "" || l.Action.Type == "" || l.Resource.Type == "" {
		return Result{}, errors.New("logged request lacks its principal, action or resource")
	}
	m := &mapped{ents: &overlay{static: s.entities}}
	action := cedar.EntityUID(l.Action)
	method, _, _ := strings.Cut(string(action.ID), " ")
	s.addAction(m, action, method)
	resource := cedar.EntityUID(l.Resource)
	if len(l.ResourceParents) > 0 {
		m.ents.addMerged(s.entities, resource, uids(l.ResourceParents), cedar.Record{})
	}
	var attrs cedar.Record
	if l.Attrs != nil {
		attrs = *l.Attrs
	}
	principal := cedar.EntityUID(l.Principal)
	s.addPrincipal(m, principal, uids(l.Parents), attrs)
	m.req = cedar.Request{Principal: principal, Action: action, Resource: resource, Context: l.Context}
	return s.evaluate(m, true), nil
}

func uids(us []uid) []cedar.EntityUID {
	out := make([]cedar.EntityUID, len(us))
	for i, u := range us {
		out[i] = cedar.EntityUID(u)
	}
	return out
}
