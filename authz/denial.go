package authz

import (
	"net/http"
	"time"

	"google.golang.org/grpc/codes"
)

// Reason is why a Check ended as it did (the decision log's reason).
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

// denial is a stage's typed refusal; respond maps it to a CheckResponse.
type denial struct {
	reason Reason
	status int    // HTTP status; 0 means the reason's default
	detail string // safe to show the client
	// www is the WWW-Authenticate value, when one applies.
	www string
	// retryAfter is set for 429 and 503.
	retryAfter time.Duration
	// dpopNonce is the DPoP-Nonce header of a use_dpop_nonce challenge.
	dpopNonce string
}

// mapping is the one table from reason to gRPC code, default HTTP status and
// problem title.
var mapping = map[Reason]struct {
	code   codes.Code
	status int
	title  string
}{
	ReasonTokenInvalid:   {codes.Unauthenticated, http.StatusUnauthorized, "Invalid token"},
	ReasonTokenRevoked:   {codes.Unauthenticated, http.StatusUnauthorized, "Token revoked"},
	ReasonAnonymousDeny:  {codes.Unauthenticated, http.StatusUnauthorized, "Authentication required"},
	ReasonStepUp:         {codes.Unauthenticated, http.StatusUnauthorized, "Stronger authentication required"},
	ReasonPolicyDeny:     {codes.PermissionDenied, http.StatusForbidden, "Forbidden"},
	ReasonRateLimited:    {codes.ResourceExhausted, http.StatusTooManyRequests, "Too many requests"},
	ReasonUnavailable:    {codes.Unavailable, http.StatusServiceUnavailable, "Authorization unavailable"},
	ReasonRequestInvalid: {codes.InvalidArgument, http.StatusBadRequest, "Bad request"},
	ReasonPolicyError:    {codes.PermissionDenied, http.StatusForbidden, "Forbidden"},
	ReasonRouteUnknown:   {codes.PermissionDenied, http.StatusForbidden, "Forbidden"},
}
