// Package authz is Warden's Envoy ext_authz v3 server. It runs the fixed
// pipeline authenticate → revocation → authorize → ratelimit → respond,
// maps every outcome to the CheckResponse Envoy expects (SPEC §7), and hands
// a decision record to the decision log off the request path. Any internal
// fault denies: Warden never allows on an error.
package authz
