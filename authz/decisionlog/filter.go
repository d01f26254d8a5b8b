package decisionlog

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/cedar-policy/cedar-go/types"
)

// Filter selects decision records (warden logs, the admin API). Every
// field left empty matches every record; Check reports malformed values.
type Filter struct {
	Since      time.Time
	Until      time.Time // zero: no end
	DecisionID string    // exact, 32 hex digits
	Decision   string    // allow | deny
	Reason     Reason    // one of Reasons
	Principal  string    // exact, e.g. User::"corp|alice"
	Action     string    // exact Cedar action, e.g. Action::"GET /orders/{id}"
	Resource   string    // exact, e.g. Resource::"orders-api:/orders/42"
	Policy     string    // a deciding policy id, e.g. policy0 or an @id
	Node       string    // the replica that decided
	Status     int
}

// Check reports every malformed filter value at once, each naming the
// expected form, and returns the filter with entity references in their
// canonical spelling (so User::"a\u{7c}b" finds User::"a|b"). A filter that
// cannot match anything because of its spelling is an error, never an empty
// answer.
func (f Filter) Check() (Filter, error) {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{field}, args...)...))
	}
	if f.Decision != "" && f.Decision != "allow" && f.Decision != "deny" {
		bad("decision", "%q: want allow or deny", f.Decision)
	}
	if f.Reason != "" && !slices.Contains(Reasons, f.Reason) {
		names := make([]string, len(Reasons))
		for i, r := range Reasons {
			names[i] = string(r)
		}
		bad("reason", "%q: want one of %s", f.Reason, strings.Join(names, ", "))
	}
	if f.DecisionID != "" {
		id := strings.ToLower(f.DecisionID)
		if len(id) != 32 || strings.Trim(id, "0123456789abcdef") != "" {
			bad("decision_id", "%q: want the 32 hex digits of a decision id (a deny's problem+json decision_id, or the x-warden-decision-id header)", f.DecisionID)
		}
		f.DecisionID = id
	}
	entity := func(field string, v *string, example string) {
		if *v == "" {
			return
		}
		var uid types.EntityUID
		if err := uid.UnmarshalCedar([]byte(*v)); err != nil {
			bad(field, "%q: want a Cedar entity reference, e.g. %s (mind the shell: quote it in single quotes)", *v, example)
			return
		}
		*v = uid.String()
	}
	entity("principal", &f.Principal, `User::"corp|alice"`)
	entity("action", &f.Action, `Action::"GET /orders/{id}"`)
	entity("resource", &f.Resource, `Resource::"orders-api:/orders/42"`)
	if f.Action != "" && !strings.HasSuffix(strings.SplitN(f.Action, "::\"", 2)[0], "Action") {
		bad("action", "%q: want an Action entity, e.g. Action::\"GET /orders/{id}\"", f.Action)
	}
	control := func(r rune) bool { return r < 0x20 || r == 0x7f }
	if strings.ContainsFunc(f.Policy, control) {
		bad("policy", "%q: a policy id has no control characters", f.Policy)
	}
	if strings.ContainsFunc(f.Node, control) {
		bad("node", "%q: a node name has no control characters", f.Node)
	}
	if f.Status < 0 || f.Status > 599 || (f.Status > 0 && f.Status < 100) {
		bad("status", "%d: want an HTTP status (100-599) or 0 for any", f.Status)
	}
	if !f.Until.IsZero() && !f.Since.IsZero() && !f.Until.After(f.Since) {
		bad("until", "%s is not after since (%s)", f.Until.UTC().Format(time.RFC3339), f.Since.UTC().Format(time.RFC3339))
	}
	return f, errors.Join(errs...)
}

// Match reports whether r passes the filter.
func (f Filter) Match(r *Record) bool {
	switch {
	case !f.Since.IsZero() && r.Time.Before(f.Since):
		return false
	case !f.Until.IsZero() && !r.Time.Before(f.Until):
		return false
	case f.DecisionID != "" && r.DecisionID != f.DecisionID:
		return false
	case f.Decision != "" && string(r.Decision) != f.Decision:
		return false
	case f.Reason != "" && r.Reason != f.Reason:
		return false
	case f.Principal != "" && r.Principal != f.Principal:
		return false
	case f.Action != "" && r.Action != f.Action:
		return false
	case f.Resource != "" && r.Resource != f.Resource:
		return false
	case f.Policy != "" && !slices.Contains(r.Policies, f.Policy):
		return false
	case f.Node != "" && r.Node != f.Node:
		return false
	case f.Status != 0 && r.Status != f.Status:
		return false
	}
	return true
}
