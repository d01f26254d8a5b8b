package policy

import (
	"iter"
	"slices"

	"github.com/cedar-policy/cedar-go"
	xast "github.com/cedar-policy/cedar-go/x/exp/ast"
)

// index finds the policies whose action and principal scopes can match a
// request. A policy skipped by it could neither be satisfied nor error
// (Cedar evaluates the scope first and scopes cannot error), so decisions,
// reasons and errors equal a full scan; candidates are yielded in file order.
type index struct {
	anyAction *byPrincipal
	byAction  map[cedar.EntityUID]*byPrincipal
}

// byPrincipal buckets policies by principal scope key. Lists hold policy
// positions in file order.
type byPrincipal struct {
	any    []int32
	byUID  map[cedar.EntityUID][]int32 // principal == X, in X, is T in X
	byType map[cedar.EntityType][]int32
}

func newByPrincipal() *byPrincipal {
	return &byPrincipal{byUID: map[cedar.EntityUID][]int32{}, byType: map[cedar.EntityType][]int32{}}
}

func (b *byPrincipal) add(c *compiled) {
	switch p := c.ast.Principal.(type) {
	case xast.ScopeTypeEq:
		b.byUID[p.Entity] = append(b.byUID[p.Entity], c.order)
	case xast.ScopeTypeIn:
		b.byUID[p.Entity] = append(b.byUID[p.Entity], c.order)
	case xast.ScopeTypeIsIn:
		b.byUID[p.Entity] = append(b.byUID[p.Entity], c.order)
	case xast.ScopeTypeIs:
		b.byType[p.Type] = append(b.byType[p.Type], c.order)
	default:
		b.any = append(b.any, c.order)
	}
}

func buildIndex(ps []*compiled) *index {
	ix := &index{anyAction: newByPrincipal(), byAction: map[cedar.EntityUID]*byPrincipal{}}
	bucket := func(uid cedar.EntityUID) *byPrincipal {
		b, ok := ix.byAction[uid]
		if !ok {
			b = newByPrincipal()
			ix.byAction[uid] = b
		}
		return b
	}
	for _, c := range ps {
		switch a := c.ast.Action.(type) {
		case xast.ScopeTypeEq:
			bucket(a.Entity).add(c)
		case xast.ScopeTypeIn:
			bucket(a.Entity).add(c)
		case xast.ScopeTypeInSet:
			seen := map[cedar.EntityUID]bool{}
			for _, e := range a.Entities {
				if !seen[e] {
					seen[e] = true
					bucket(e).add(c)
				}
			}
		default:
			ix.anyAction.add(c)
		}
	}
	return ix
}

// candidates appends to buf the positions of policies that can match a
// request whose action is in actions (the action and its ancestors) and whose
// principal is in principals (the principal and its ancestors), sorted and
// without duplicates.
func (ix *index) candidates(buf []int32, actions []cedar.EntityUID, ptype cedar.EntityType, principals []cedar.EntityUID) []int32 {
	add := func(b *byPrincipal) {
		buf = append(buf, b.any...)
		buf = append(buf, b.byType[ptype]...)
		for _, p := range principals {
			buf = append(buf, b.byUID[p]...)
		}
	}
	add(ix.anyAction)
	for _, a := range actions {
		if b, ok := ix.byAction[a]; ok {
			add(b)
		}
	}
	slices.Sort(buf)
	return slices.Compact(buf)
}

// selection is a cedar.PolicyIterator over chosen policies of a Set.
type selection struct {
	set   *Set
	order []int32
	skip  func(*compiled) bool
}

func (s selection) All() iter.Seq2[cedar.PolicyID, *cedar.Policy] { return s.each }

// each yields the chosen policies in order, those skip rejects left out.
func (s *selection) each(yield func(cedar.PolicyID, *cedar.Policy) bool) {
	for _, i := range s.order {
		c := s.set.policies[i]
		if s.skip != nil && s.skip(c) {
			continue
		}
		if !yield(c.id, c.policy) {
			return
		}
	}
}

// fullScan is a cedar.PolicyIterator over every policy in file order.
type fullScan struct{ set *Set }

func (f fullScan) All() iter.Seq2[cedar.PolicyID, *cedar.Policy] {
	return func(yield func(cedar.PolicyID, *cedar.Policy) bool) {
		for _, c := range f.set.policies {
			if !yield(c.id, c.policy) {
				return
			}
		}
	}
}
