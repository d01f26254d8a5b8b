// Package identity decides who is calling: it verifies OIDC/JWT access tokens
// (strictly, before and after go-oidc's own checks), recognises SPIFFE workload
// identities from Envoy's peer principal, and falls back to an anonymous
// principal when no credential is presented and anonymous access is enabled.
//
// It knows nothing of policies or Envoy responses: it returns an [Identity] or
// one of its sentinel errors, which the authz package maps to a denial.
//
// A verified [Token] embeds the one view of it the later stages read,
// internal/token.View (owned by that leaf package, which imports nothing of
// Warden): identity fills it from the claims, seals it with the principal
// it derives (principalOf: User or Client, and its id), and caches it with
// the token, so the Checks that present the same token share one view —
// its Cedar record for policy, its principal and header values for authz.
package identity
