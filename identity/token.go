package identity

import (
	"log/slog"
	"sync/atomic"
	"time"
)

// Kind is the kind of principal a request is made by.
type Kind uint8

// Principal kinds, named as their Cedar entity types.
const (
	Anonymous Kind = iota
	User
	Client
	Workload
	// APIKey is a caller holding an API key (identity.api_keys).
	APIKey
)

func (k Kind) String() string {
	switch k {
	case User:
		return "User"
	case Client:
		return "Client"
	case Workload:
		return "Workload"
	case APIKey:
		return "ApiKey"
	}
	return "Anonymous"
}

// Identity is who is calling.
type Identity struct {
	Kind Kind
	// ID is the entity id: "<issuer>|<sub>", "<issuer>|<client_id>", a SPIFFE
	// ID, or "anonymous".
	ID string
	// Groups are issuer-qualified group ids: "<issuer>|<group>".
	Groups []string
	// Token is the verified token, nil when none was presented.
	Token *Token
	// Credential is the kind of credential that authenticated the caller,
	// "" when none did (a workload by its certificate alone, anonymous).
	Credential CredentialKind
	// Peer is the calling workload (mTLS), nil when there is none. When Kind
	// is Workload it is also the principal.
	Peer *WorkloadID
	// APIKey is the presented API key's entry when Kind is APIKey (ID is
	// its name, Groups its parents).
	APIKey *APIKeyInfo
}

// RevocationTarget is what a revocation check of id asks about: the
// subject (the principal id for a token, `ApiKey::"NAME"` for an API key),
// the token's jti, and the issue time a subject revocation compares. ok is
// false when id holds no revocable credential.
func (id *Identity) RevocationTarget() (subject, jti string, iat time.Time, ok bool) {
	switch {
	case id.Token != nil:
		return id.ID, id.Token.Jti, id.Token.RevocationIat(), true
	case id.APIKey != nil:
		return id.APIKey.RevocationSubject(), "", id.APIKey.Created, true
	}
	return "", "", time.Time{}, false
}

// Token is a verified access token. It never holds the raw token.
type Token struct {
	// Issuer is the configured issuer name (the principal id prefix).
	Issuer string
	// Subject is "Issuer|Sub": the user principal's id (built once per
	// verified token, not per Check). Subject revocations are keyed on the
	// principal id (Identity.ID), which for a client-credentials token is
	// "Issuer|ClientID" instead.
	Subject  string
	Iss      string
	Sub      string
	Jti      string
	ClientID string
	Acr      string
	Aud      []string
	Scopes   []string
	Groups   []string
	Amr      []string
	Exp      time.Time
	Iat      time.Time
	Nbf      time.Time
	AuthTime time.Time
	// Skew is the issuer's clock_skew: the token was accepted with an iat
	// up to this far in the future (a subject revocation counts it, see
	// RevocationIat).
	Skew time.Duration
	// Cnf is the token's confirmation (cnf): when set, the token is
	// accepted only with the proof of possession it names.
	Cnf Confirmation
	// Claims are all claims as decoded from JSON (numbers as json.Number).
	Claims map[string]any
	// Introspected is set when the issuer's introspection endpoint (RFC
	// 7662), not a signature, vouched for the token; Claims are then the
	// introspection response's members.
	Introspected bool

	memo atomic.Pointer[any]
}

// Memo returns what build returns for this token, calling build only the
// first time (or, under a race, a few times, keeping one answer). A verified
// token is cached and shared by every Check that presents it, so later
// stages keep their derived views of it here instead of rebuilding them per
// request. build must not depend on anything but the token.
func (t *Token) Memo(build func(*Token) any) any {
	if p := t.memo.Load(); p != nil {
		return *p
	}
	v := build(t)
	if t.memo.CompareAndSwap(nil, &v) {
		return v
	}
	return *t.memo.Load()
}

// LogValue keeps tokens out of logs: only the issuer, subject and jti.
func (t *Token) LogValue() slog.Value {
	if t == nil {
		return slog.StringValue("")
	}
	return slog.GroupValue(slog.String("iss", t.Iss), slog.String("sub", t.Sub), slog.String("jti", t.Jti))
}

// Credential is a raw bearer token. Its String and LogValue never reveal it.
type Credential string

func (Credential) String() string       { return "REDACTED" }
func (Credential) LogValue() slog.Value { return slog.StringValue("REDACTED") }
func (c Credential) GoString() string   { return "REDACTED" }

// MarshalJSON redacts too: slog's JSON handler marshals struct fields with
// encoding/json, which ignores LogValue.
func (Credential) MarshalJSON() ([]byte, error) { return []byte(`"REDACTED"`), nil }

// RevocationIat is the issue time a subject revocation compares with its
// "before": iat less the issuer's clock_skew. An IdP whose clock runs ahead
// stamps a token up to clock_skew after the revocation that should refuse
// it, so a subject revocation at T refuses tokens with iat < T + skew. It
// errs towards revoking: a token really issued within the skew after the
// revocation is refused too. Zero when the token has no iat (revoked by any
// subject revocation).
func (t *Token) RevocationIat() time.Time {
	if t.Iat.IsZero() {
		return t.Iat
	}
	return t.Iat.Add(-t.Skew)
}
