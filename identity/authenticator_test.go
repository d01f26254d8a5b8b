package identity_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/wardenauthz/warden/identity"
	"github.com/wardenauthz/warden/identity/oidctest"
	"github.com/wardenauthz/warden/internal/testclock"
	"github.com/wardenauthz/warden/internal/testwait"
)

const aud = "api://orders"

// clock is a settable test clock, starting at the real time (the issuer's
// claims carry real times).
type clock = testclock.Clock

func newClock() *clock { return testclock.New(time.Now()) }

func newAuth(t *testing.T, is *oidctest.Issuer, mutate ...func(*identity.Config)) (*identity.Authenticator, *clock) {
	t.Helper()
	clk := newClock()
	cfg := identity.Config{Issuers: []identity.IssuerConfig{{
		Name: "corp", Issuer: is.URL, Audiences: []string{aud}, Algorithms: []string{"RS256", "ES256"},
	}}}
	for _, m := range mutate {
		m(&cfg)
	}
	a, err := identity.New(cfg, identity.Options{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	a.Start(ctx)
	testwait.Until(t, 5*time.Second, "keys never fetched", func() bool { return len(a.NotReady()) == 0 })
	return a, clk
}

func bearer(tok string) identity.Input {
	return identity.Input{Authorization: identity.Credential("Bearer " + tok)}
}

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func TestValidTokenBecomesUser(t *testing.T) {
	is := oidctest.New(t)
	a, _ := newAuth(t, is)
	c := is.Claims("alice", aud)
	c["groups"] = []string{"admins", "ops"}
	c["scope"] = "orders:read orders:write"
	c["acr"] = "mfa"
	tok := is.Sign(t, c)
	id, err := a.Authenticate(context.Background(), bearer(tok))
	if err != nil {
		t.Fatal(err)
	}
	if id.Kind != identity.User || id.ID != "corp|alice" {
		t.Errorf("got %v %q, want User corp|alice", id.Kind, id.ID)
	}
	if got, want := strings.Join(id.Groups, ","), "corp|admins,corp|ops"; got != want {
		t.Errorf("groups: got %q, want %q", got, want)
	}
	if got := strings.Join(id.Token.Scopes, " "); got != "orders:read orders:write" {
		t.Errorf("scopes: got %q", got)
	}
	if id.Token.Acr != "mfa" {
		t.Errorf("acr: got %q", id.Token.Acr)
	}
	// The token's view is sealed at verification with the principal and
	// the identity header values, and shared by the cached token.
	if got, want := id.Token.PrincipalText(), `User::"corp|alice"`; got != want {
		t.Errorf("principal: got %q, want %q", got, want)
	}
	if g, s := id.Token.GroupsHeader(), id.Token.ScopesHeader(); g != "admins,ops" || s != "orders:read orders:write" {
		t.Errorf("header values: got %q and %q", g, s)
	}
	again, err := a.Authenticate(context.Background(), bearer(tok))
	if err != nil {
		t.Fatal(err)
	}
	if again.Token != id.Token {
		t.Error("the same token twice: two views, want the cached one")
	}
}

func TestClientCredentialsBecomeClient(t *testing.T) {
	is := oidctest.New(t)
	a, _ := newAuth(t, is)
	for name, mut := range map[string]func(map[string]any){
		"sub equals client_id": func(c map[string]any) { c["sub"] = "reporting"; c["client_id"] = "reporting" },
		"no sub, azp":          func(c map[string]any) { delete(c, "sub"); c["azp"] = "reporting" },
	} {
		t.Run(name, func(t *testing.T) {
			c := is.Claims("x", aud)
			mut(c)
			id, err := a.Authenticate(context.Background(), bearer(is.Sign(t, c)))
			if err != nil {
				t.Fatal(err)
			}
			if id.Kind != identity.Client || id.ID != "corp|reporting" {
				t.Errorf("got %v %q, want Client corp|reporting", id.Kind, id.ID)
			}
			if got, want := id.Token.PrincipalText(), `Client::"corp|reporting"`; got != want {
				t.Errorf("principal: got %q, want %q", got, want)
			}
		})
	}
}

func TestGroupsAndScopesForms(t *testing.T) {
	is := oidctest.New(t)
	a, _ := newAuth(t, is)
	for _, tc := range []struct {
		name   string
		groups any
		scope  any
		want   string
	}{
		{"array", []string{"a", "b"}, []string{"x", "y"}, "a,b|x,y"},
		{"space string", "a b", "x y", "a,b|x,y"},
		{"comma string", "a,b", "x,y", "a,b|x,y"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := is.Claims("alice", aud)
			c["groups"], c["scope"] = tc.groups, tc.scope
			id, err := a.Authenticate(context.Background(), bearer(is.Sign(t, c)))
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(id.Token.Groups, ",") + "|" + strings.Join(id.Token.Scopes, ","); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// TestAttacks: every token an attacker might craft is rejected, with the
// reason, before any crypto where SPEC §4 says so.
func TestAttacks(t *testing.T) {
	is := oidctest.New(t)
	a, _ := newAuth(t, is, func(c *identity.Config) {
		c.Issuers[0].Algorithms = []string{"RS256"}
	})
	typed, _ := newAuth(t, is, func(c *identity.Config) { c.Issuers[0].RequireTyp = "at+jwt" })
	k1 := is.Key("k1")
	good := func() map[string]any { return is.Claims("mallory", aud) }
	with := func(f func(map[string]any)) map[string]any { c := good(); f(c); return c }
	now := time.Now()
	valid := is.Sign(t, good())
	parts := strings.Split(valid, ".")

	for _, tc := range []struct {
		name  string
		auth  *identity.Authenticator
		token func() string
		want  error
	}{
		{"alg none", a, func() string {
			return b64(`{"alg":"none","typ":"JWT"}`) + "." + parts[1] + "."
		}, identity.ErrAlgorithm},
		{"alg NONE any case", a, func() string { return b64(`{"alg":"nOnE"}`) + "." + parts[1] + "." }, identity.ErrAlgorithm},
		{"HS256 with the public key as secret", a, func() string {
			return b64(`{"alg":"HS256","kid":"k1"}`) + "." + parts[1] + "." + parts[2]
		}, identity.ErrAlgorithm},
		{"alg not allowed for the issuer (ES256)", a, func() string {
			return oidctest.SignWith(t, oidctest.ECKey("k1"), good(), nil)
		}, identity.ErrAlgorithm},
		{"forged signature (other key, same kid)", a, func() string {
			return oidctest.SignWith(t, oidctest.RSAKey("k1", 1), good(), nil)
		}, identity.ErrSignature},
		{"tampered payload", a, func() string {
			return parts[0] + "." + b64(`{"iss":"`+is.URL+`","sub":"admin","aud":"`+aud+`","exp":9999999999}`) + "." + parts[2]
		}, identity.ErrSignature},
		{"unknown kid", a, func() string { return oidctest.SignWith(t, oidctest.RSAKey("nope", 1), good(), nil) }, identity.ErrUnknownKey},
		{"JWE (five parts)", a, func() string { return "eyJhbGciOiJSU0EtT0FFUCJ9.a.b.c.d" }, identity.ErrUnsupportedForm},
		{"JWS JSON serialization", a, func() string {
			return `{"payload":"` + parts[1] + `","protected":"` + parts[0] + `","signature":"` + parts[2] + `"}`
		}, identity.ErrMalformed}, // not a token68, so no Bearer credential (RFC 6750 §2.1)
		{"whitespace inside", a, func() string { return parts[0] + ". " + parts[1] + "." + parts[2] }, identity.ErrMalformed},
		{"two dots only", a, func() string { return parts[0] + "." + parts[1] }, identity.ErrMalformed},
		{"non-canonical base64", a, func() string {
			// "e30" is {}; "e31" decodes to the same byte with non-zero padding bits.
			return parts[0] + "." + parts[1] + "." + parts[2][:len(parts[2])-1] + flip(parts[2][len(parts[2])-1])
		}, identity.ErrMalformed},
		{"too large (1 MiB signed)", a, func() string {
			return is.Sign(t, with(func(c map[string]any) { c["pad"] = strings.Repeat("A", 1<<20) }))
		}, identity.ErrTooLarge},
		{"crit header", a, func() string {
			return oidctest.SignWith(t, k1, good(), map[jose.HeaderKey]any{"crit": []string{"exp"}, "exp": 1})
		}, identity.ErrUnsupportedForm},
		{"b64=false", a, func() string {
			return b64(`{"alg":"RS256","kid":"k1","b64":false,"crit":["b64"]}`) + "." + parts[1] + "." + parts[2]
		}, identity.ErrUnsupportedForm},
		{"duplicate key in header", a, func() string {
			return b64(`{"alg":"RS256","alg":"none","kid":"k1"}`) + "." + parts[1] + "." + parts[2]
		}, identity.ErrMalformed},
		{"duplicate key in claims (signed)", a, func() string {
			p := fmt.Sprintf(`{"iss":%q,"sub":"alice","sub":"admin","aud":%q,"exp":%d}`, is.URL, aud, now.Add(time.Hour).Unix())
			return oidctest.SignRaw(t, k1, []byte(p), nil)
		}, identity.ErrMalformed},
		{"duplicate key in a nested claim", a, func() string {
			p := fmt.Sprintf(`{"iss":%q,"sub":"alice","aud":%q,"exp":%d,"x":{"a":1,"a":2}}`, is.URL, aud, now.Add(time.Hour).Unix())
			return oidctest.SignRaw(t, k1, []byte(p), nil)
		}, identity.ErrMalformed},
		{"unknown issuer", a, func() string {
			return is.Sign(t, with(func(c map[string]any) { c["iss"] = "https://evil.example" }))
		}, identity.ErrUnknownIssuer},
		{"no iss", a, func() string { return is.Sign(t, with(func(c map[string]any) { delete(c, "iss") })) }, identity.ErrUnknownIssuer},
		{"expired", a, func() string {
			return is.Sign(t, with(func(c map[string]any) { c["exp"] = now.Add(-time.Minute).Unix() }))
		}, identity.ErrExpired},
		{"no exp", a, func() string { return is.Sign(t, with(func(c map[string]any) { delete(c, "exp") })) }, identity.ErrClaims},
		{"nbf 4 minutes ahead (go-oidc allows 5)", a, func() string {
			return is.Sign(t, with(func(c map[string]any) { c["nbf"] = now.Add(4 * time.Minute).Unix() }))
		}, identity.ErrNotYetValid},
		{"iat in the future", a, func() string {
			return is.Sign(t, with(func(c map[string]any) { c["iat"] = now.Add(10 * time.Minute).Unix() }))
		}, identity.ErrIssuedInFuture},
		{"wrong audience", a, func() string {
			return is.Sign(t, with(func(c map[string]any) { c["aud"] = []string{"api://payments"} }))
		}, identity.ErrAudience},
		{"no audience", a, func() string { return is.Sign(t, with(func(c map[string]any) { delete(c, "aud") })) }, identity.ErrAudience},
		{"azp differs from client_id", a, func() string {
			return is.Sign(t, with(func(c map[string]any) { c["azp"] = "spa"; c["client_id"] = "backend" }))
		}, identity.ErrClaims},
		{"ID token (typ JWT) where at+jwt is required", typed, func() string {
			return oidctest.SignWith(t, k1, good(), map[jose.HeaderKey]any{"typ": "JWT"})
		}, identity.ErrType},
		{"typ missing from the protected header", typed, func() string { return oidctest.SignWith(t, k1, good(), nil) }, identity.ErrType},
		{"exp is a string", a, func() string {
			return is.Sign(t, with(func(c map[string]any) { c["exp"] = "9999999999" }))
		}, identity.ErrClaims},
		{"groups is a number", a, func() string { return is.Sign(t, with(func(c map[string]any) { c["groups"] = 7 })) }, identity.ErrClaims},
		{"empty bearer", a, func() string { return "" }, identity.ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.auth.Authenticate(context.Background(), bearer(tc.token()))
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

func flip(c byte) string {
	// Change only padding bits of the last base64 character.
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	i := strings.IndexByte(alphabet, c)
	return string(alphabet[i^1])
}

func TestClockSkew(t *testing.T) {
	is := oidctest.New(t)
	a, clk := newAuth(t, is) // default skew 30s
	c := is.Claims("alice", aud)
	c["exp"] = clk.Now().Add(-20 * time.Second).Unix()
	if _, err := a.Authenticate(context.Background(), bearer(is.Sign(t, c))); err != nil {
		t.Errorf("expired 20s ago, within 30s skew: got %v, want accepted", err)
	}
	c = is.Claims("alice", aud)
	c["nbf"] = clk.Now().Add(20 * time.Second).Unix()
	if _, err := a.Authenticate(context.Background(), bearer(is.Sign(t, c))); err != nil {
		t.Errorf("nbf 20s ahead: got %v, want accepted", err)
	}
}

// TestClockSkewZero: an explicit zero skew is zero (not the 30s default):
// a token 2.5s past exp, or with nbf 2.5s ahead, is refused.
func TestClockSkewZero(t *testing.T) {
	is := oidctest.New(t)
	a, clk := newAuth(t, is, func(c *identity.Config) { c.Issuers[0].ClockSkew = new(time.Duration(0)) })
	c := is.Claims("alice", aud)
	c["exp"] = clk.Now().Add(-2500 * time.Millisecond).Unix()
	if _, err := a.Authenticate(context.Background(), bearer(is.Sign(t, c))); !errors.Is(err, identity.ErrExpired) {
		t.Errorf("expired 2.5s ago with clock_skew 0s: got %v, want ErrExpired", err)
	}
	c = is.Claims("alice", aud)
	c["nbf"] = clk.Now().Add(2500 * time.Millisecond).Unix()
	if _, err := a.Authenticate(context.Background(), bearer(is.Sign(t, c))); !errors.Is(err, identity.ErrNotYetValid) {
		t.Errorf("nbf 2.5s ahead with clock_skew 0s: got %v, want ErrNotYetValid", err)
	}
}

func TestCachedTokenStillExpires(t *testing.T) {
	is := oidctest.New(t)
	a, clk := newAuth(t, is)
	c := is.Claims("alice", aud)
	c["exp"] = clk.Now().Add(time.Minute).Unix()
	tok := is.Sign(t, c)
	if _, err := a.Authenticate(context.Background(), bearer(tok)); err != nil {
		t.Fatal(err)
	}
	clk.Add(2 * time.Minute)
	if _, err := a.Authenticate(context.Background(), bearer(tok)); !errors.Is(err, identity.ErrExpired) {
		t.Fatalf("after exp: got %v, want ErrExpired", err)
	}
}

func TestUnknownIssuerNeverFetches(t *testing.T) {
	is := oidctest.New(t)
	a, _ := newAuth(t, is)
	before := is.Fetches()
	c := is.Claims("x", aud)
	c["iss"] = "https://elsewhere.example"
	for range 20 {
		_, _ = a.Authenticate(context.Background(), bearer(is.Sign(t, c)))
	}
	if got := is.Fetches() - before; got != 0 {
		t.Errorf("fetches: got %d, want 0", got)
	}
}

// TestJWKSStorm: a flood of unknown-kid tokens costs at most one fetch per
// unknown-kid interval, while valid tokens keep working.
func TestJWKSStorm(t *testing.T) {
	is := oidctest.New(t)
	a, clk := newAuth(t, is)
	base := is.Fetches()
	valid := is.Sign(t, is.Claims("alice", aud))
	var wg sync.WaitGroup
	var validFailures atomic.Int64
	for i := range 200 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			tok := oidctest.SignWith(t, oidctest.RSAKey(fmt.Sprintf("unknown-%d", i), 1), is.Claims("m", aud), nil)
			if _, err := a.Authenticate(context.Background(), bearer(tok)); !errors.Is(err, identity.ErrUnknownKey) {
				t.Errorf("unknown kid: got %v", err)
			}
		}()
		go func() {
			defer wg.Done()
			if _, err := a.Authenticate(context.Background(), bearer(valid)); err != nil {
				validFailures.Add(1)
			}
		}()
	}
	wg.Wait()
	if got := is.Fetches() - base; got > 1 {
		t.Errorf("fetches during the storm: got %d, want at most 1", got)
	}
	if n := validFailures.Load(); n != 0 {
		t.Errorf("valid token failed %d times during the storm", n)
	}
	// After the unknown-kid interval one more fetch is allowed.
	clk.Add(31 * time.Second)
	tok := oidctest.SignWith(t, oidctest.RSAKey("unknown-late", 1), is.Claims("m", aud), nil)
	_, _ = a.Authenticate(context.Background(), bearer(tok))
	if got := is.Fetches() - base; got > 2 {
		t.Errorf("fetches after cooldown: got %d, want at most 2", got)
	}
}

// TestKeyRotation: a token signed by a newly published key is accepted (one
// refetch), and tokens of the old key keep working while it is published.
func TestKeyRotation(t *testing.T) {
	is := oidctest.New(t)
	a, clk := newAuth(t, is)
	oldTok := is.Sign(t, is.Claims("alice", aud))
	if _, err := a.Authenticate(context.Background(), bearer(oldTok)); err != nil {
		t.Fatal(err)
	}
	k2 := oidctest.RSAKey("k2", 2)
	is.Publish(is.Key("k1"), k2)
	clk.Add(31 * time.Second)
	newTok := oidctest.SignWith(t, k2, is.Claims("bob", aud), nil)
	if _, err := a.Authenticate(context.Background(), bearer(newTok)); err != nil {
		t.Fatalf("new key: %v", err)
	}
	fresh := oidctest.SignWith(t, is.Key("k1"), is.Claims("carol", aud), nil)
	if _, err := a.Authenticate(context.Background(), bearer(fresh)); err != nil {
		t.Fatalf("old key still published: %v", err)
	}
}

func TestIssuerDownAtStart(t *testing.T) {
	is := oidctest.New(t)
	is.SetDown(true)
	cfg := identity.Config{Issuers: []identity.IssuerConfig{{Name: "corp", Issuer: is.URL, Audiences: []string{aud}}}}
	a, err := identity.New(cfg, identity.Options{})
	if err != nil {
		t.Fatal(err)
	}
	tok := is.Sign(t, is.Claims("alice", aud))
	if _, err := a.Authenticate(context.Background(), bearer(tok)); !identity.IsUnavailable(err) {
		t.Fatalf("keys never fetched: got %v, want unavailable", err)
	}
	if got := a.NotReady(); len(got) != 1 || got[0] != "corp" {
		t.Errorf("NotReady: got %v", got)
	}
	is.SetDown(false)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a.Start(ctx)
	testwait.Until(t, 5*time.Second, "keys never fetched after the issuer came back", func() bool { return len(a.NotReady()) == 0 })
	if _, err := a.Authenticate(context.Background(), bearer(tok)); err != nil {
		t.Fatalf("after recovery: %v", err)
	}
}

func TestJWKSSizeLimit(t *testing.T) {
	is := oidctest.New(t)
	var big []jose.JSONWebKey
	for i := range 3000 {
		big = append(big, jose.JSONWebKey{Key: is.Key("k1").Key.Public(), KeyID: fmt.Sprintf("key-%04d-%s", i, strings.Repeat("x", 64)), Algorithm: "RS256"})
	}
	b, _ := json.Marshal(jose.JSONWebKeySet{Keys: big})
	if len(b) < 1<<20 {
		t.Fatalf("test JWKS only %d bytes", len(b))
	}
	keys := make([]oidctest.Key, 0, len(big))
	for _, k := range big {
		keys = append(keys, oidctest.Key{ID: k.KeyID, Alg: jose.RS256, Key: is.Key("k1").Key})
	}
	is.Publish(keys...)
	cfg := identity.Config{Issuers: []identity.IssuerConfig{{Name: "corp", Issuer: is.URL, Audiences: []string{aud}}}}
	a, err := identity.New(cfg, identity.Options{})
	if err != nil {
		t.Fatal(err)
	}
	tok := oidctest.SignWith(t, keys[0], is.Claims("alice", aud), nil)
	if _, err := a.Authenticate(context.Background(), bearer(tok)); !identity.IsUnavailable(err) {
		t.Fatalf("oversized JWKS: got %v, want unavailable", err)
	}
}

func TestAnonymousAndWorkloads(t *testing.T) {
	is := oidctest.New(t)
	a, _ := newAuth(t, is)
	ctx := context.Background()
	id, err := a.Authenticate(ctx, identity.Input{})
	if err != nil || id.Kind != identity.Anonymous || id.ID != "anonymous" {
		t.Errorf("no credentials: got %+v, %v", id, err)
	}
	id, err = a.Authenticate(ctx, identity.Input{Authorization: "Basic YWxhZGRpbjpvcGVuc2VzYW1l"})
	if err != nil || id.Kind != identity.Anonymous {
		t.Errorf("Basic auth is not a Warden credential: got %+v, %v", id, err)
	}
	id, err = a.Authenticate(ctx, identity.Input{PeerPrincipal: "spiffe://cluster.local/ns/billing/sa/invoicer"})
	if err != nil || id.Kind != identity.Workload || id.Peer.Namespace != "billing" || id.Peer.ServiceAccount != "invoicer" {
		t.Errorf("SPIFFE peer: got %+v, %v", id, err)
	}
	id, _ = a.Authenticate(ctx, identity.Input{PeerPrincipal: "spiffe://evil.example/ns/billing/sa/invoicer"})
	if id.Kind != identity.Anonymous || id.Peer != nil {
		t.Errorf("untrusted trust domain: got %+v, want anonymous", id)
	}
	id, _ = a.Authenticate(ctx, identity.Input{PeerPrincipal: "CN=ops-admin,OU=SRE,O=Example Corp"})
	if id.Kind != identity.Anonymous {
		t.Errorf("non-SPIFFE subject: got %+v, want anonymous", id)
	}
	tok := is.Sign(t, is.Claims("alice", aud))
	id, err = a.Authenticate(ctx, identity.Input{Authorization: identity.Credential("bearer " + tok), PeerPrincipal: "spiffe://cluster.local/ns/web/sa/frontend"})
	if err != nil || id.Kind != identity.User || id.Peer == nil || id.Peer.ID != "spiffe://cluster.local/ns/web/sa/frontend" {
		t.Errorf("token + peer: got %+v, %v", id, err)
	}
	// A bad token with a good peer is still a 401, never the workload.
	if id, err := a.Authenticate(ctx, identity.Input{Authorization: "Bearer x.y.z", PeerPrincipal: "spiffe://cluster.local/ns/web/sa/frontend"}); !errors.Is(err, identity.ErrMalformed) || id.Kind != identity.Anonymous || id.ID != "" {
		t.Errorf("invalid token with a peer: got %+v, %v; want no principal and ErrMalformed", id, err)
	}
	off, _ := newAuth(t, is, func(c *identity.Config) { f := false; c.Anonymous = &f })
	if _, err := off.Authenticate(ctx, identity.Input{}); !errors.Is(err, identity.ErrNoCredentials) {
		t.Errorf("anonymous off: got %v", err)
	}
}

func TestParseSPIFFE(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{"spiffe://cluster.local/ns/a/sa/b", true},
		{"spiffe://example.org/service", true},
		{"spiffe://Cluster.local/ns/a/sa/b", false},
		{"spiffe://cluster.local:8080/ns/a", false},
		{"spiffe://user@cluster.local/ns/a", false},
		{"spiffe://cluster.local/ns/a/sa/b?x=1", false},
		{"spiffe://cluster.local/ns/../sa/b", false},
		{"spiffe://cluster.local/ns/a%2Fb/sa/c", false},
		{"spiffe:///ns/a", false},
		{"https://cluster.local/ns/a", false},
		{"", false},
	} {
		if _, ok := identity.ParseSPIFFE(tc.in); ok != tc.ok {
			t.Errorf("ParseSPIFFE(%q): got %v, want %v", tc.in, ok, tc.ok)
		}
	}
}

func TestCredentialRedacted(t *testing.T) {
	c := identity.Credential("eyJhbGciOi.secret.sig")
	if s := fmt.Sprintf("%v %s %#v", c, c, c); strings.Contains(s, "secret") {
		t.Errorf("credential printed: %s", s)
	}
	var buf strings.Builder
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	log.Info("x", "input", identity.Input{Authorization: "Bearer " + c}, "cred", c)
	if strings.Contains(buf.String(), "secret") {
		t.Errorf("credential logged: %s", buf.String())
	}
}

// TestConfigValidate: each bad field is reported under its own key path
// with its own message, a good config passes, and every problem is reported
// at once.
func TestConfigValidate(t *testing.T) {
	good := func() identity.IssuerConfig {
		return identity.IssuerConfig{Name: "corp", Issuer: "https://id.example", Audiences: []string{"api"}}
	}
	one := func(f func(*identity.Config)) identity.Config {
		c := identity.Config{Issuers: []identity.IssuerConfig{good()}}
		f(&c)
		return c
	}
	issuer := func(f func(*identity.IssuerConfig)) identity.Config {
		return one(func(c *identity.Config) { f(&c.Issuers[0]) })
	}
	const plain = " is plain http on a host that is not loopback: anyone on the path could swap the keys; use https (or set insecure_http: true)"
	for _, tc := range []struct {
		name string
		cfg  identity.Config
		want string // the whole error, "" for none
	}{
		{"good", one(func(*identity.Config) {}), ""},
		{"loopback http", issuer(func(is *identity.IssuerConfig) { is.Issuer = "http://127.0.0.1:8080" }), ""},
		{"insecure http allowed", issuer(func(is *identity.IssuerConfig) { is.Issuer = "http://id.example"; is.InsecureHTTP = true }), ""},
		{"explicit zero skew", issuer(func(is *identity.IssuerConfig) { is.ClockSkew = new(time.Duration(0)) }), ""},
		{"token bytes small", one(func(c *identity.Config) { c.MaxTokenBytes = 255 }), "max_token_bytes: must be between 256 and 1048576, got 255"},
		{"token bytes large", one(func(c *identity.Config) { c.MaxTokenBytes = 1<<20 + 1 }), "max_token_bytes: must be between 256 and 1048576, got 1048577"},
		{"cache size", one(func(c *identity.Config) { c.CacheSize = -1 }), "cache_size: must not be negative"},
		{"no name", issuer(func(is *identity.IssuerConfig) { is.Name = "" }), "issuers[0].name: is required"},
		{"name with bar", issuer(func(is *identity.IssuerConfig) { is.Name = "a|b" }), `issuers[0].name: must not contain '|', '"' or spaces`},
		{"name twice", one(func(c *identity.Config) {
			c.Issuers = append(c.Issuers, good())
			c.Issuers[1].Issuer = "https://other.example"
		}), `issuers[1].name: "corp" is used twice`},
		{"name is dev issuer", one(func(c *identity.Config) {
			c.DevIssuer.Enabled = true
			c.Issuers[0].Name = identity.DevIssuerName
		}), `issuers[0].name: "` + identity.DevIssuerName + `" is used twice`},
		{"issuer not url", issuer(func(is *identity.IssuerConfig) { is.Issuer = "not a url" }), `issuers[0].issuer: must be an http(s) URL, got "not a url"`},
		{"issuer ftp", issuer(func(is *identity.IssuerConfig) { is.Issuer = "ftp://id.example" }), `issuers[0].issuer: must be an http(s) URL, got "ftp://id.example"`},
		{"issuer twice", one(func(c *identity.Config) {
			c.Issuers = append(c.Issuers, good())
			c.Issuers[1].Name = "other"
		}), `issuers[1].issuer: "https://id.example" is configured twice`},
		{"issuer plain http", issuer(func(is *identity.IssuerConfig) { is.Issuer = "http://id.example" }), `issuers[0].issuer: "http://id.example"` + plain},
		{"jwks_uri not url", issuer(func(is *identity.IssuerConfig) { is.JWKSURI = "keys.json" }), `issuers[0].jwks_uri: must be an http(s) URL, got "keys.json"`},
		{"jwks_uri plain http", issuer(func(is *identity.IssuerConfig) { is.JWKSURI = "http://keys.example/jwks" }), `issuers[0].jwks_uri: "http://keys.example/jwks"` + plain},
		{"unknown kid interval", issuer(func(is *identity.IssuerConfig) { is.JWKSRefresh.UnknownKidInterval = 2 * time.Minute }), "issuers[0].jwks_refresh.unknown_kid_interval: must be between 1s and 1m, got 2m0s"},
		{"min interval", issuer(func(is *identity.IssuerConfig) { is.JWKSRefresh.MinInterval = time.Millisecond }), "issuers[0].jwks_refresh.min_interval: must be between 1s and 24h, got 1ms"},
		{"max below min", issuer(func(is *identity.IssuerConfig) {
			is.JWKSRefresh.MinInterval = time.Hour
			is.JWKSRefresh.MaxInterval = time.Minute
		}), "issuers[0].jwks_refresh.max_interval: must be between min_interval (1h0m0s) and 24h, got 1m0s"},
		{"no audience", issuer(func(is *identity.IssuerConfig) { is.Audiences = nil }), "issuers[0].audiences: must list at least one accepted audience"},
		{"HS256", issuer(func(is *identity.IssuerConfig) { is.Algorithms = []string{"RS256", "HS256"} }), `issuers[0].algorithms[1]: "HS256" is not allowed (one of RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512, EdDSA)`},
		{"dpop HS256", issuer(func(is *identity.IssuerConfig) { is.DPoPAlgorithms = []string{"ES256", "HS256"} }), `issuers[0].dpop_algorithms[1]: "HS256" is not allowed (one of RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512, EdDSA)`},
		{"none", issuer(func(is *identity.IssuerConfig) { is.Algorithms = []string{"none"} }), `issuers[0].algorithms[0]: "none" is not allowed (one of RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512, EdDSA)`},
		{"skew large", issuer(func(is *identity.IssuerConfig) { is.ClockSkew = new(time.Hour) }), "issuers[0].clock_skew: must be between 0s and 5m, got 1h0m0s"},
		{"skew negative", issuer(func(is *identity.IssuerConfig) { is.ClockSkew = new(-time.Second) }), "issuers[0].clock_skew: must be between 0s and 5m, got -1s"},
		{"trust domain", one(func(c *identity.Config) { c.Workloads.TrustDomains = []string{"example.org", "spiffe://x"} }), `workloads.trust_domains[1]: "spiffe://x" is not a trust domain name`},
		{"every problem", identity.Config{Issuers: []identity.IssuerConfig{
			{Name: "", Issuer: "not a url", Algorithms: []string{"HS256"}},
			{Name: "a|b", Issuer: "https://x", Audiences: []string{"y"}, ClockSkew: new(time.Hour)},
		}}, "issuers[0].name: is required\n" +
			"issuers[0].issuer: must be an http(s) URL, got \"not a url\"\n" +
			"issuers[0].audiences: must list at least one accepted audience\n" +
			"issuers[0].algorithms[0]: \"HS256\" is not allowed (one of RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512, EdDSA)\n" +
			"issuers[1].name: must not contain '|', '\"' or spaces\n" +
			"issuers[1].clock_skew: must be between 0s and 5m, got 1h0m0s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			cfg.SetDefaults()
			got := ""
			if err := cfg.Validate(); err != nil {
				got = err.Error()
			}
			if got != tc.want {
				t.Errorf("Validate:\ngot  %q\nwant %q", got, tc.want)
			}
		})
	}
}
