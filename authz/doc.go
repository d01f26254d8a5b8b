// Package authz is Warden's Envoy ext_authz v3 server: it reads a
// CheckRequest, runs the pipeline's stages in turn until one denies, and
// answers with the CheckResponse Envoy expects (SPEC §7). It hands a
// decision record to the decision log off the request path. Any internal
// fault denies: Warden never allows on an error.
//
// # Stages
//
// Each stage is one function returning its value or a *denial (check.go);
// run calls them in this order, and conclude fills the record in one place
// (record) from their results and makes the response from it (respond.go).
//
//	stage            reads                             may deny with (status)
//	───────────────  ────────────────────────────────  ─────────────────────────────────────
//	parseRequest     CheckRequest (request.go)         –  (counts first; reads no more
//	                                                      than Limits allow)
//	screen           Limits, WithRefusal, :authority   request_invalid (400, 413, 431)
//	     │
//	authenticate     authorization, source.principal,  anonymous_deny (401),
//	     │           x-forwarded-client-cert           token_invalid (401), unavailable (503)
//	     │           → identity.Identity (its Token
//	     │           embeds the token's view)
//	checkRevocation  the token's jti, principal, iat   token_revoked (401), unavailable (503)
//	     │           (Revocations)
//	authorize        policy.Set.Decide on the request  request_invalid (400), route_unknown,
//	     │           and identity → policy.Result      policy_error, policy_deny (403 or the
//	     │                                             route's status), step_up,
//	     │                                             anonymous_deny (401)
//	limit            the set's rate-limit rules (Live) rate_limited (429), unavailable (503)
//	     │           → the rule that applied
//	conclude         every result above                –  (record, then allow or deny)
//
// The denial table (denial.go: mapping) gives each Reason its gRPC code,
// default HTTP status and problem title; deny adds the problem+json body,
// WWW-Authenticate, Retry-After and RateLimit headers; allow adds the
// identity headers and removes spoofed ones.
//
// # Imports
//
// authz may import the leaves identity, policy and ratelimit (which import
// nothing of authz or of each other), internal helpers, and the decision
// log package the record is handed to (authz/decisionlog); never a package
// that imports it (authz/server, authz/config, authz/admin, authz/authzen,
// authz/httpauthz, authz/review, authz/console).
//
// The verified token's view is internal/token's (token.View, embedded in
// identity.Token): identity builds it once per verified token, policy reads
// its Cedar record, and authz its principal (the record's and
// x-warden-principal) and the groups and scopes header values; nobody
// copies it. The header names, under the configured prefix, are authz's
// (headerNames).
package authz
