package identity

// Credential kinds of issue 21 that this file's branch (fopq) produces.
// TODO(merge): these join the other kinds (jwt, dpop, mtls_bound) in
// identity/credential.go (branch fdpop), which sets context.credential.kind.
const (
	// CredentialIntrospected is an opaque (or introspect-all) token judged
	// by the issuer's introspection endpoint (RFC 7662): Token.Introspected.
	CredentialIntrospected = "introspected"
	// CredentialAPIKey is an API key (Kind APIKey).
	CredentialAPIKey = "api_key"
)

// CredentialKindOf is the credential kind of id for the kinds this branch
// adds, "" for the others (left to identity/credential.go).
func CredentialKindOf(id *Identity) string {
	switch {
	case id.Kind == APIKey:
		return CredentialAPIKey
	case id.Token != nil && id.Token.Introspected:
		return CredentialIntrospected
	}
	return ""
}
