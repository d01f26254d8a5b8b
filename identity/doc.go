// Package identity decides who is calling: it verifies OIDC/JWT access tokens
// (strictly, before and after go-oidc's own checks), recognises SPIFFE workload
// identities from Envoy's peer principal, and falls back to an anonymous
// principal when no credential is presented and anonymous access is enabled.
//
// It knows nothing of policies or Envoy responses: it returns an [Identity] or
// one of its sentinel errors, which the authz package maps to a denial.
package identity
