package identity

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
)

// TestKeyUseAgainstModel: every combination of key type (and curve), JWK
// alg, use and key_ops, and token alg, through the JWKS parser and the
// verifier, against a model of RFC 7517 section 4.2-4.4 and RFC 8725
// section 3.1: a token verifies only when the key is a signature key (use
// absent or "sig", key_ops absent or an array holding "verify"), its alg
// (if any) is the token's, and its type is the token alg's (RSA for RS*/PS*,
// EC on the alg's curve for ES*, Ed25519 for EdDSA); a set with no such key
// for the issuer's algorithms is refused.
func TestKeyUseAgainstModel(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ec := func(c elliptic.Curve) crypto.Signer {
		k, err := ecdsa.GenerateKey(c, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	type keyKind struct {
		name   string // the model's family
		signer crypto.Signer
	}
	kinds := []keyKind{
		{"RSA", rsaKey}, {"P-256", ec(elliptic.P256())}, {"P-384", ec(elliptic.P384())}, {"P-521", ec(elliptic.P521())}, {"Ed25519", edKey},
	}
	family := map[string]string{
		"RS256": "RSA", "RS384": "RSA", "RS512": "RSA", "PS256": "RSA", "PS384": "RSA", "PS512": "RSA",
		"ES256": "P-256", "ES384": "P-384", "ES512": "P-521", "EdDSA": "Ed25519",
	}
	tokenAlgs := []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
	jwkAlgs := append([]string{"", "RSA-OAEP", "RSA-OAEP-256", "ECDH-ES", "rs256", "none", "HS256"}, tokenAlgs...)
	uses := []string{"", "sig", "enc", "Sig"}
	opss := []string{"", `[]`, `["verify"]`, `["sign"]`, `["encrypt"]`, `["encrypt","verify"]`, `"verify"`, `[1]`, `null`}
	modelOps := map[string]bool{"": true, `["verify"]`: true, `["encrypt","verify"]`: true} // null is not an array: not absent
	issuerAlgSets := [][]string{tokenAlgs, {"RS256", "ES256"}, {"EdDSA"}}

	// Tokens signed by each kind for each alg it can sign (kid k1).
	tokens := map[string]map[string]*jose.JSONWebSignature{}
	for _, k := range kinds {
		tokens[k.name] = map[string]*jose.JSONWebSignature{}
		for _, alg := range tokenAlgs {
			if family[alg] != k.name {
				continue // the kind cannot sign it
			}
			signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.SignatureAlgorithm(alg), Key: k.signer},
				(&jose.SignerOptions{}).WithHeader("kid", "k1"))
			if err != nil {
				t.Fatal(err)
			}
			jws, err := signer.Sign([]byte(`{"sub":"x"}`))
			if err != nil {
				t.Fatal(err)
			}
			compact, err := jws.CompactSerialize()
			if err != nil {
				t.Fatal(err)
			}
			if tokens[k.name][alg], _, err = parseJWS(compact, []jose.SignatureAlgorithm{jose.SignatureAlgorithm(alg)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	n := 0
	for _, k := range kinds {
		base, err := json.Marshal(jose.JSONWebKey{Key: k.signer.Public(), KeyID: "k1"})
		if err != nil {
			t.Fatal(err)
		}
		for _, jalg := range jwkAlgs {
			for _, use := range uses {
				for _, ops := range opss {
					var m map[string]json.RawMessage
					if err := json.Unmarshal(base, &m); err != nil {
						t.Fatal(err)
					}
					if jalg != "" {
						m["alg"], _ = json.Marshal(jalg)
					}
					if use != "" {
						m["use"], _ = json.Marshal(use)
					}
					if ops != "" {
						m["key_ops"] = json.RawMessage(ops)
					}
					raw, err := json.Marshal(map[string]any{"keys": []any{m}})
					if err != nil {
						t.Fatal(err)
					}
					sigKey := (use == "" || use == "sig") && modelOps[ops]
					fits := func(alg string) bool { return sigKey && (jalg == "" || jalg == alg) && family[alg] == k.name }
					for _, issuerAlgs := range issuerAlgSets {
						var algs []jose.SignatureAlgorithm
						anyFits := false
						for _, a := range issuerAlgs {
							algs = append(algs, jose.SignatureAlgorithm(a))
							anyFits = anyFits || fits(a)
						}
						name := fmt.Sprintf("%s alg=%q use=%q key_ops=%s issuer=%v", k.name, jalg, use, ops, issuerAlgs)
						set, err := usableKeys(raw, algs)
						if (err == nil) != anyFits {
							t.Errorf("%s: set accepted %v, model %v (%v)", name, err == nil, anyFits, err)
							continue
						}
						if set == nil {
							continue
						}
						for alg, jws := range tokens[k.name] {
							n++
							_, found, err := verifyWith(set, "k1", jws)
							if ok := err == nil && found; ok != fits(alg) {
								t.Errorf("%s: token %s verified %v, model %v (%v)", name, alg, ok, fits(alg), err)
							}
							if !found {
								t.Errorf("%s: token %s: kid k1 not found (would refetch, not refuse)", name, alg)
							}
							if err != nil && !errors.Is(err, ErrSignature) {
								t.Errorf("%s: token %s: %v, want ErrSignature", name, alg, err)
							}
						}
					}
				}
			}
		}
	}
	if n < 300 {
		t.Fatalf("only %d verifications", n)
	}
}
