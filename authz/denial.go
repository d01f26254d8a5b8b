package authz

import (
	"net/http"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/wardenauthz/warden/authz/decisionlog"
	"github.com/wardenauthz/warden/ratelimit"
)

// Decision is how a Check (or an AuthZEN evaluation) ended: the decision
// record's decision, the metrics' decision label and the span's
// warden.decision (decisionlog documents it).
type Decision = decisionlog.Decision

// Decisions.
const (
	Allow = decisionlog.Allow
	Deny  = decisionlog.Deny
)

// Reason is why a Check ended as it did (the decision log's reason).
type Reason = decisionlog.Reason

// Reasons, as in SPEC §8 (decisionlog documents each).
const (
	ReasonPolicyAllow    = decisionlog.ReasonPolicyAllow
	ReasonPolicyDeny     = decisionlog.ReasonPolicyDeny
	ReasonTokenInvalid   = decisionlog.ReasonTokenInvalid
	ReasonTokenRevoked   = decisionlog.ReasonTokenRevoked
	ReasonAnonymousDeny  = decisionlog.ReasonAnonymousDeny
	ReasonStepUp         = decisionlog.ReasonStepUp
	ReasonRateLimited    = decisionlog.ReasonRateLimited
	ReasonUnavailable    = decisionlog.ReasonUnavailable
	ReasonRequestInvalid = decisionlog.ReasonRequestInvalid
	ReasonPolicyError    = decisionlog.ReasonPolicyError
	ReasonRouteUnknown   = decisionlog.ReasonRouteUnknown
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
	// rateLimit is the exhausted rule of a rate_limited denial, whose
	// headers the response carries (zero for other denials).
	rateLimit ratelimit.Decision
	// dpopNonce is the DPoP-Nonce header of a use_dpop_nonce challenge.
	dpopNonce string
}

// httpStatus is the denial's HTTP status: its own, else its reason's.
func (d *denial) httpStatus() int {
	if d.status != 0 {
		return d.status
	}
	return mapping[d.reason].status
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
