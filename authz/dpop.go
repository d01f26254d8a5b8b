package authz

import (
	"errors"
	"strings"

	"github.com/wardenauthz/warden/identity"
)

// identityInput is what the authenticator reads of the request: the
// credentials, the peer certificate, and for DPoP the proof and the
// request it must name.
func (in *request) identityInput() identity.Input {
	return identity.Input{
		Authorization: identity.Credential(in.authorization),
		PeerPrincipal: in.peerPrincipal,
		Certificate:   in.peerCertificate,
		XFCC:          in.header("x-forwarded-client-cert"),
		DPoP:          in.header("dpop"),
		Request:       identity.Request{Method: in.method, Scheme: in.scheme, Host: in.host, Path: in.path},
	}
}

// dpopDenial answers a refused DPoP request as RFC 9449 §7.1 and §9 say:
// 401 with a DPoP challenge naming the error and the algorithms accepted
// in proofs, and for use_dpop_nonce the nonce to use (DPoP-Nonce).
func dpopDenial(err error) (*denial, bool) {
	var ch *identity.DPoPChallenge
	if !errors.As(err, &ch) {
		return nil, false
	}
	code, desc := "invalid_token", describeTokenError(err)
	switch {
	case errors.Is(err, identity.ErrDPoPBound):
		desc = identity.ErrDPoPBound.Error()
	case errors.Is(err, identity.ErrDPoPNonce):
		code, desc = "use_dpop_nonce", identity.ErrDPoPNonce.Error()
	case errors.Is(err, identity.ErrDPoPProof):
		code, desc = "invalid_dpop_proof", identity.ErrDPoPProof.Error()
	}
	www := `DPoP error="` + code + `", error_description="` + desc + `"`
	if len(ch.Algs) > 0 {
		www += `, algs="` + strings.Join(ch.Algs, " ") + `"`
	}
	// A proof's refusal names the check that failed (fixed texts, no proof
	// contents but a truncated alg, which deny redacts as any detail); a
	// token's error only its sentinel, as for Bearer.
	detail := desc
	if code != "invalid_token" || errors.Is(err, identity.ErrDPoPBound) {
		detail = err.Error()
	}
	return &denial{reason: ReasonTokenInvalid, detail: detail, www: www, dpopNonce: ch.Nonce}, true
}
