package identity_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/wardenauthz/warden/identity"
	"github.com/wardenauthz/warden/identity/oidctest"
)

// jwk is the public JWK of k with kid, and extra members set (a nil value
// removes the member).
func jwk(t *testing.T, k crypto.Signer, kid string, extra map[string]any) map[string]any {
	t.Helper()
	b, err := json.Marshal(jose.JSONWebKey{Key: k.Public(), KeyID: kid})
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]any{}
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for name, v := range extra {
		if v == nil {
			delete(m, name)
			continue
		}
		m[name] = v
	}
	return m
}

// publishJWKS makes is answer its JWKS endpoint with exactly keys.
func publishJWKS(t *testing.T, is *oidctest.Issuer, keys ...map[string]any) {
	t.Helper()
	b, err := json.Marshal(map[string]any{"keys": keys})
	if err != nil {
		t.Fatal(err)
	}
	is.SetGarbage(b)
}

func newECKey(t *testing.T, c elliptic.Curve) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(c, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestJWKSWithoutSignatureKeys: a JWKS none of whose keys can verify the
// issuer's tokens (encryption keys by use, key_ops or alg; keys of a type or
// alg the issuer's algorithms exclude) is a failed fetch: it never replaces
// the good keys, an unknown kid meanwhile is unavailable (503), not unknown
// (401), and KeyStatus (/readyz) and the log say so.
func TestJWKSWithoutSignatureKeys(t *testing.T) {
	rsaA := oidctest.RSAKey("k1", 0).Key
	rsaB := oidctest.RSAKey("k2", 1).Key
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p256, p384 := newECKey(t, elliptic.P256()), newECKey(t, elliptic.P384())
	for _, c := range []struct {
		name string
		keys []map[string]any
	}{
		{"use enc", []map[string]any{jwk(t, rsaA, "k1", map[string]any{"use": "enc"})}},
		{"use enc, two keys", []map[string]any{jwk(t, rsaA, "k1", map[string]any{"use": "enc"}), jwk(t, rsaB, "k2", map[string]any{"use": "enc"})}},
		{"use enc, alg RS256", []map[string]any{jwk(t, rsaA, "k1", map[string]any{"use": "enc", "alg": "RS256"})}},
		{"use other", []map[string]any{jwk(t, rsaA, "k1", map[string]any{"use": "tls"})}},
		{"use Sig (case)", []map[string]any{jwk(t, rsaA, "k1", map[string]any{"use": "Sig"})}},
		{"key_ops encrypt", []map[string]any{jwk(t, rsaA, "k1", map[string]any{"key_ops": []string{"encrypt", "wrapKey"}})}},
		{"key_ops sign only", []map[string]any{jwk(t, rsaA, "k1", map[string]any{"key_ops": []string{"sign"}})}},
		{"key_ops empty", []map[string]any{jwk(t, rsaA, "k1", map[string]any{"key_ops": []string{}})}},
		{"key_ops a string", []map[string]any{jwk(t, rsaA, "k1", map[string]any{"key_ops": "verify"})}},
		{"key_ops null-ish", []map[string]any{jwk(t, rsaA, "k1", map[string]any{"key_ops": []any{1}})}},
		{"alg RSA-OAEP", []map[string]any{jwk(t, rsaA, "k1", map[string]any{"alg": "RSA-OAEP"})}},
		{"alg RSA-OAEP-256, use sig", []map[string]any{jwk(t, rsaA, "k1", map[string]any{"alg": "RSA-OAEP-256", "use": "sig"})}},
		{"alg PS256, issuer RS256/ES256", []map[string]any{jwk(t, rsaA, "k1", map[string]any{"alg": "PS256"})}},
		{"alg rs256 (case)", []map[string]any{jwk(t, rsaA, "k1", map[string]any{"alg": "rs256"})}},
		{"EC key, alg RS256", []map[string]any{jwk(t, p256, "k1", map[string]any{"alg": "RS256"})}},
		{"EC P-384, issuer ES256 only", []map[string]any{jwk(t, p384, "k1", nil)}},
		{"EC P-256, alg ES384", []map[string]any{jwk(t, p256, "k1", map[string]any{"alg": "ES384"})}},
		{"Ed25519, issuer without EdDSA", []map[string]any{jwk(t, edKey, "k1", nil)}},
		{"RSA, alg EdDSA", []map[string]any{jwk(t, rsaA, "k1", map[string]any{"alg": "EdDSA"})}},
	} {
		t.Run(c.name, func(t *testing.T) {
			is := oidctest.New(t)
			a, clk := newAuth(t, is)
			if _, err := a.Authenticate(context.Background(), bearer(is.Sign(t, is.Claims("alice", aud)))); err != nil {
				t.Fatal(err)
			}
			publishJWKS(t, is, c.keys...)
			clk.Add(4 * time.Second) // past the unknown-kid interval
			base := is.Fetches()
			tok := oidctest.SignWith(t, oidctest.RSAKey("k-new", 2), is.Claims("mallory", aud), nil)
			_, err := a.Authenticate(context.Background(), bearer(tok))
			if !identity.IsUnavailable(err) || errors.Is(err, identity.ErrUnknownKey) {
				t.Errorf("unknown kid after a JWKS without signature keys: %v, want unavailable", err)
			}
			if is.Fetches() == base {
				t.Fatal("no fetch")
			}
			// The good key still verifies (a token not in the token cache).
			if _, err := a.Authenticate(context.Background(), bearer(is.Sign(t, is.Claims("bob", aud)))); err != nil {
				t.Errorf("the good key was replaced: %v", err)
			}
			st := a.KeyStatus()
			if len(st) != 1 || !st[0].Ready || st[0].Failures == 0 || !strings.Contains(st[0].LastError, "no usable keys") {
				t.Errorf("KeyStatus: %+v", st)
			}
		})
	}
}

// TestJWKAlgAndKeyOpsBindTheToken: a JWK's alg, key type (and curve) and
// key_ops bind the tokens it verifies (RFC 8725 section 3.1): a token whose
// header alg differs from the JWK's alg, or is not of the key's family, or
// whose key's key_ops lack "verify", is refused (401, not verified), with
// kid and without; the matching spellings are accepted.
func TestJWKAlgAndKeyOpsBindTheToken(t *testing.T) {
	rsaA := oidctest.RSAKey("k1", 0).Key
	good := jwk(t, oidctest.RSAKey("k2", 1).Key, "k2", map[string]any{"alg": "RS256", "use": "sig"})
	p256 := newECKey(t, elliptic.P256())
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	all := []string{"RS256", "RS384", "PS256", "ES256", "ES384", "EdDSA"}
	for _, c := range []struct {
		name   string
		key    map[string]any
		signer crypto.Signer
		alg    jose.SignatureAlgorithm
		ok     bool
	}{
		{"JWK PS256, token RS256", jwk(t, rsaA, "k1", map[string]any{"alg": "PS256"}), rsaA, jose.RS256, false},
		{"JWK PS256, token PS256", jwk(t, rsaA, "k1", map[string]any{"alg": "PS256"}), rsaA, jose.PS256, true},
		{"JWK RS256, token PS256", jwk(t, rsaA, "k1", map[string]any{"alg": "RS256"}), rsaA, jose.PS256, false},
		{"JWK RS256, token RS384", jwk(t, rsaA, "k1", map[string]any{"alg": "RS256"}), rsaA, jose.RS384, false},
		{"JWK no alg, token RS384", jwk(t, rsaA, "k1", nil), rsaA, jose.RS384, true},
		{"JWK RSA-OAEP, token RS256", jwk(t, rsaA, "k1", map[string]any{"alg": "RSA-OAEP"}), rsaA, jose.RS256, false},
		{"JWK key_ops encrypt, token RS256", jwk(t, rsaA, "k1", map[string]any{"key_ops": []string{"encrypt"}}), rsaA, jose.RS256, false},
		{"JWK key_ops verify, token RS256", jwk(t, rsaA, "k1", map[string]any{"key_ops": []string{"verify"}, "alg": "RS256"}), rsaA, jose.RS256, true},
		{"JWK use enc, token RS256", jwk(t, rsaA, "k1", map[string]any{"use": "enc"}), rsaA, jose.RS256, false},
		{"EC JWK alg RS256, token ES256", jwk(t, p256, "k1", map[string]any{"alg": "RS256"}), p256, jose.ES256, false},
		{"EC JWK alg ES256, token ES256", jwk(t, p256, "k1", map[string]any{"alg": "ES256"}), p256, jose.ES256, true},
		{"EC JWK alg EdDSA, token ES256", jwk(t, p256, "k1", map[string]any{"alg": "EdDSA"}), p256, jose.ES256, false},
		{"Ed25519 JWK alg ES256, token EdDSA", jwk(t, edKey, "k1", map[string]any{"alg": "ES256"}), edKey, jose.EdDSA, false},
		{"Ed25519 JWK, token EdDSA", jwk(t, edKey, "k1", nil), edKey, jose.EdDSA, true},
	} {
		for _, withKid := range []bool{true, false} {
			name := c.name
			if !withKid {
				name += ", no kid"
			}
			t.Run(name, func(t *testing.T) {
				is := oidctest.New(t)
				publishJWKS(t, is, c.key, good)
				a, _ := newAuth(t, is, func(cfg *identity.Config) { cfg.Issuers[0].Algorithms = all })
				k := oidctest.Key{ID: "k1", Alg: c.alg, Key: c.signer}
				if !withKid {
					k.ID = ""
				}
				_, err := a.Authenticate(context.Background(), bearer(oidctest.SignWith(t, k, is.Claims("mallory", aud), nil)))
				switch {
				case c.ok && err != nil:
					t.Errorf("refused: %v", err)
				case !c.ok && err == nil:
					t.Error("verified")
				case !c.ok && identity.IsUnavailable(err):
					t.Errorf("unavailable, want a refusal: %v", err)
				}
				// The good key verifies whatever the other is.
				if _, err := a.Authenticate(context.Background(), bearer(oidctest.SignWith(t, oidctest.RSAKey("k2", 1), is.Claims("bob", aud), nil))); err != nil {
					t.Errorf("good key: %v", err)
				}
			})
		}
	}
}
