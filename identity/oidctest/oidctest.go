// Package oidctest runs a real OIDC issuer over HTTP for tests: discovery,
// a JWKS endpoint that counts its fetches, key rotation, and token signing
// with any key it holds.
package oidctest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Issuer is a test OIDC provider.
type Issuer struct {
	URL     string
	server  *httptest.Server
	mu      sync.Mutex
	keys    []Key // published
	fetches atomic.Int64
	down    atomic.Bool
	delay   atomic.Int64 // ns added to each JWKS response
	garbage atomic.Pointer[[]byte]
	headers atomic.Pointer[map[string]string] // added to JWKS responses
	docIss  atomic.Pointer[string]            // discovery's issuer, if not URL
	docJWKS atomic.Pointer[string]            // discovery's jwks_uri, if not URL/jwks
	closed  chan struct{}                     // closed by Close: delayed answers end
	closing sync.Once
	intro   introspection
}

// Key is a signing key with its id and algorithm.
type Key struct {
	ID  string
	Alg jose.SignatureAlgorithm
	Key crypto.Signer
}

var (
	rsaOnce sync.Once
	rsaKeys []*rsa.PrivateKey
)

// rsaKey returns one of a few RSA keys generated once per test binary
// (RSA generation is slow).
func rsaKey(i int) *rsa.PrivateKey {
	rsaOnce.Do(func() {
		for range 3 {
			k, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				panic(err)
			}
			rsaKeys = append(rsaKeys, k)
		}
	})
	return rsaKeys[i%len(rsaKeys)]
}

// New starts an issuer publishing one RS256 key ("k1"); it stops with t.
func New(t testing.TB) *Issuer {
	is := Start()
	t.Cleanup(is.Close)
	return is
}

// Start starts an issuer publishing one RS256 key ("k1") on a loopback
// port, for programs that are not tests (the load benchmark); Close stops it.
func Start() *Issuer {
	is := &Issuer{closed: make(chan struct{})}
	mux := http.NewServeMux()
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		if is.down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		iss, jwks := is.URL, is.URL+"/jwks"
		if p := is.docIss.Load(); p != nil {
			iss = *p
		}
		if p := is.docJWKS.Load(); p != nil {
			jwks = *p
		}
		doc := map[string]any{
			"issuer":                                iss,
			"jwks_uri":                              jwks,
			"id_token_signing_alg_values_supported": []string{"RS256", "ES256"},
		}
		if is.intro.enabled.Load() {
			doc["introspection_endpoint"] = is.URL + "/introspect"
		}
		_ = json.NewEncoder(w).Encode(doc)
	})
	mux.HandleFunc("/introspect", is.introspect)
	mux.HandleFunc("/jwks", func(w http.ResponseWriter, r *http.Request) {
		is.fetches.Add(1)
		if d := is.delay.Load(); d > 0 {
			select {
			case <-time.After(time.Duration(d)):
			case <-r.Context().Done(): // the client gave up
				return
			case <-is.closed:
				return
			}
		}
		if h := is.headers.Load(); h != nil {
			for k, v := range *h {
				w.Header().Set(k, v)
			}
		}
		if is.down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		if g := is.garbage.Load(); g != nil {
			_, _ = w.Write(*g)
			return
		}
		_ = json.NewEncoder(w).Encode(is.JWKS())
	})
	is.server = httptest.NewServer(mux)
	is.URL = is.server.URL
	is.keys = []Key{{ID: "k1", Alg: jose.RS256, Key: rsaKey(0)}}
	return is
}

// Close stops the issuer, cutting JWKS requests it is delaying.
func (is *Issuer) Close() {
	is.closing.Do(func() {
		close(is.closed)
		is.server.Close()
	})
}

// JWKS is the published key set.
func (is *Issuer) JWKS() jose.JSONWebKeySet {
	is.mu.Lock()
	defer is.mu.Unlock()
	var set jose.JSONWebKeySet
	for _, k := range is.keys {
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: k.Key.Public(), KeyID: k.ID, Algorithm: string(k.Alg), Use: "sig"})
	}
	return set
}

// Fetches counts JWKS requests.
func (is *Issuer) Fetches() int64 { return is.fetches.Load() }

// SetDown makes discovery and JWKS answer 503.
func (is *Issuer) SetDown(down bool) { is.down.Store(down) }

// SetDelay delays every JWKS answer.
func (is *Issuer) SetDelay(d time.Duration) { is.delay.Store(int64(d)) }

// SetHeaders adds headers (Cache-Control, Expires) to every JWKS answer
// (nil: none).
func (is *Issuer) SetHeaders(h map[string]string) {
	if h == nil {
		is.headers.Store(nil)
		return
	}
	is.headers.Store(&h)
}

// SetDiscovery makes discovery claim issuer iss (when not "") and jwks_uri
// jwks (when not "") instead of its own URL and /jwks.
func (is *Issuer) SetDiscovery(iss, jwks string) {
	if iss != "" {
		is.docIss.Store(&iss)
	}
	if jwks != "" {
		is.docJWKS.Store(&jwks)
	}
}

// SetGarbage makes the JWKS endpoint answer 200 with body instead of the
// keys (nil: the keys again).
func (is *Issuer) SetGarbage(body []byte) {
	if body == nil {
		is.garbage.Store(nil)
		return
	}
	is.garbage.Store(&body)
}

// Publish sets the published keys (rotation: publish old and new, then new).
func (is *Issuer) Publish(keys ...Key) {
	is.mu.Lock()
	defer is.mu.Unlock()
	is.keys = keys
}

// RSAKey returns a test RSA key (index 0 is k1's).
func RSAKey(id string, i int) Key { return Key{ID: id, Alg: jose.RS256, Key: rsaKey(i)} }

// ECKey returns a fresh P-256 key.
func ECKey(id string) Key {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	return Key{ID: id, Alg: jose.ES256, Key: k}
}

// Key returns the published key with id, or the first one for "".
func (is *Issuer) Key(id string) Key {
	is.mu.Lock()
	defer is.mu.Unlock()
	for _, k := range is.keys {
		if id == "" || k.ID == id {
			return k
		}
	}
	panic("oidctest: no key " + id)
}

// Claims are standard claims for sub, valid for an hour, for aud.
func (is *Issuer) Claims(sub, aud string) map[string]any {
	now := time.Now()
	return map[string]any{
		"iss": is.URL, "sub": sub, "aud": aud,
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix(),
		"jti": fmt.Sprintf("jti-%s-%d", sub, now.UnixNano()),
	}
}

// Sign signs claims with the first published key (typ at+jwt).
func (is *Issuer) Sign(t testing.TB, claims map[string]any) string {
	return SignWith(t, is.Key(""), claims, map[jose.HeaderKey]any{"typ": "at+jwt"})
}

// SignWith signs claims with k and extra protected headers.
func SignWith(t testing.TB, k Key, claims map[string]any, headers map[jose.HeaderKey]any) string {
	t.Helper()
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	return SignRaw(t, k, payload, headers)
}

// SignRaw signs payload bytes as they are (for duplicate-key attacks).
func SignRaw(t testing.TB, k Key, payload []byte, headers map[jose.HeaderKey]any) string {
	t.Helper()
	s, err := Mint(k, payload, headers)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Mint signs payload with k and extra protected headers: a compact JWS.
func Mint(k Key, payload []byte, headers map[jose.HeaderKey]any) (string, error) {
	h := map[jose.HeaderKey]any{}
	if k.ID != "" {
		h["kid"] = k.ID
	}
	for n, v := range headers {
		h[n] = v
	}
	return mint(k.Alg, k.Key, payload, h)
}

// SignJWS signs claims with any key go-jose takes (an HMAC secret too, for
// attacks) and exactly the given extra protected headers.
func SignJWS(t testing.TB, alg jose.SignatureAlgorithm, key any, claims map[string]any, headers map[jose.HeaderKey]any) string {
	t.Helper()
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	s, err := mint(alg, key, payload, headers)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mint(alg jose.SignatureAlgorithm, key any, payload []byte, headers map[jose.HeaderKey]any) (string, error) {
	opts := &jose.SignerOptions{ExtraHeaders: headers}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts)
	if err != nil {
		return "", err
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		return "", err
	}
	return jws.CompactSerialize()
}
