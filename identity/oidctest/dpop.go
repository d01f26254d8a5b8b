package oidctest

import (
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Client is a DPoP client (RFC 9449): a key pair whose public half goes
// into every proof.
type Client struct {
	Key Key
}

// NewClient returns a DPoP client with a fresh P-256 key (ES256).
func NewClient() *Client { return &Client{Key: ECKey("")} }

// NewRSAClient returns a DPoP client with test RSA key i (RS256).
func NewRSAClient(i int) *Client { return &Client{Key: Key{Alg: jose.RS256, Key: rsaKey(i)}} }

// JWK is the client's public key as a JWK.
func (c *Client) JWK() jose.JSONWebKey {
	return jose.JSONWebKey{Key: c.Key.Key.Public(), Algorithm: string(c.Key.Alg)}
}

// JKT is the RFC 7638 SHA-256 thumbprint of the client's public key, the
// value of a bound token's cnf.jkt.
func (c *Client) JKT() string {
	k := c.JWK()
	tp, err := k.Thumbprint(crypto.SHA256)
	if err != nil {
		panic(err)
	}
	return base64.RawURLEncoding.EncodeToString(tp)
}

// ATH is base64url(SHA-256(token)), a proof's ath.
func ATH(token string) string {
	s := sha256.Sum256([]byte(token))
	return base64.RawURLEncoding.EncodeToString(s[:])
}

// ProofClaims are the claims of a valid proof for method and uri (the
// request's URL) presenting token at now, with a random jti.
func ProofClaims(method, uri, token string, now time.Time) map[string]any {
	var j [12]byte
	_, _ = rand.Read(j[:])
	return map[string]any{
		"jti": base64.RawURLEncoding.EncodeToString(j[:]),
		"htm": method, "htu": uri, "iat": now.Unix(), "ath": ATH(token),
	}
}

// Proof signs a DPoP proof with claims: typ dpop+jwt and the client's
// public jwk in the header, extra headers added (or replacing those).
func (c *Client) Proof(t testing.TB, claims map[string]any, headers map[jose.HeaderKey]any) string {
	t.Helper()
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	h := map[jose.HeaderKey]any{"typ": "dpop+jwt", "jwk": c.JWK()}
	for k, v := range headers {
		h[k] = v
	}
	s, err := Mint(Key{Alg: c.Key.Alg, Key: c.Key.Key}, payload, h)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// UnsignedProof is a proof with the given protected header and claims and
// signature bytes sig, encoded as they are (alg none, forged signatures).
func UnsignedProof(t testing.TB, header, claims map[string]any, sig []byte) string {
	t.Helper()
	h, err := json.Marshal(header)
	if err != nil {
		t.Fatal(err)
	}
	p, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	e := base64.RawURLEncoding.EncodeToString
	return e(h) + "." + e(p) + "." + e(sig)
}

// X5T is the RFC 8705 thumbprint (cnf.x5t#S256) of a DER certificate.
func X5T(der []byte) string {
	s := sha256.Sum256(der)
	return base64.RawURLEncoding.EncodeToString(s[:])
}

// EnvoyCert is a certificate as Envoy forwards it in source.certificate and
// XFCC's Cert=: URL-encoded PEM (space as %20, '+' as %2B, newline %0A).
func EnvoyCert(c *x509.Certificate) string {
	s := url.QueryEscape(string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})))
	return strings.ReplaceAll(s, "+", "%20")
}

// XFCCHash is XFCC's Hash= of a certificate: hex SHA-256 of its DER.
func XFCCHash(c *x509.Certificate) string {
	return fmt.Sprintf("%x", sha256.Sum256(c.Raw))
}
