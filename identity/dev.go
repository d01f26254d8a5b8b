package identity

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// The dev issuer: a local signing key for the quick start, never for
// production (config validation refuses it on a non-loopback listener).
const (
	DevIssuerName = "dev"
	DevIssuerURL  = "https://dev.warden.invalid"
	DevAudience   = "warden"
)

// DevIssuer is the dev issuer's IssuerConfig: RS256 tokens of issuer
// DevIssuerURL for audience DevAudience, with the default claims and skew.
func DevIssuer() IssuerConfig {
	c := Config{Issuers: []IssuerConfig{{Name: DevIssuerName, Issuer: DevIssuerURL, Audiences: []string{DevAudience}, Algorithms: []string{"RS256"}}}}
	c.SetDefaults()
	return c.Issuers[0]
}

// DevKeyPath is the default dev issuer key file:
// $XDG_STATE_HOME/warden/dev-issuer.pem, else ~/.local/state/warden/dev-issuer.pem.
func DevKeyPath() (string, error) { return StateFile("dev-issuer.pem") }

// StateFile is where Warden keeps a local state file (quick start keys and
// tokens): $XDG_STATE_HOME/warden/NAME, else ~/.local/state/warden/NAME.
func StateFile(name string) (string, error) {
	dir := os.Getenv("XDG_STATE_HOME")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("%s: no XDG_STATE_HOME and no home directory: %w", name, err)
		}
		dir = filepath.Join(home, ".local", "state")
	}
	return filepath.Join(dir, "warden", name), nil
}

// LoadDevKey reads the dev issuer key at path, creating it (0600) on first use.
func LoadDevKey(path string) (*rsa.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return createDevKey(path)
	}
	if err != nil {
		return nil, fmt.Errorf("dev issuer key: %w", err)
	}
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, fmt.Errorf("dev issuer key %s: no PEM block", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("dev issuer key %s: %w", path, err)
	}
	rk, ok := k.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("dev issuer key %s: not an RSA key", path)
	}
	return rk, nil
}

func createDevKey(path string) (*rsa.PrivateKey, error) {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("dev issuer key: %w", err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return nil, fmt.Errorf("dev issuer key: %w", err)
	}
	// Another process may have created it meanwhile: theirs wins.
	if err := os.Link(tmp, path); err != nil {
		os.Remove(tmp)
		if errors.Is(err, fs.ErrExist) {
			return LoadDevKey(path)
		}
		return nil, fmt.Errorf("dev issuer key: %w", err)
	}
	os.Remove(tmp)
	return k, nil
}

func devKeyID(k *rsa.PublicKey) string {
	der, _ := x509.MarshalPKIXPublicKey(k)
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:8])
}

// DevJWKS is the public key set of the dev issuer key.
func DevJWKS(k *rsa.PrivateKey) jose.JSONWebKeySet {
	return jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &k.PublicKey, KeyID: devKeyID(&k.PublicKey), Algorithm: "RS256", Use: "sig"}}}
}

// DevTokenOptions are the claims of a dev token.
type DevTokenOptions struct {
	Subject string
	Groups  []string
	Scope   string
	TTL     time.Duration
	Claims  map[string]any // extra claims; override the defaults
	Now     time.Time
}

// SignDevToken issues an RS256 access token from the dev issuer.
func SignDevToken(k *rsa.PrivateKey, o DevTokenOptions) (string, error) {
	return SignStatic(k, "at+jwt", DevClaims(o))
}

// DevClaims are the claims SignDevToken signs.
func DevClaims(o DevTokenOptions) map[string]any {
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	if o.TTL == 0 {
		o.TTL = time.Hour
	}
	var jti [12]byte
	_, _ = rand.Read(jti[:])
	claims := map[string]any{
		"iss": DevIssuerURL,
		"sub": o.Subject,
		"aud": DevAudience,
		"iat": o.Now.Unix(),
		"nbf": o.Now.Unix(),
		"exp": o.Now.Add(o.TTL).Unix(),
		"jti": base64.RawURLEncoding.EncodeToString(jti[:]),
	}
	if len(o.Groups) > 0 {
		claims["groups"] = o.Groups
	}
	if o.Scope != "" {
		claims["scope"] = o.Scope
	}
	for k, v := range o.Claims {
		claims[k] = v
	}
	return claims
}

// SignStatic signs claims as an RS256 compact JWS with header typ, under
// the key id of k in DevJWKS: what the dev issuer, and every issuer of an
// Authenticator built with Options.TestKey k, verifies.
func SignStatic(k *rsa.PrivateKey, typ string, claims map[string]any) (string, error) {
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: k},
		(&jose.SignerOptions{}).WithType(jose.ContentType(typ)).WithHeader("kid", devKeyID(&k.PublicKey)))
	if err != nil {
		return "", err
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		return "", err
	}
	return jws.CompactSerialize()
}

// staticKeys is a fixed key set (the dev issuer's, or Options.TestKey's).
type staticKeys struct {
	set  jose.JSONWebKeySet
	algs []jose.SignatureAlgorithm
}

// keysOf is the RS256 key set of k: what SignStatic's tokens verify with.
func keysOf(k *rsa.PrivateKey) *staticKeys {
	return &staticKeys{set: DevJWKS(k), algs: []jose.SignatureAlgorithm{jose.RS256}}
}

func (s *staticKeys) ready() bool { return true }

func (s *staticKeys) VerifySignature(_ context.Context, jwt string) ([]byte, error) {
	jws, kid, err := parseJWS(jwt, s.algs)
	if err != nil {
		return nil, err
	}
	payload, found, err := verifyWith(&s.set, kid, jws)
	if !found {
		return nil, ErrUnknownKey
	}
	return payload, err
}
