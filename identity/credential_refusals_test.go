package identity_test

// Issue 21 follow-up (outside review): credentials of the new kinds that
// were accepted where they must not be.

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alexedwards/argon2id"
	jose "github.com/go-jose/go-jose/v4"

	"github.com/wardenauthz/warden/identity"
	"github.com/wardenauthz/warden/identity/oidctest"
)

// mixCase spells s with its letters' case alternating from the given start.
func mixCase(s string, upperFirst bool) string {
	var b strings.Builder
	up := upperFirst
	for _, r := range s {
		if up {
			b.WriteString(strings.ToUpper(string(r)))
		} else {
			b.WriteString(strings.ToLower(string(r)))
		}
		if r != '_' && r != ':' && r != '+' && r != '/' && r != '-' {
			up = !up
		}
	}
	return b.String()
}

// TestIntrospectionRefusesNonAccessTokens: token endpoints ignore
// token_type_hint, so an active answer about a refresh token (Hydra's
// token_use, Keycloak's typ, RFC 7662's token_type) or an ID token must be
// refused by what it says; only the documented access-token values pass, in
// any case of value and member name; DPoP names a sender-constrained token.
func TestIntrospectionRefusesNonAccessTokens(t *testing.T) {
	is := oidctest.New(t)
	a, _ := introAuth(t, is)
	// The model: per member, the values naming an access token.
	model := map[string][]string{
		"token_type": {"Bearer", "N_A", "access_token", "urn:ietf:params:oauth:token-type:access_token"},
		"token_use":  {"access_token", "access"},
		"typ":        {"Bearer", "at+jwt", "application/at+jwt", "access_token"},
	}
	refused := []any{
		"refresh_token", "Refresh", "Offline", "ID", "id_token", "Logout", "id", "",
		"urn:ietf:params:oauth:token-type:refresh_token", "urn:ietf:params:oauth:token-type:id_token",
		"urn:ietf:params:oauth:token-type:jwt", "JWT", "mac", "pop", "DPoP", "dpop", "bearer ",
		"access_token\x00", 1, true, nil, []any{"Bearer"}, map[string]any{},
	}
	type tc struct {
		name   string
		answer map[string]any
		ok     bool
	}
	var cases []tc
	for member, good := range model {
		for _, name := range []string{member, strings.ToUpper(member), mixCase(member, true)} {
			for _, v := range good {
				for _, spelled := range []string{v, strings.ToUpper(v), mixCase(v, false)} {
					cases = append(cases, tc{fmt.Sprintf("%s=%q", name, spelled), map[string]any{name: spelled}, true})
				}
			}
			for _, v := range refused {
				cases = append(cases, tc{fmt.Sprintf("%s=%#v", name, v), map[string]any{name: v}, false})
			}
		}
	}
	// The attacker's three spellings, and a refusal in one member hidden
	// behind an acceptable one in another.
	cases = append(cases,
		tc{"hydra refresh", map[string]any{"token_use": "refresh_token"}, false},
		tc{"keycloak refresh", map[string]any{"typ": "Refresh", "token_type": "Refresh"}, false},
		tc{"token_type Bearer, token_use refresh", map[string]any{"token_type": "Bearer", "token_use": "refresh_token"}, false},
		tc{"typ Bearer, token_type refresh", map[string]any{"typ": "Bearer", "token_type": "refresh_token"}, false},
		tc{"all three access", map[string]any{"typ": "Bearer", "token_type": "Bearer", "token_use": "access_token"}, true},
		tc{"none", map[string]any{}, true},
	)
	for _, c := range cases {
		claims := introClaims(is, "alice")
		for k, v := range c.answer {
			claims[k] = v
		}
		id, err := a.Authenticate(context.Background(), bearer(is.Opaque(claims)))
		switch {
		case c.ok && err != nil:
			t.Errorf("%s: refused: %v", c.name, err)
		case !c.ok && err == nil:
			t.Errorf("%s: accepted as %v %q", c.name, id.Kind, id.ID)
		case !c.ok && identity.IsUnavailable(err):
			t.Errorf("%s: %v, want a refusal (401), not unavailable", c.name, err)
		case !c.ok && !errors.Is(err, identity.ErrType) && !errors.Is(err, identity.ErrClaims):
			t.Errorf("%s: %v, want ErrType or ErrClaims", c.name, err)
		}
	}
}

// TestIntrospectAllRefusesBoundJWT: with introspection.tokens: all, a JWT
// whose own payload is sender-constrained (cnf, any case of the name, any
// confirmation method) is refused before it is introspected, whatever the
// endpoint would answer; an unbound JWT still is introspected and accepted.
func TestIntrospectAllRefusesBoundJWT(t *testing.T) {
	is := oidctest.New(t)
	a, _ := introAuth(t, is, func(c *identity.IntrospectionConfig) { c.Tokens = identity.IntrospectAll })
	for name, cnf := range map[string]map[string]any{
		"cnf":      {"cnf": map[string]any{"jkt": oidctest.NewClient().JKT()}},
		"x5t#S256": {"cnf": map[string]any{"x5t#S256": oidctest.X5T([]byte("another client's certificate"))}},
		"CNF":      {"CNF": map[string]any{"jkt": oidctest.NewClient().JKT()}},
		"empty":    {"cnf": map[string]any{}},
		"jwk":      {"cnf": map[string]any{"jwk": map[string]any{"kty": "EC"}}},
	} {
		c := is.Claims("alice", aud)
		for k, v := range cnf {
			c[k] = v
		}
		tok := is.Sign(t, c) // a sender-constrained JWT, stolen
		ans := map[string]any{"active": true}
		for k, v := range c {
			if !strings.EqualFold(k, "cnf") {
				ans[k] = v
			}
		}
		b, _ := json.Marshal(ans)
		is.SetIntrospectionAnswer(tok, b)
		before := is.IntrospectionCalls()
		for _, scheme := range []string{"Bearer ", "DPoP "} {
			id, err := a.Authenticate(context.Background(), identity.Input{Authorization: identity.Credential(scheme + tok)})
			if err == nil {
				t.Errorf("%s: bound JWT accepted with %s: %v %q kind %q", name, scheme, id.Kind, id.ID, id.Credential)
			} else if identity.IsUnavailable(err) {
				t.Errorf("%s: %v, want a refusal", name, err)
			}
		}
		if n := is.IntrospectionCalls() - before; n != 0 {
			t.Errorf("%s: %d introspection calls for a bound JWT, want 0 (refused before)", name, n)
		}
	}
	// Control: an unbound JWT is introspected and accepted.
	c := is.Claims("bob", aud)
	tok := is.Sign(t, c)
	ans := map[string]any{"active": true}
	for k, v := range c {
		ans[k] = v
	}
	b, _ := json.Marshal(ans)
	is.SetIntrospectionAnswer(tok, b)
	if id, err := a.Authenticate(context.Background(), bearer(tok)); err != nil || id.Credential != identity.CredentialIntrospected {
		t.Errorf("unbound JWT under tokens: all: %v %q", err, id.Credential)
	}
	// tokens: all cannot go with dpop: required (every DPoP-bound JWT refused).
	_, err := identity.New(identity.Config{Issuers: []identity.IssuerConfig{{
		Name: "corp", Issuer: is.URL, Audiences: []string{aud}, DPoP: identity.DPoPRequired,
		Introspection: &identity.IntrospectionConfig{ClientID: "w", ClientSecretEnv: "HOME", Tokens: identity.IntrospectAll},
	}}}, identity.Options{})
	if err == nil || !strings.Contains(err.Error(), "introspection.tokens") {
		t.Errorf("tokens: all with dpop: required: %v", err)
	}
}

// TestAPIKeyAsBearerNeverIntrospected: an API key (or a token holding one)
// sent under Bearer or DPoP is malformed (401) and never leaves Warden: no
// introspection call, whatever its case; a token that merely starts with
// "wk_" is refused the same way.
func TestAPIKeyAsBearerNeverIntrospected(t *testing.T) {
	is := oidctest.New(t)
	a, _ := introAuth(t, is)
	key, _, err := identity.NewAPIKey("ci", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for _, auth := range []string{
		"Bearer " + key, "bearer " + key, "DPoP " + key, "Bearer " + strings.ToUpper(key),
		"Bearer " + mixCase(key, true), "Bearer x" + key, "Bearer " + key + "x", "Bearer prefix." + key,
		"Bearer wk_short", "Bearer WK_" + key[3:],
	} {
		_, err := a.Authenticate(context.Background(), identity.Input{Authorization: identity.Credential(auth)})
		if !errors.Is(err, identity.ErrMalformed) {
			t.Errorf("%.20s...: %v, want ErrMalformed", auth, err)
		}
	}
	if n := is.IntrospectionCalls(); n != 0 {
		t.Errorf("%d introspection calls: an API key was sent to the IdP", n)
	}
	for _, f := range is.IntrospectionForms() {
		if strings.Contains(strings.ToLower(strings.Join(f["token"], "")), key[20:]) {
			t.Error("the key's secret was POSTed to the introspection endpoint")
		}
	}
	// Control: an opaque token that holds "wk" elsewhere is introspected.
	if _, err := a.Authenticate(context.Background(), bearer(is.Opaque(introClaims(is, "alice"))+"wk_")); err == nil || errors.Is(err, identity.ErrMalformed) {
		t.Errorf("opaque token ending in wk_: %v, want the endpoint's verdict (unknown token)", err)
	}
}

// signedAnswerServer serves one fixed RFC 9701 answer, as a replaying
// man in the middle (or a stale cache) would.
func signedAnswerServer(t *testing.T, is *oidctest.Issuer, payload map[string]any) string {
	t.Helper()
	b, err := json.Marshal(payload)
	if err != nil {
		t.Fatal(err)
	}
	jwt, err := oidctest.Mint(is.Key(""), b, map[jose.HeaderKey]any{"typ": "token-introspection+jwt"})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/token-introspection+jwt")
		_, _ = w.Write([]byte(jwt))
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestSignedIntrospectionAnswerFreshness: an RFC 9701 answer names no
// token, so only its time ties it to the question: an answer issued before
// the request (beyond clock_skew), in the future, expired or not yet valid,
// or without a numeric iat is unusable (503), never a verdict; a fresh one
// is taken.
func TestSignedIntrospectionAnswerFreshness(t *testing.T) {
	is := oidctest.New(t)
	now := time.Now()
	admin := is.Claims("admin", aud)
	admin["active"] = true
	admin["exp"] = now.Add(time.Hour).Unix()
	f := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(f, []byte(introSecret), 0o600); err != nil {
		t.Fatal(err)
	}
	skew := time.Minute // the default clock_skew
	for _, tc := range []struct {
		name string
		set  map[string]any // nil value: member absent
		ok   bool
	}{
		{"fresh", map[string]any{"iat": now.Unix()}, true},
		{"fresh, exp ahead", map[string]any{"iat": now.Unix(), "exp": now.Add(time.Minute).Unix()}, true},
		{"fresh, fractional iat", map[string]any{"iat": float64(now.UnixMilli()) / 1000}, true},
		{"a year old, expired", map[string]any{"iat": now.Add(-300 * 24 * time.Hour).Unix(), "exp": now.Add(-200 * 24 * time.Hour).Unix()}, false},
		{"an hour old, no exp", map[string]any{"iat": now.Add(-time.Hour).Unix()}, false},
		{"older than skew", map[string]any{"iat": now.Add(-skew - 10*time.Second).Unix()}, false},
		{"in the future", map[string]any{"iat": now.Add(skew + time.Minute).Unix()}, false},
		{"no iat", map[string]any{"iat": nil}, false},
		{"iat as string", map[string]any{"iat": fmt.Sprint(now.Unix())}, false},
		{"fresh, expired", map[string]any{"iat": now.Unix(), "exp": now.Add(-skew - time.Second).Unix()}, false},
		{"fresh, exp as string", map[string]any{"iat": now.Unix(), "exp": "9999999999"}, false},
		{"fresh, not yet valid", map[string]any{"iat": now.Unix(), "nbf": now.Add(skew + time.Minute).Unix()}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			payload := map[string]any{"iss": is.URL, "aud": "warden", "token_introspection": admin}
			for k, v := range tc.set {
				if v != nil {
					payload[k] = v
				}
			}
			endpoint := signedAnswerServer(t, is, payload)
			a, _ := newAuth(t, is, func(c *identity.Config) {
				c.Issuers[0].Introspection = &identity.IntrospectionConfig{ClientID: "warden", ClientSecretFile: f, Endpoint: endpoint, JWTResponse: true}
			})
			id, err := a.Authenticate(context.Background(), bearer("any-opaque-token"))
			switch {
			case tc.ok && err != nil:
				t.Fatalf("fresh answer refused: %v", err)
			case !tc.ok && err == nil:
				t.Fatalf("stale answer accepted for an unrelated token: %v %q", id.Kind, id.ID)
			case !tc.ok && !errors.Is(err, identity.ErrIntrospectionUnavailable):
				t.Fatalf("%v, want ErrIntrospectionUnavailable (503)", err)
			}
		})
	}
}

// TestIntrospectionUnavailableIsNamedAndLoggedOnce: an endpoint that is
// down is ErrIntrospectionUnavailable (the 503 says so, not "issuer keys"),
// and a warning naming the issuer is logged once per interval however
// many requests fail, without the token.
func TestIntrospectionUnavailableIsNamedAndLoggedOnce(t *testing.T) {
	is := oidctest.New(t)
	is.EnableIntrospection("warden", introSecret)
	f := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(f, []byte(introSecret), 0o600); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(lockedWriter{&mu, &buf}, nil))
	a, err := identity.New(identity.Config{Issuers: []identity.IssuerConfig{{
		Name: "corp", Issuer: is.URL, Audiences: []string{aud}, Algorithms: []string{"RS256"},
		Introspection: &identity.IntrospectionConfig{ClientID: "warden", ClientSecretFile: f},
	}}}, identity.Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	a.Start(ctx)
	is.SetIntrospectionDown(true)
	var toks []string
	for range 5 {
		tok := is.Opaque(introClaims(is, "alice"))
		toks = append(toks, tok)
		_, err := a.Authenticate(context.Background(), bearer(tok))
		if !errors.Is(err, identity.ErrIntrospectionUnavailable) || !identity.IsUnavailable(err) {
			t.Fatalf("endpoint down: %v, want ErrIntrospectionUnavailable", err)
		}
	}
	mu.Lock()
	out := buf.String()
	mu.Unlock()
	if n := strings.Count(out, "level=WARN"); n != 1 {
		t.Errorf("%d warnings for 5 failures, want 1 (rate-limited):\n%s", n, out)
	}
	if !strings.Contains(out, "issuer=corp") {
		t.Errorf("warning does not name the issuer:\n%s", out)
	}
	for _, tok := range toks {
		if strings.Contains(out, tok) {
			t.Error("the log holds a token")
		}
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// TestAPIKeyFileMixedArgonParamsRefused: argon2id entries of one file must
// share their parameters, or a lookup of an id with heavier ones takes
// longer than one of an unknown id (which compares with a dummy of the
// first entry's): refused at load with file:line:col.
func TestAPIKeyFileMixedArgonParamsRefused(t *testing.T) {
	hash := func(pw string, m, iter uint32, p uint8, keyLen uint32) string {
		h, err := argon2id.CreateHash(pw, &argon2id.Params{Memory: m, Iterations: iter, Parallelism: p, SaltLength: 16, KeyLength: keyLen})
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	base := hash("a", 64, 1, 1, 32)
	file := func(second string) []byte {
		return fmt.Appendf(nil, "keys:\n  - {name: a, id: 1111111111111111, hash: '%s'}\n  - {name: s, id: 3333333333333333, hash: 'sha256:%s'}\n  - {name: b, id: 2222222222222222, hash: '%s'}\n",
			base, strings.Repeat("0", 64), second)
	}
	if _, err := identity.ParseAPIKeys("keys.yaml", file(hash("b", 64, 1, 1, 32))); err != nil {
		t.Fatalf("same parameters: %v", err)
	}
	for name, h := range map[string]string{
		"memory":       hash("b", 128, 1, 1, 32),
		"iterations":   hash("b", 64, 2, 1, 32),
		"parallelism":  hash("b", 64, 1, 2, 32),
		"key length":   hash("b", 64, 1, 1, 64),
		"much heavier": hash("b", 64*1024, 3, 1, 32),
	} {
		_, err := identity.ParseAPIKeys("keys.yaml", file(h))
		if err == nil || !strings.HasPrefix(err.Error(), "keys.yaml:4:") || !strings.Contains(err.Error(), "at line 2") {
			t.Errorf("%s differs: %v, want keys.yaml:4:... naming line 2", name, err)
		}
	}
}

// TestDPoPWeakRSAProofKeyRefused: a proof signed by an RSA key under 2048
// bits is refused, as such keys are in an issuer's JWKS.
func TestDPoPWeakRSAProofKeyRefused(t *testing.T) {
	e := newDPoPEnv(t, func(c *identity.IssuerConfig) { c.Algorithms = []string{"RS256", "ES256", "PS256"} })
	for _, bits := range []int{1024, 2047, 2048} {
		k, err := rsa.GenerateKey(rand.Reader, bits)
		if err != nil {
			t.Fatal(err)
		}
		for _, alg := range []jose.SignatureAlgorithm{jose.RS256, jose.PS256} {
			cl := &oidctest.Client{Key: oidctest.Key{Alg: alg, Key: k}}
			tok := e.bound(t, cl.JKT())
			proof := cl.Proof(t, oidctest.ProofClaims(dpopMethod, dpopURI, tok, e.clk.Now()), nil)
			id, err := e.auth(e.input("DPoP", tok, proof))
			switch {
			case bits < 2048 && err == nil:
				t.Errorf("RSA-%d %s proof key accepted: %q", bits, alg, id.Credential)
			case bits < 2048 && !errors.Is(err, identity.ErrDPoPProof):
				t.Errorf("RSA-%d %s: %v, want ErrDPoPProof", bits, alg, err)
			case bits >= 2048 && err != nil:
				t.Errorf("RSA-%d %s proof refused: %v", bits, alg, err)
			}
		}
	}
}
