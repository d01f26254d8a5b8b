// Package token is the one view of a verified access token that the stages
// after authentication read. It owns that view; nothing else keeps a copy.
//
//   - identity fills a [View] when it verifies a token (it is embedded in
//     identity.Token), names the principal ([View.Seal]) and caches it with
//     the token, so every Check presenting the same token shares it;
//   - policy reads its Cedar record (context.token, [View.Record]), built
//     at most once per cached token;
//   - authz reads its principal (the record and x-warden-principal) and
//     its identity header values (x-warden-groups, x-warden-scopes).
//
// It imports nothing of Warden, so the leaves identity and policy can both
// use it and still import nothing of each other or of authz.
package token
