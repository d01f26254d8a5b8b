package identity_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/wardenauthz/warden/identity"
	"github.com/wardenauthz/warden/identity/oidctest"
	"github.com/wardenauthz/warden/internal/testpki"
	"github.com/wardenauthz/warden/internal/testwait"
)

// mapReplay is a replay cache in a map, for the tests of this package (the
// store's, in ratelimit, has its own conformance tests); err, when set,
// fails every call.
type mapReplay struct {
	mu   sync.Mutex
	seen map[string]time.Time
	err  error
}

func (m *mapReplay) Seen(_ context.Context, key string, ttl time.Duration) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return false, m.err
	}
	if m.seen == nil {
		m.seen = map[string]time.Time{}
	}
	if _, ok := m.seen[key]; ok {
		return true, nil
	}
	m.seen[key] = time.Now().Add(ttl)
	return false, nil
}

const (
	dpopMethod = "POST"
	dpopURI    = "https://api.example.com/orders/1"
)

var dpopRequest = identity.Request{Method: "POST", Scheme: "https", Host: "api.example.com", Path: "/orders/1?page=2"}

type dpopEnv struct {
	is     *oidctest.Issuer
	a      *identity.Authenticator
	clk    *clock
	replay *mapReplay
	client *oidctest.Client
	token  string // bound to client
}

func newDPoPEnv(t *testing.T, mutate ...func(*identity.IssuerConfig)) *dpopEnv {
	t.Helper()
	e := &dpopEnv{is: oidctest.New(t), replay: &mapReplay{}, client: oidctest.NewClient()}
	clk := newClock()
	cfg := identity.Config{Issuers: []identity.IssuerConfig{{
		Name: "corp", Issuer: e.is.URL, Audiences: []string{aud}, Algorithms: []string{"RS256", "ES256"},
	}}}
	for _, m := range mutate {
		m(&cfg.Issuers[0])
	}
	a, err := identity.New(cfg, identity.Options{Now: clk.Now, Replay: e.replay})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	a.Start(ctx)
	testwait.Until(t, 5*time.Second, "keys never fetched", func() bool { return len(a.NotReady()) == 0 })
	e.a, e.clk = a, clk
	e.token = e.bound(t, e.client.JKT())
	return e
}

// bound signs a token bound to jkt.
func (e *dpopEnv) bound(t *testing.T, jkt string) string {
	c := e.is.Claims("alice", aud)
	c["cnf"] = map[string]any{"jkt": jkt}
	return e.is.Sign(t, c)
}

func (e *dpopEnv) claims() map[string]any {
	return oidctest.ProofClaims(dpopMethod, dpopURI, e.token, e.clk.Now())
}

func (e *dpopEnv) input(scheme, token, proof string) identity.Input {
	return identity.Input{Authorization: identity.Credential(scheme + " " + token), DPoP: proof, Request: dpopRequest}
}

func (e *dpopEnv) auth(in identity.Input) (identity.Identity, error) {
	return e.a.Authenticate(context.Background(), in)
}

func TestDPoPValidProof(t *testing.T) {
	e := newDPoPEnv(t)
	for i := range 3 { // a fresh proof each time; the token cache does not skip the binding
		id, err := e.auth(e.input("DPoP", e.token, e.client.Proof(t, e.claims(), nil)))
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		if id.Credential != identity.CredentialDPoP || id.ID != "corp|alice" || id.Token.Cnf.JKT != e.client.JKT() {
			t.Fatalf("identity %+v", id)
		}
	}
	// Unbound tokens stay bearer tokens (dpop: allowed).
	id, err := e.auth(bearer(e.is.Sign(t, e.is.Claims("bob", aud))))
	if err != nil || id.Credential != identity.CredentialJWT {
		t.Fatalf("bearer: %v %v", id.Credential, err)
	}
}

// TestDPoPHTUNormalised: the proof's htu and the request's URL compare after
// RFC 3986 normalisation: scheme and host case, the default port, percent
// encodings of unreserved characters, dot segments.
func TestDPoPHTUNormalised(t *testing.T) {
	e := newDPoPEnv(t)
	for _, htu := range []string{
		"https://api.example.com/orders/1", "HTTPS://API.Example.COM/orders/1", "https://api.example.com:443/orders/1",
		"https://api.example.com/%6Frders/1", "https://api.example.com/x/../orders/./1",
	} {
		c := e.claims()
		c["htu"] = htu
		if _, err := e.auth(e.input("DPoP", e.token, e.client.Proof(t, c, nil))); err != nil {
			t.Errorf("htu %s: %v", htu, err)
		}
	}
}

// TestDPoPAttacks: every proof that does not hold is refused with
// invalid_dpop_proof (ErrDPoPProof, with the algs challenge).
func TestDPoPAttacks(t *testing.T) {
	e := newDPoPEnv(t)
	other := oidctest.NewClient()
	hsKey := []byte("0123456789abcdef0123456789abcdef")
	cases := []struct {
		name  string
		proof func() string
		want  error
	}{
		{"no proof", func() string { return "" }, identity.ErrDPoPProof},
		{"wrong htm", func() string { c := e.claims(); c["htm"] = "GET"; return e.client.Proof(t, c, nil) }, identity.ErrDPoPProof},
		{"htm lower case", func() string { c := e.claims(); c["htm"] = "post"; return e.client.Proof(t, c, nil) }, identity.ErrDPoPProof},
		{"htu with query", func() string { c := e.claims(); c["htu"] = dpopURI + "?page=2"; return e.client.Proof(t, c, nil) }, identity.ErrDPoPProof},
		{"htu with fragment", func() string { c := e.claims(); c["htu"] = dpopURI + "#x"; return e.client.Proof(t, c, nil) }, identity.ErrDPoPProof},
		{"htu other host", func() string {
			c := e.claims()
			c["htu"] = "https://evil.example.com/orders/1"
			return e.client.Proof(t, c, nil)
		}, identity.ErrDPoPProof},
		{"htu other port", func() string {
			c := e.claims()
			c["htu"] = "https://api.example.com:8443/orders/1"
			return e.client.Proof(t, c, nil)
		}, identity.ErrDPoPProof},
		{"htu other scheme", func() string {
			c := e.claims()
			c["htu"] = "http://api.example.com/orders/1"
			return e.client.Proof(t, c, nil)
		}, identity.ErrDPoPProof},
		{"htu path case", func() string {
			c := e.claims()
			c["htu"] = "https://api.example.com/Orders/1"
			return e.client.Proof(t, c, nil)
		}, identity.ErrDPoPProof},
		{"htu encoded slash", func() string {
			c := e.claims()
			c["htu"] = "https://api.example.com/orders%2F1"
			return e.client.Proof(t, c, nil)
		}, identity.ErrDPoPProof},
		{"htu userinfo", func() string {
			c := e.claims()
			c["htu"] = "https://u@api.example.com/orders/1"
			return e.client.Proof(t, c, nil)
		}, identity.ErrDPoPProof},
		{"wrong ath", func() string { c := e.claims(); c["ath"] = oidctest.ATH("other"); return e.client.Proof(t, c, nil) }, identity.ErrDPoPProof},
		{"no ath", func() string { c := e.claims(); delete(c, "ath"); return e.client.Proof(t, c, nil) }, identity.ErrDPoPProof},
		{"proof for another token", func() string {
			c := oidctest.ProofClaims(dpopMethod, dpopURI, e.bound(t, e.client.JKT()), e.clk.Now())
			return e.client.Proof(t, c, nil)
		}, identity.ErrDPoPProof},
		{"alg none", func() string {
			return oidctest.UnsignedProof(t, map[string]any{"typ": "dpop+jwt", "alg": "none", "jwk": e.client.JWK()}, e.claims(), []byte("sig"))
		}, identity.ErrDPoPProof},
		{"HS256 with jwk", func() string { return hs256Proof(t, hsKey, e.client, e.claims()) }, identity.ErrDPoPProof},
		{"alg not in the issuer's list", func() string {
			c := oidctest.Client{Key: oidctest.Key{Alg: jose.ES384, Key: ec384(t)}}
			e384 := *e
			e384.token = e.bound(t, c.JKT())
			return c.Proof(t, e384.claims(), nil)
		}, identity.ErrDPoPProof},
		{"jwk with private key", func() string {
			priv := jose.JSONWebKey{Key: e.client.Key.Key}
			return e.client.Proof(t, e.claims(), map[jose.HeaderKey]any{"jwk": priv})
		}, identity.ErrDPoPProof},
		{"no jwk", func() string {
			return oidctest.UnsignedProof(t, map[string]any{"typ": "dpop+jwt", "alg": "ES256"}, e.claims(), []byte("sig"))
		}, identity.ErrDPoPProof},
		{"another key's proof", func() string { return other.Proof(t, e.claims(), nil) }, identity.ErrDPoPProof},
		{"signed by another key, bound jwk embedded", func() string {
			return other.Proof(t, e.claims(), map[jose.HeaderKey]any{"jwk": e.client.JWK()})
		}, identity.ErrDPoPProof},
		{"typ jwt", func() string { return e.client.Proof(t, e.claims(), map[jose.HeaderKey]any{"typ": "JWT"}) }, identity.ErrDPoPProof},
		{"iat too old", func() string {
			c := e.claims()
			c["iat"] = e.clk.Now().Add(-91 * time.Second).Unix() // window 60s + skew 30s
			return e.client.Proof(t, c, nil)
		}, identity.ErrDPoPProof},
		{"iat in the future", func() string {
			c := e.claims()
			c["iat"] = e.clk.Now().Add(45 * time.Second).Unix()
			return e.client.Proof(t, c, nil)
		}, identity.ErrDPoPProof},
		{"iat a string", func() string { c := e.claims(); c["iat"] = "now"; return e.client.Proof(t, c, nil) }, identity.ErrDPoPProof},
		{"no jti", func() string { c := e.claims(); delete(c, "jti"); return e.client.Proof(t, c, nil) }, identity.ErrDPoPProof},
		{"jti too long", func() string { c := e.claims(); c["jti"] = strings.Repeat("j", 257); return e.client.Proof(t, c, nil) }, identity.ErrDPoPProof},
		{"two DPoP headers", func() string {
			p := e.client.Proof(t, e.claims(), nil)
			return p + "," + e.client.Proof(t, e.claims(), nil)
		}, identity.ErrDPoPProof},
		{"crit header", func() string {
			return e.client.Proof(t, e.claims(), map[jose.HeaderKey]any{"crit": []string{"x"}, "x": 1})
		}, identity.ErrDPoPProof},
		{"oversized", func() string { return strings.Repeat("a", identity.MaxProofBytes+1) }, identity.ErrDPoPProof},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := e.auth(e.input("DPoP", e.token, c.proof()))
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
			var ch *identity.DPoPChallenge
			if !errors.As(err, &ch) || strings.Join(ch.Algs, " ") != "RS256 ES256" {
				t.Fatalf("challenge %+v", ch)
			}
		})
	}
}

func ec384(t *testing.T) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// hs256Proof is a proof MACed with key, the client's public jwk embedded.
func hs256Proof(t *testing.T, key []byte, c *oidctest.Client, claims map[string]any) string {
	return oidctest.SignJWS(t, jose.HS256, key, claims, map[jose.HeaderKey]any{"typ": "dpop+jwt", "jwk": c.JWK()})
}

func TestDPoPReplay(t *testing.T) {
	e := newDPoPEnv(t)
	p := e.client.Proof(t, e.claims(), nil)
	if _, err := e.auth(e.input("DPoP", e.token, p)); err != nil {
		t.Fatal(err)
	}
	_, err := e.auth(e.input("DPoP", e.token, p))
	if !errors.Is(err, identity.ErrDPoPProof) || !strings.Contains(err.Error(), "replayed") {
		t.Fatalf("replayed proof: %v", err)
	}
	// The replay cache unreachable: the proof cannot be judged (503).
	e.replay.err = errors.New("store down")
	_, err = e.auth(e.input("DPoP", e.token, e.client.Proof(t, e.claims(), nil)))
	if !identity.IsUnavailable(err) {
		t.Fatalf("store down: %v", err)
	}
}

// TestDPoPBoundAsBearer: a DPoP-bound token without its proof's scheme is
// refused (never a bearer token), and so is a DPoP-scheme unbound token.
func TestDPoPBoundAsBearer(t *testing.T) {
	e := newDPoPEnv(t)
	proof := e.client.Proof(t, e.claims(), nil)
	for _, in := range []identity.Input{
		e.input("Bearer", e.token, ""), e.input("Bearer", e.token, proof), e.input("bearer", e.token, proof),
		e.input("DPoP", e.is.Sign(t, e.is.Claims("bob", aud)), proof),
	} {
		if _, err := e.auth(in); !errors.Is(err, identity.ErrDPoPBound) {
			t.Errorf("got %v, want ErrDPoPBound", err)
		}
	}
	// The scheme name is case-insensitive (RFC 9110 §11.1).
	if _, err := e.auth(e.input("dpop", e.token, proof)); err != nil {
		t.Fatal(err)
	}
}

func TestDPoPModes(t *testing.T) {
	off := newDPoPEnv(t, func(c *identity.IssuerConfig) { c.DPoP = identity.DPoPOff })
	if _, err := off.auth(off.input("DPoP", off.token, off.client.Proof(t, off.claims(), nil))); !errors.Is(err, identity.ErrDPoPBound) {
		t.Fatalf("dpop: off, bound token with a valid proof: %v", err)
	}
	if _, err := off.auth(off.input("Bearer", off.token, "")); !errors.Is(err, identity.ErrDPoPBound) {
		t.Fatalf("dpop: off, bound token as bearer: %v", err)
	}
	req := newDPoPEnv(t, func(c *identity.IssuerConfig) { c.DPoP = identity.DPoPRequired })
	if _, err := req.auth(bearer(req.is.Sign(t, req.is.Claims("bob", aud)))); !errors.Is(err, identity.ErrDPoPBound) {
		t.Fatalf("dpop: required, bearer token: %v", err)
	}
	if id, err := req.auth(req.input("DPoP", req.token, req.client.Proof(t, req.claims(), nil))); err != nil || id.Credential != identity.CredentialDPoP {
		t.Fatalf("dpop: required, bound token: %v", err)
	}
}

func TestDPoPNonce(t *testing.T) {
	e := newDPoPEnv(t, func(c *identity.IssuerConfig) { c.DPoPNonce = true })
	_, err := e.auth(e.input("DPoP", e.token, e.client.Proof(t, e.claims(), nil)))
	var ch *identity.DPoPChallenge
	if !errors.Is(err, identity.ErrDPoPNonce) || !errors.As(err, &ch) || ch.Nonce == "" {
		t.Fatalf("no nonce: %v", err)
	}
	c := e.claims()
	c["nonce"] = ch.Nonce
	if _, err := e.auth(e.input("DPoP", e.token, e.client.Proof(t, c, nil))); err != nil {
		t.Fatalf("with the nonce: %v", err)
	}
	c = e.claims()
	c["nonce"] = ch.Nonce + "x"
	if _, err := e.auth(e.input("DPoP", e.token, e.client.Proof(t, c, nil))); !errors.Is(err, identity.ErrDPoPNonce) {
		t.Fatalf("forged nonce: %v", err)
	}
	// Two windows later the nonce is stale.
	e.clk.Add(2 * time.Minute)
	c = e.claims()
	c["nonce"] = ch.Nonce
	if _, err := e.auth(e.input("DPoP", e.token, e.client.Proof(t, c, nil))); !errors.Is(err, identity.ErrDPoPNonce) {
		t.Fatalf("stale nonce: %v", err)
	}
}

// TestConfirmationUnverifiable: a token bound in a way Warden cannot check
// is refused, not taken as a bearer token.
func TestConfirmationUnverifiable(t *testing.T) {
	e := newDPoPEnv(t)
	for _, cnf := range []any{
		map[string]any{"jwk": map[string]any{"kty": "EC"}}, map[string]any{"x5t": "abc"}, map[string]any{},
		"jkt", map[string]any{"jkt": "short"}, map[string]any{"jkt": 1},
	} {
		c := e.is.Claims("alice", aud)
		c["cnf"] = cnf
		if _, err := e.auth(bearer(e.is.Sign(t, c))); !errors.Is(err, identity.ErrClaims) {
			t.Errorf("cnf %v: %v", cnf, err)
		}
	}
}

// TestCertificateBound: a cnf.x5t#S256 token is accepted only over the
// connection of the certificate it names (RFC 8705 §3).
func TestCertificateBound(t *testing.T) {
	ca := testpki.NewCA(t, "ca")
	mine, theirs := ca.Client(t, "mine", "").Certificate(t), ca.Client(t, "theirs", "").Certificate(t)
	for _, trust := range []bool{false, true} {
		is := oidctest.New(t)
		a, _ := newAuth(t, is, func(c *identity.Config) { c.Workloads.TrustXFCC = trust })
		c := is.Claims("alice", aud)
		c["cnf"] = map[string]any{"x5t#S256": oidctest.X5T(mine.Raw)}
		tok := is.Sign(t, c)
		auth := func(in identity.Input) (identity.Identity, error) {
			in.Authorization = identity.Credential("Bearer " + tok)
			return a.Authenticate(context.Background(), in)
		}
		id, err := auth(identity.Input{Certificate: oidctest.EnvoyCert(mine)})
		if err != nil || id.Credential != identity.CredentialMTLSBound {
			t.Fatalf("own certificate: %v %v", id.Credential, err)
		}
		for name, in := range map[string]identity.Input{
			"no certificate":      {},
			"another certificate": {Certificate: oidctest.EnvoyCert(theirs)},
			"garbage":             {Certificate: "not a cert"},
			"two certificates":    {Certificate: oidctest.EnvoyCert(mine) + oidctest.EnvoyCert(theirs)},
			// XFCC counts only when Envoy saw no peer.
			"xfcc beside a peer":          {Certificate: oidctest.EnvoyCert(theirs), XFCC: "Hash=" + oidctest.XFCCHash(mine)},
			"xfcc other hash":             {XFCC: "Hash=" + oidctest.XFCCHash(theirs)},
			"xfcc hash and cert disagree": {XFCC: "Hash=" + oidctest.XFCCHash(mine) + ";Cert=\"" + oidctest.EnvoyCert(theirs) + "\""},
			"xfcc earlier hop":            {XFCC: "Hash=" + oidctest.XFCCHash(mine) + ",Hash=" + oidctest.XFCCHash(theirs)},
		} {
			if _, err := auth(in); !errors.Is(err, identity.ErrCertBound) {
				t.Errorf("trust_xfcc %v, %s: %v", trust, name, err)
			}
		}
		for name, in := range map[string]identity.Input{
			"xfcc hash": {XFCC: "By=spiffe://x;Hash=" + oidctest.XFCCHash(mine)},
			"xfcc cert": {XFCC: "Cert=\"" + oidctest.EnvoyCert(mine) + "\""},
		} {
			_, err := auth(in)
			if trust && err != nil {
				t.Errorf("trust_xfcc, %s: %v", name, err)
			}
			if !trust && !errors.Is(err, identity.ErrCertBound) {
				t.Errorf("untrusted xfcc, %s: %v", name, err)
			}
		}
	}
}

// TestCertThumbprintEnvoySample: the certificate of a CheckRequest Envoy
// sent (ENVOY.md sample 06: %20 for spaces, %2B for '+') is read, and its
// thumbprint is the SHA-256 of its DER; a '+' left literal still reads.
func TestCertThumbprintEnvoySample(t *testing.T) {
	b, err := os.ReadFile("../authz/server/testdata/checkrequests/06-context-extensions.json")
	if err != nil {
		t.Skip("sample not present:", err)
	}
	var req struct {
		Attributes struct {
			Source struct {
				Certificate string `json:"certificate"`
			} `json:"source"`
		} `json:"attributes"`
	}
	if err := json.Unmarshal(b, &req); err != nil {
		t.Fatal(err)
	}
	enc := req.Attributes.Source.Certificate
	if !strings.Contains(enc, "%2B") {
		t.Fatalf("sample changed: %.80s", enc)
	}
	tp, ok := identity.CertThumbprint(enc)
	if !ok {
		t.Fatal("Envoy's certificate not read")
	}
	dec, _ := url.PathUnescape(enc)
	blk, _ := pem.Decode([]byte(dec))
	if tp != oidctest.X5T(blk.Bytes) {
		t.Fatalf("thumbprint %s", tp)
	}
	if tp2, ok := identity.CertThumbprint(strings.ReplaceAll(enc, "%2B", "+")); !ok || tp2 != tp {
		t.Fatal("a literal '+' changed the certificate")
	}
}

// TestDPoPConfigErrors: a bad dpop setting is refused with its key path.
func TestDPoPConfigErrors(t *testing.T) {
	cfg := identity.Config{Issuers: []identity.IssuerConfig{{
		Name: "corp", Issuer: "https://idp.example.com", Audiences: []string{aud},
		DPoP: "maybe", DPoPWindow: time.Hour, DPoPAlgorithms: []string{"ES256", "HS256", "none"},
	}}}
	cfg.SetDefaults()
	err := cfg.Validate()
	for _, want := range []string{
		`issuers[0].dpop: must be one of allowed, required, off, got "maybe"`,
		"issuers[0].dpop_window: must be between 1s and 10m, got 1h0m0s",
		`issuers[0].dpop_algorithms[1]: "HS256" is not allowed`,
		`issuers[0].dpop_algorithms[2]: "none" is not allowed`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("want %q in %v", want, err)
		}
	}
	ok := identity.Config{Issuers: []identity.IssuerConfig{{Name: "corp", Issuer: "https://idp.example.com", Audiences: []string{aud}}}}
	ok.SetDefaults()
	if err := ok.Validate(); err != nil || ok.Issuers[0].DPoP != identity.DPoPAllowed || ok.Issuers[0].DPoPWindow != time.Minute {
		t.Fatalf("defaults: %v %+v", err, ok.Issuers[0])
	}
}
