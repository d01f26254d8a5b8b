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
)

// IsUnavailable reports whether err means Warden could not judge the token
// (keys never fetched), as opposed to the token being bad.
func IsUnavailable(err error) bool { return errors.Is(err, ErrIssuerNotReady) }

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
