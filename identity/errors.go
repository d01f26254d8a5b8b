package identity

import (
	"errors"
	"time"
)

// Sentinel errors. Authenticate wraps them with detail that is safe to show
// to the caller (never token contents).
var (
	ErrMalformed       = errors.New("malformed token")
	ErrTooLarge        = errors.New("token too large")
	ErrUnsupportedForm = errors.New("unsupported token form")
	ErrAlgorithm       = errors.New("algorithm not allowed")
	ErrUnknownIssuer   = errors.New("unknown issuer")
	ErrSignature       = errors.New("invalid signature")
	ErrUnknownKey      = errors.New("unknown signing key")
	ErrExpired         = errors.New("token expired")
	ErrNotYetValid     = errors.New("token not yet valid")
	ErrIssuedInFuture  = errors.New("token issued in the future")
	ErrAudience        = errors.New("audience not accepted")
	ErrType            = errors.New("token type not accepted")
	ErrClaims          = errors.New("invalid claims")
	ErrIssuerNotReady  = errors.New("issuer keys not available")
	// ErrIntrospectionUnavailable: the introspection endpoint gave no
	// usable answer (down, refused Warden's client, garbage, a stale signed
	// answer). IsUnavailable holds too (503).
	ErrIntrospectionUnavailable = errors.New("token introspection unavailable")
	// ErrAPIKeysUnavailable: the API key store could not be read, or too
	// many key comparisons were under way. IsUnavailable holds too (503).
	ErrAPIKeysUnavailable = errors.New("api keys unavailable")
)

// IsUnavailable reports whether err means Warden could not judge the token
// (keys never fetched, or the DPoP replay cache unreachable), as opposed to the token being bad.
func IsUnavailable(err error) bool {
	return errors.Is(err, ErrIssuerNotReady) || errors.Is(err, ErrReplayUnavailable)
}

// Unavailable names what an IsUnavailable error could not reach, for the
// client's 503: "DPoP replay state", "token introspection", "api keys" or
// "token issuer keys".
func Unavailable(err error) string {
	switch {
	case errors.Is(err, ErrReplayUnavailable):
		return "DPoP replay state"
	case errors.Is(err, ErrIntrospectionUnavailable):
		return "token introspection"
	case errors.Is(err, ErrAPIKeysUnavailable):
		return "api keys"
	}
	return "token issuer keys"
}

// RetryAfter is how long a caller refused because Warden could not judge
// its token (IsUnavailable) should wait: until the key source may be asked
// again, at least def.
func RetryAfter(err error, def time.Duration) time.Duration {
	var u *unavailable
	if errors.As(err, &u) && u.after > def {
		return u.after
	}
	return def
}

// Sender-constrained token errors (RFC 9449, RFC 8705).
var (
	// ErrDPoPProof: the DPoP proof is missing, malformed or does not hold
	// (401 DPoP error="invalid_dpop_proof").
	ErrDPoPProof = errors.New("invalid DPoP proof")
	// ErrDPoPNonce: the proof must carry the server's current nonce (401
	// DPoP error="use_dpop_nonce" with a DPoP-Nonce header).
	ErrDPoPNonce = errors.New("DPoP nonce required")
	// ErrDPoPBound: a DPoP-bound token presented without DPoP (as Bearer),
	// a DPoP-scheme token that is not bound, or a bound token from an
	// issuer with dpop: off (401 invalid_token).
	ErrDPoPBound = errors.New("token requires DPoP")
	// ErrCertBound: a certificate-bound token over a connection without
	// that certificate (401 invalid_token).
	ErrCertBound = errors.New("token bound to another client certificate")
	// ErrReplayUnavailable: the DPoP replay cache could not be asked; the
	// proof cannot be judged (503).
	ErrReplayUnavailable = errors.New("DPoP replay cache unavailable")
)

// DPoPChallenge is what a refusal of a DPoP request tells the client: the
// algorithms the issuer accepts in proofs (the challenge's algs) and, for
// ErrDPoPNonce, the nonce to use. Errors of this package that concern DPoP
// wrap one; read it with errors.As.
type DPoPChallenge struct {
	// Err is ErrDPoPProof, ErrDPoPNonce or ErrDPoPBound with detail, or
	// the token's own error when a DPoP request's token is invalid.
	Err   error
	Algs  []string // nil when the token named no configured issuer
	Nonce string
}

func (c *DPoPChallenge) Error() string { return c.Err.Error() }
func (c *DPoPChallenge) Unwrap() error { return c.Err }
