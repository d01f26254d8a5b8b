package identity

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
)

// TestJWKSAndDiscoveryReadExactly: a JWKS or discovery document is read
// as the provider and every other client (go-jose, go-oidc, other
// languages) read it. encoding/json took "KEYS" for keys, "Key_Ops" for
// key_ops (so a key the provider restricts to signing, key_ops ["sign"],
// became a verification key), "ISSUER" for issuer, and the last of two
// members named alike; each is now an error.
func TestJWKSAndDiscoveryReadExactly(t *testing.T) {
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := json.Marshal(jose.JSONWebKey{Key: pub, KeyID: "k1"})
	if err != nil {
		t.Fatal(err)
	}
	key := string(kb[:len(kb)-1]) // an open object: members can be added
	algs := []jose.SignatureAlgorithm{jose.EdDSA}
	if _, err := usableKeys([]byte(`{"keys":[`+key+`}]}`), algs); err != nil {
		t.Fatalf("plain set: %v", err)
	}
	for _, set := range []string{
		`{"KEYS":[` + key + `}]}`,
		`{"keys":[` + key + `,"key_ops":["sign"],"Key_Ops":["verify"]}]}`,
		`{"keys":[` + key + `,"key_ops":["sign"],"KEY_OPS":["verify"]}]}`,
		`{"keys":[],"keys":[` + key + `}]}`,
		`{"keys":[` + key + `,"key_ops":["sign"],"key\u005fops":["verify"]}]}`,
	} {
		if s, err := usableKeys([]byte(set), algs); err == nil {
			t.Errorf("%s: accepted %d keys, want an error", set, len(s.Keys))
		}
	}

	docs := map[string]string{
		"/exact/.well-known/openid-configuration": `{"issuer":"%s/exact","jwks_uri":"%s/jwks"}`,
		"/upper/.well-known/openid-configuration": `{"ISSUER":"%s/upper","jwks_uri":"%s/jwks"}`,
		"/twice/.well-known/openid-configuration": `{"issuer":"%s/twice","jwks_uri":"http://127.0.0.1:1/jwks","jwks_uri":"%s/jwks"}`,
		"/mixed/.well-known/openid-configuration": `{"issuer":"%s/mixed","jwks_uri":"http://127.0.0.1:1/jwks","Jwks_Uri":"%s/jwks"}`,
	}
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d, ok := docs[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(strings.ReplaceAll(strings.Replace(d, "%s", srv.URL, 1), "%s", srv.URL)))
	}))
	defer srv.Close()
	for name := range docs {
		base := srv.URL + "/" + strings.Split(name, "/")[1]
		u, err := discover(context.Background(), srv.Client(), base+"/.well-known/openid-configuration", IssuerConfig{Issuer: base})
		if name == "/exact/.well-known/openid-configuration" {
			if err != nil || u != srv.URL+"/jwks" {
				t.Errorf("%s: %q, %v", name, u, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("%s: jwks_uri %q accepted, want an error", name, u)
		}
	}
}
