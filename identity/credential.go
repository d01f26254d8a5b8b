package identity

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// CredentialKind is the kind of credential a request was authenticated
// with, as policies see it in context.credential.kind.
type CredentialKind string

// Credential kinds. An Identity made from no credential (a workload by its
// certificate alone, or anonymous) has the kind "".
const (
	// CredentialJWT is a bearer JWT access token (not sender-constrained).
	CredentialJWT CredentialKind = "jwt"
	// CredentialDPoP is a JWT bound to a key (cnf.jkt) whose DPoP proof
	// (RFC 9449) came with the request.
	CredentialDPoP CredentialKind = "dpop"
	// CredentialMTLSBound is a JWT bound to the client certificate
	// (cnf.x5t#S256, RFC 8705) the request came over.
	CredentialMTLSBound CredentialKind = "mtls_bound"
	// CredentialIntrospected is an opaque token judged by introspection
	// (RFC 7662).
	CredentialIntrospected CredentialKind = "introspected"
	// CredentialAPIKey is an API key.
	CredentialAPIKey CredentialKind = "api_key"
)

// Confirmation is a token's cnf claim (RFC 7800) in the forms Warden
// verifies: the DPoP key's thumbprint (RFC 9449 §6.1) and the client
// certificate's (RFC 8705 §3.1). Both are base64url SHA-256 digests.
type Confirmation struct {
	JKT     string // cnf.jkt
	X5TS256 string // cnf.x5t#S256
}

// Bound reports whether the token is sender-constrained.
func (c Confirmation) Bound() bool { return c.JKT != "" || c.X5TS256 != "" }

// confirmation reads the cnf claim. A cnf that is not an object, has a
// member that is not a string of the right form, or any member Warden
// cannot verify (jwk, jwe, jku, kid, x5t, ...) is an error: a token bound
// in a way Warden cannot check is refused, never taken as a bearer token.
func confirmation(claims map[string]any) (Confirmation, error) {
	var c Confirmation
	v, ok := claims["cnf"]
	if !ok {
		return c, nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		return c, fmt.Errorf("%w: cnf is not an object", ErrClaims)
	}
	if len(m) == 0 {
		return c, fmt.Errorf("%w: cnf is empty", ErrClaims)
	}
	for k, v := range m {
		var dst *string
		switch k {
		case "jkt":
			dst = &c.JKT
		case "x5t#S256":
			dst = &c.X5TS256
		default:
			return c, fmt.Errorf("%w: cnf member %q is a confirmation method Warden cannot verify", ErrClaims, truncate(k, 64))
		}
		s, ok := v.(string)
		if !ok || !isSHA256B64(s) {
			return c, fmt.Errorf("%w: cnf.%s is not a base64url SHA-256 digest", ErrClaims, k)
		}
		*dst = s
	}
	return c, nil
}

// isSHA256B64 reports whether s is the unpadded base64url form of 32 bytes.
func isSHA256B64(s string) bool {
	if len(s) != 43 {
		return false
	}
	b, err := b64.DecodeString(s)
	return err == nil && len(b) == sha256.Size
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// maxCertBytes bounds a forwarded client certificate (URL-encoded PEM).
const maxCertBytes = 16 << 10

// CertThumbprint returns the base64url SHA-256 thumbprint (RFC 8705 §3.1)
// of a certificate as Envoy forwards it: URL-encoded PEM (the
// CheckRequest's source.certificate, or XFCC's Cert=). ok is false when
// the value is not exactly one PEM CERTIFICATE block.
func CertThumbprint(urlPEM string) (string, bool) {
	if urlPEM == "" || len(urlPEM) > maxCertBytes {
		return "", false
	}
	// Envoy escapes space as %20 and '+' as %2B; a '+' left literal is
	// base64's (PathUnescape, unlike QueryUnescape, keeps it).
	p, err := url.PathUnescape(urlPEM)
	if err != nil {
		return "", false
	}
	blk, rest := pem.Decode([]byte(p))
	if blk == nil || blk.Type != "CERTIFICATE" || len(blk.Headers) > 0 || strings.TrimSpace(string(rest)) != "" {
		return "", false
	}
	sum := sha256.Sum256(blk.Bytes)
	return base64.RawURLEncoding.EncodeToString(sum[:]), true
}

// xfccThumbprint is the thumbprint of the nearest hop's client certificate
// in an XFCC header: from Cert= (URL-encoded PEM) or Hash= (hex SHA-256 of
// the DER, as Envoy writes it). When both are there they must agree.
func xfccThumbprint(h string) (string, bool) {
	cert, okc := XFCCField(h, "Cert")
	hash, okh := XFCCField(h, "Hash")
	var fromCert, fromHash string
	if okc && cert != "" {
		t, ok := CertThumbprint(cert)
		if !ok {
			return "", false
		}
		fromCert = t
	}
	if okh && hash != "" {
		b, err := hex.DecodeString(hash)
		if err != nil || len(b) != sha256.Size {
			return "", false
		}
		fromHash = base64.RawURLEncoding.EncodeToString(b)
	}
	switch {
	case fromCert != "" && fromHash != "" && fromCert != fromHash:
		return "", false
	case fromCert != "":
		return fromCert, true
	case fromHash != "":
		return fromHash, true
	}
	return "", false
}

// errCertBinding is why a certificate-bound token was refused.
var errCertBinding = errors.New("certificate binding")

// checkCertBinding checks a cnf.x5t#S256 against the client certificate of
// the request: Envoy's source.certificate, or (trust_xfcc, and only when
// Envoy reports no peer at all) the XFCC header's nearest hop.
func (a *Authenticator) checkCertBinding(in Input, want string) error {
	var got string
	var ok bool
	switch {
	case in.Certificate != "":
		got, ok = CertThumbprint(in.Certificate)
	case in.PeerPrincipal == "" && a.cfg.Workloads.TrustXFCC && in.XFCC != "":
		got, ok = xfccThumbprint(in.XFCC)
	}
	if !ok {
		return fmt.Errorf("%w: %w: certificate-bound token without a client certificate", ErrCertBound, errCertBinding)
	}
	if subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
		return fmt.Errorf("%w: %w: client certificate does not match the token's cnf.x5t#S256", ErrCertBound, errCertBinding)
	}
	return nil
}
