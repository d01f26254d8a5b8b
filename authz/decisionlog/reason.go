package decisionlog

import "slices"

// Decision is how a decision ended: the record's decision, the metrics'
// decision label and the span's warden.decision.
type Decision string

// Decisions.
const (
	Allow Decision = "allow"
	Deny  Decision = "deny"
)

// Reason is why a decision ended as it did (the record's reason).
type Reason string

// Reasons, as in SPEC §8.
const (
	ReasonPolicyAllow   Reason = "policy_allow"
	ReasonPolicyDeny    Reason = "policy_deny"
	ReasonTokenInvalid  Reason = "token_invalid"
	ReasonTokenRevoked  Reason = "token_revoked"
	ReasonAnonymousDeny Reason = "anonymous_deny"
	ReasonStepUp        Reason = "step_up"
	ReasonRateLimited   Reason = "rate_limited"
	ReasonUnavailable   Reason = "unavailable"
	// ReasonRequestInvalid: a request Warden will not judge (a malformed or
	// ambiguous path, 400; headers over the limits, 431; a body over the
	// limit, 413). Not in SPEC §8's first list; see SECURITY.md.
	ReasonRequestInvalid Reason = "request_invalid"
	// ReasonPolicyError: a forbid's condition errored, so it could have
	// applied (policy.on_error: deny), 403.
	ReasonPolicyError Reason = "policy_error"
	// ReasonRouteUnknown: the request's service has routes and the request
	// matches none (policy.unrouted: deny), 403, before any policy.
	ReasonRouteUnknown Reason = "route_unknown"
)

// Reasons are every decision log reason (SPEC §8), sorted, for filters and
// their errors: policy_allow and every reason of authz's denial table (a
// test in authz holds the two equal).
var Reasons = func() []Reason {
	rs := []Reason{
		ReasonPolicyAllow, ReasonPolicyDeny, ReasonTokenInvalid, ReasonTokenRevoked,
		ReasonAnonymousDeny, ReasonStepUp, ReasonRateLimited, ReasonUnavailable,
		ReasonRequestInvalid, ReasonPolicyError, ReasonRouteUnknown,
	}
	slices.Sort(rs)
	return rs
}()
