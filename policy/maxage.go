package policy

import (
	"slices"
	"time"

	"github.com/cedar-policy/cedar-go"
	"github.com/cedar-policy/cedar-go/ast"
	xast "github.com/cedar-policy/cedar-go/x/exp/ast"
)

// maxAge is a forbid's @step_up_max_age, enforced by Warden rather than
// left to the policy's condition: every request in the forbid's scope
// (principal, action, resource; its when/unless conditions play no part)
// needs a token whose auth_time is at most age seconds before the request
// time, whatever the policy's condition says. A missing auth_time is too
// old.
type maxAge struct {
	c     *compiled
	scope *cedar.PolicySet // the forbid's scope as a condition-less permit
}

// maxAges compiles the @step_up_max_age forbids of ps.
func maxAges(ps []*compiled) []maxAge {
	var out []maxAge
	for _, c := range ps {
		if !c.forbid || c.stepAge < 0 {
			continue
		}
		scope := *c.ast
		scope.Effect, scope.Conditions, scope.Annotations = xast.EffectPermit, nil, nil
		set := cedar.NewPolicySet()
		set.Add(c.id, cedar.NewPolicyFromAST((*ast.Policy)(&scope)))
		out = append(out, maxAge{c: c, scope: set})
	}
	return out
}

// staleAuth is the step-up answer when an allowed request is in the scope
// of a @step_up_max_age forbid and its authentication is older than the
// forbid allows (or of unknown age), with the ids of those forbids; nil
// when none applies. It reads context.token.auth_time and context.now,
// which ctxNeeds keeps for sets with such forbids.
func (s *Set) staleAuth(m *mapped) (*StepUp, []string) {
	return s.staleAuthAmong(m, nil, false)
}

// staleAuthAmong is staleAuth where, when indexed, cands are the index's
// candidates for m (sorted): a forbid not among them is not in m's scope
// (the index leaves out only policies whose principal or action scope
// cannot match), so its scope is not evaluated.
func (s *Set) staleAuthAmong(m *mapped, cands []int32, indexed bool) (*StepUp, []string) {
	if len(s.maxAges) == 0 {
		return nil, nil
	}
	age, known := authAge(m.req.Context)
	var su *StepUp
	var ids []string
	for _, a := range s.maxAges {
		if known && age <= time.Duration(a.c.stepAge)*time.Second {
			continue
		}
		if indexed {
			if _, in := slices.BinarySearch(cands, a.c.order); !in {
				continue // not in the forbid's scope
			}
		}
		if dec, _ := cedar.Authorize(a.scope, m.ents, m.req); dec != cedar.Allow {
			continue // not in the forbid's scope
		}
		if su == nil {
			su = &StepUp{MaxAge: a.c.stepAge}
		}
		su.MaxAge = min(su.MaxAge, a.c.stepAge)
		if a.c.stepACR != "" && !contains(su.ACR, a.c.stepACR) {
			su.ACR = append(su.ACR, a.c.stepACR)
		}
		ids = append(ids, string(a.c.id))
	}
	return su, ids
}

// authAge is how long before context.now the token's auth_time is; known
// is false when either is missing.
func authAge(ctx cedar.Record) (time.Duration, bool) {
	nowV, ok := ctx.Get("now")
	now, isDT := nowV.(cedar.Datetime)
	if !ok || !isDT {
		return 0, false
	}
	tokV, ok := ctx.Get("token")
	tok, isRec := tokV.(cedar.Record)
	if !ok || !isRec {
		return 0, false
	}
	atV, ok := tok.Get("auth_time")
	at, isLong := atV.(cedar.Long)
	if !ok || !isLong {
		return 0, false
	}
	return time.UnixMilli(now.Milliseconds()).Sub(time.Unix(int64(at), 0)), true
}
