package review

import (
	"context"
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/cedar-policy/cedar-go"
	"github.com/cedar-policy/cedar-go/types"

	"github.com/wardenauthz/warden/authz/decisionlog"
	"github.com/wardenauthz/warden/policy"
)

// Filter narrows a review's report to one principal or one group (Cedar
// entity strings: User::"corp|alice", Group::"corp|staff").
type Filter struct {
	Principal, Group string
}

// Report is an access review.
type Report struct {
	Since      time.Time         `json:"since"`
	Records    int               `json:"records"`
	Replayable int               `json:"replayable"`
	Principals []PrincipalReport `json:"principals"`
	Groups     []GroupReport     `json:"groups"`
	// UnusedPolicies are the permit policies that decided no allow.
	UnusedPolicies []string `json:"unused_policies"`

	usage *usage
}

// PrincipalReport compares one principal's grants with its use.
type PrincipalReport struct {
	Principal string   `json:"principal"`
	Groups    []string `json:"groups"`
	Granted   []string `json:"granted"` // actions its permits' scopes grant
	Used      []Use    `json:"used"`
	Unused    []string `json:"unused"` // granted, never allowed in the window
}

// Use is an action used (allowed) so many times.
type Use struct {
	Action string `json:"action"`
	Count  int    `json:"count"`
}

// GroupReport compares what the policies naming a group grant with what
// its members used through them.
type GroupReport struct {
	Group    string   `json:"group"`
	Policies []string `json:"policies"` // permits whose principal scope names the group or an ancestor
	Members  []string `json:"members"`  // principals seen in the window
	Granted  []string `json:"granted"`
	Used     []string `json:"used"`
	Unused   []string `json:"unused"`
}

// usage is what the records say was used.
type usage struct {
	principals map[cedar.EntityUID]*seen
	// policyAllows counts the allows each permit decided.
	policyAllows map[string]int
}

type seen struct {
	parents []cedar.EntityUID // as last logged
	used    map[cedar.EntityUID]int
	// via: the actions allowed through each determining policy.
	via map[string]map[cedar.EntityUID]bool
	// grants: what the set's scopes grant it (filled after the scan).
	grants []policy.Grant
}

// reviewLine is the part of a record a review reads (the context is
// skipped, not decoded).
type reviewLine struct {
	Policies []string `json:"policies"`
	Cedar    *struct {
		Decision  string                               `json:"decision"`
		Principal types.ImplicitlyMarshaledEntityUID   `json:"principal"`
		Parents   []types.ImplicitlyMarshaledEntityUID `json:"parents"`
		Action    types.ImplicitlyMarshaledEntityUID   `json:"action"`
	} `json:"cedar"`
}

// Review reads src's replayable records since the given time and compares
// set's grants with their use.
func Review(ctx context.Context, src decisionlog.LogSource, since time.Time, set *policy.Set, f Filter) (*Report, error) {
	u := &usage{principals: map[cedar.EntityUID]*seen{}, policyAllows: map[string]int{}}
	rep := &Report{Since: since, usage: u}
	err := decisionlog.ScanRaw(ctx, src, since, func(line []byte) error {
		rep.Records++
		var l reviewLine
		if json.Unmarshal(line, &l) != nil || l.Cedar == nil {
			return nil
		}
		rep.Replayable++
		p := cedar.EntityUID(l.Cedar.Principal)
		s := u.principals[p]
		if s == nil {
			s = &seen{used: map[cedar.EntityUID]int{}, via: map[string]map[cedar.EntityUID]bool{}}
			u.principals[p] = s
		}
		s.parents = s.parents[:0]
		for _, g := range l.Cedar.Parents {
			s.parents = append(s.parents, cedar.EntityUID(g))
		}
		if l.Cedar.Decision != "allow" {
			return nil
		}
		a := cedar.EntityUID(l.Cedar.Action)
		s.used[a]++
		for _, id := range l.Policies {
			u.policyAllows[id]++
			if s.via[id] == nil {
				s.via[id] = map[cedar.EntityUID]bool{}
			}
			s.via[id][a] = true
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, id := range set.Permits() {
		if u.policyAllows[id] == 0 {
			rep.UnusedPolicies = append(rep.UnusedPolicies, id)
		}
	}
	// members: the principals seen in each group, directly or through a
	// group it is in (in sorted order, each once).
	members := map[cedar.EntityUID][]cedar.EntityUID{}
	for _, p := range sortedUIDs(maps.Keys(u.principals)) {
		s := u.principals[p]
		var pr PrincipalReport
		pr.Principal = p.String()
		for _, g := range s.parents {
			pr.Groups = append(pr.Groups, g.String())
			for _, in := range append([]cedar.EntityUID{g}, set.Ancestors(g)...) {
				if ms := members[in]; len(ms) == 0 || ms[len(ms)-1] != p {
					members[in] = append(ms, p)
				}
			}
		}
		s.grants = set.Grants(p, s.parents)
		for _, g := range s.grants {
			pr.Granted = append(pr.Granted, g.Action.String())
			if s.used[g.Action] == 0 {
				pr.Unused = append(pr.Unused, g.Action.String())
			}
		}
		for _, a := range sortedUIDs(maps.Keys(s.used)) {
			pr.Used = append(pr.Used, Use{Action: a.String(), Count: s.used[a]})
		}
		if f.Principal == "" || f.Principal == pr.Principal {
			if f.Group == "" || slices.Contains(pr.Groups, f.Group) {
				rep.Principals = append(rep.Principals, pr)
			}
		}
	}
	pgs := set.PolicyGrants()
	for _, g := range sortedUIDs(maps.Keys(members)) {
		gr := GroupReport{Group: g.String()}
		for _, m := range members[g] {
			gr.Members = append(gr.Members, m.String())
		}
		if f.Group != "" && f.Group != gr.Group || f.Principal != "" && !slices.Contains(gr.Members, f.Principal) {
			continue
		}
		chain := append([]cedar.EntityUID{g}, set.Ancestors(g)...)
		granted, used := map[cedar.EntityUID]bool{}, map[cedar.EntityUID]bool{}
		for _, pg := range pgs {
			if pg.Entity.Type == "" || !slices.Contains(chain, pg.Entity) {
				continue
			}
			gr.Policies = append(gr.Policies, pg.ID)
			for _, a := range pg.Actions {
				granted[a] = true
			}
			for _, m := range members[g] {
				for a := range u.principals[m].via[pg.ID] {
					used[a] = true
				}
			}
		}
		for _, a := range sortedUIDs(maps.Keys(granted)) {
			gr.Granted = append(gr.Granted, a.String())
			if used[a] {
				gr.Used = append(gr.Used, a.String())
			} else {
				gr.Unused = append(gr.Unused, a.String())
			}
		}
		rep.Groups = append(rep.Groups, gr)
	}
	return rep, nil
}

func sortedUIDs(seq func(func(cedar.EntityUID) bool)) []cedar.EntityUID {
	out := slices.Collect(seq)
	slices.SortFunc(out, func(a, b cedar.EntityUID) int { return strings.Compare(a.String(), b.String()) })
	return out
}
