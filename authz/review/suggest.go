package review

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/cedar-policy/cedar-go"

	"github.com/wardenauthz/warden/policy"
)

// Suggest is a narrower policy set (Cedar text) that allows what the
// reviewed window used and nothing else a logged principal was granted:
//   - a permit that decided no allow is left out;
//   - a permit that did is kept with its principal scope, resource scope
//     and conditions, its action scope narrowed to the actions used
//     through it; where its principals used different actions, or some
//     principals it grants never used it, one copy per distinct set of
//     actions, limited to the principals that used exactly those
//     (principal == P for one, [P, ...].contains(principal) for more);
//   - forbids are kept as they are.
//
// Ids are the original's, with ".used" (and a number per copy) added.
//
// set must be the set the report was made with (Review).
func (r *Report) Suggest(set *policy.Set) (string, error) {
	u := r.usage
	// Who each permit grants to, among the logged principals.
	grantees := map[string][]cedar.EntityUID{}
	for p, s := range u.principals {
		for _, g := range s.grants {
			for _, id := range g.Policies {
				if !slices.Contains(grantees[id], p) {
					grantees[id] = append(grantees[id], p)
				}
			}
		}
	}
	var b strings.Builder
	b.WriteString("// Suggested by warden access-review: what was used since " + r.Since.UTC().Format("2006-01-02T15:04:05Z") + ", and no more.\n")
	for _, id := range set.Permits() {
		if u.policyAllows[id] == 0 {
			fmt.Fprintf(&b, "\n// %s decided no allow: left out.\n", id)
			continue
		}
		// Principals that used id, grouped by the actions they used through it.
		byActions := map[string][]cedar.EntityUID{}
		actionsOf := map[string][]cedar.EntityUID{}
		for _, p := range sortedUIDs(maps.Keys(u.principals)) {
			via := u.principals[p].via[id]
			if len(via) == 0 {
				continue
			}
			as := sortedUIDs(maps.Keys(via))
			key := fmt.Sprint(as)
			byActions[key] = append(byActions[key], p)
			actionsOf[key] = as
		}
		users := 0
		for _, ps := range byActions {
			users += len(ps)
		}
		whole := len(byActions) == 1 && users == len(grantees[id])
		keys := slices.Sorted(maps.Keys(byActions))
		for i, key := range keys {
			newID := id + ".used"
			if len(keys) > 1 {
				newID = fmt.Sprintf("%s.used.%d", id, i+1)
			}
			var only []cedar.EntityUID
			if !whole {
				only = byActions[key]
			}
			text, err := narrowed(set.Policy(id), newID, actionsOf[key], only)
			if err != nil {
				return "", fmt.Errorf("policy %s: %w", id, err)
			}
			b.WriteString("\n" + text + "\n")
		}
	}
	for _, id := range set.Forbids() {
		b.WriteString("\n" + string(set.Policy(id).MarshalCedar()) + "\n")
	}
	return b.String(), nil
}

// narrowed rewrites p (through its JSON form) with a new id, an action
// scope of exactly actions, and, when only is given, a principal limited
// to those.
func narrowed(p *cedar.Policy, id string, actions, only []cedar.EntityUID) (string, error) {
	j, err := p.MarshalJSON()
	if err != nil {
		return "", err
	}
	var est map[string]any
	if err := json.Unmarshal(j, &est); err != nil {
		return "", err
	}
	ann, _ := est["annotations"].(map[string]any)
	if ann == nil {
		ann = map[string]any{}
	}
	ann["id"] = id
	est["annotations"] = ann
	ent := func(u cedar.EntityUID) map[string]any {
		return map[string]any{"type": string(u.Type), "id": string(u.ID)}
	}
	if len(actions) == 1 {
		est["action"] = map[string]any{"op": "==", "entity": ent(actions[0])}
	} else {
		var es []any
		for _, a := range actions {
			es = append(es, ent(a))
		}
		est["action"] = map[string]any{"op": "in", "entities": es}
	}
	switch {
	case len(only) == 1 && scopeOp(est["principal"]) == "All":
		est["principal"] = map[string]any{"op": "==", "entity": ent(only[0])}
	case len(only) > 0:
		var set []any
		for _, u := range only {
			set = append(set, map[string]any{"Value": map[string]any{"__entity": ent(u)}})
		}
		conds, _ := est["conditions"].([]any)
		est["conditions"] = append(conds, map[string]any{"kind": "when", "body": map[string]any{
			"contains": map[string]any{"left": map[string]any{"Set": set}, "right": map[string]any{"Var": "principal"}},
		}})
	}
	j, err = json.Marshal(est)
	if err != nil {
		return "", err
	}
	var out cedar.Policy
	if err := out.UnmarshalJSON(j); err != nil {
		return "", err
	}
	return string(out.MarshalCedar()), nil
}

func scopeOp(v any) string {
	m, _ := v.(map[string]any)
	op, _ := m["op"].(string)
	return op
}
