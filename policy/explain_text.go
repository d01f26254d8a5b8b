package policy

import (
	"fmt"
	"io"
	"strings"
)

// WriteText writes e for a person, each line after indent: the route, the
// request's entities, each candidate policy with its scope and conditions,
// and the deciding rule last.
func (e *Explanation) WriteText(w io.Writer, indent string) {
	line := func(k, format string, a ...any) {
		fmt.Fprintf(w, "%s%-11s %s\n", indent, k+":", fmt.Sprintf(format, a...))
	}
	more := func(format string, a ...any) {
		fmt.Fprintf(w, "%s%-11s %s\n", indent, "", fmt.Sprintf(format, a...))
	}
	rt := e.Route
	switch {
	case rt.Matched:
		s := rt.Method + " " + rt.Path
		if rt.Service != "" {
			s += " (service " + rt.Service + ")"
		}
		if rt.Host != "" {
			s += " host " + rt.Host
		}
		if rt.Resource != "" {
			s += " -> resource " + rt.Resource
		}
		var ps []string
		for _, p := range rt.Params {
			ps = append(ps, p.Name+"="+p.Value)
		}
		if len(ps) > 0 {
			s += ", " + strings.Join(ps, " ")
		}
		line("route", "%s", s)
	default:
		line("route", "none: %s", rt.Note)
		for _, c := range rt.Considered {
			more("  %s: %s", c.Route, c.Why)
		}
	}
	ent := func(k string, x EntityExplanation) {
		if len(x.Ancestors) == 0 {
			line(k, "%s", x.UID)
			return
		}
		line(k, "%s in %s", x.UID, strings.Join(x.Ancestors, ", "))
	}
	ent("principal", e.Principal)
	ent("action", e.Action)
	ent("resource", e.Resource)
	if e.Reason == "request_invalid" || e.Reason == "route_unknown" {
		line("policies", "none evaluated")
	} else {
		n := fmt.Sprintf("%d that could apply", len(e.Policies))
		if e.Skipped > 0 {
			n += fmt.Sprintf(" (%d others' principal or action scope cannot match)", e.Skipped)
		}
		line("policies", "%s", n)
		var outOfScope []string
		for _, p := range e.Policies {
			if p.Outcome == OutcomeScopeMismatch {
				var parts []string
				for _, sp := range []struct{ k, v string }{{"principal", p.Scope.Principal}, {"action", p.Scope.Action}, {"resource", p.Scope.Resource}} {
					if sp.v != "matched" {
						parts = append(parts, sp.k)
					}
				}
				outOfScope = append(outOfScope, fmt.Sprintf("%s %s (%s)", p.Effect, p.ID, strings.Join(parts, ", ")))
				continue
			}
			what := map[string]string{OutcomeApplies: "APPLIES", OutcomeConditionFalse: "does not apply", OutcomeError: "ERROR"}[p.Outcome]
			more("%s %s  %s  %s", p.Effect, p.ID, p.Position, what)
			if len(p.Conditions) == 0 {
				more("    scope matched; no condition")
			}
			for _, c := range p.Conditions {
				r := c.Result
				switch {
				case c.Result == "error":
					r = "error: " + c.Error
				case c.Result == "not_evaluated":
					r = "not evaluated"
				case c.Passed:
					r += ", passes"
				default:
					r += ", fails"
				}
				more("    %s  => %s", c.Text, r)
			}
			if p.Outcome == OutcomeError && (len(p.Conditions) == 0 || p.Conditions[len(p.Conditions)-1].Result != "error") {
				more("    error: %s", p.Error)
			}
		}
		if len(outOfScope) > 0 {
			more("scope does not match:")
			for _, o := range outOfScope {
				more("    %s", o)
			}
		}
	}
	line("decided", "%s: %s", e.Decision, e.Rule)
}
