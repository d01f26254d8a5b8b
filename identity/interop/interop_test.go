package interop_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/wardenauthz/warden/identity"
	"github.com/wardenauthz/warden/identity/oidctest"
	"github.com/wardenauthz/warden/internal/testwait"
)

const (
	resRS = "https://orders.example/rs256"
	resES = "https://orders.example/es256"
	resEd = "https://orders.example/eddsa"
)

// clock is real time plus a settable offset: the provider's tokens carry
// real times, and the tests move Warden past an expiry or an unknown-kid
// interval without sleeping.
type clock struct{ off atomic.Int64 }

func (c *clock) Now() time.Time      { return time.Now().Add(time.Duration(c.off.Load())) }
func (c *clock) Add(d time.Duration) { c.off.Add(int64(d)) }

// warden is a started Authenticator trusting p, as an operator would
// configure it for oidc-provider's JWT access tokens.
func warden(t *testing.T, p *provider, skew time.Duration) (*identity.Authenticator, *clock) {
	t.Helper()
	clk := &clock{}
	cfg := identity.Config{Issuers: []identity.IssuerConfig{{
		Name: "op", Issuer: p.Issuer, Audiences: []string{resRS, resES, resEd},
		Algorithms: []string{"RS256", "ES256", "EdDSA"}, RequireTyp: "at+jwt", ClockSkew: &skew,
	}}}
	a, err := identity.New(cfg, identity.Options{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	start(t, a)
	return a, clk
}

// start fetches a's keys until the test ends, and waits for them.
func start(t *testing.T, a *identity.Authenticator) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	a.Start(ctx)
	testwait.NoError(t, 10*time.Second, func() error {
		if len(a.NotReady()) > 0 {
			return fmt.Errorf("never ready: %+v", a.KeyStatus())
		}
		return nil
	})
}

func check(a *identity.Authenticator, tok string) (identity.Identity, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second) // Envoy's timeout
	defer cancel()
	return a.Authenticate(ctx, identity.Input{Authorization: identity.Credential("Bearer " + tok)})
}

// TestProviderTokens: oidc-provider's JWT access tokens (RFC 9068, at+jwt),
// from client credentials and from the authorization code flow, signed
// RS256, ES256 and EdDSA, audience by resource indicator, are accepted with
// the right principal; a token for another resource is refused.
func TestProviderTokens(t *testing.T) {
	p := startProvider(t, newKeys(t, 0, "k1"))
	a, _ := warden(t, p, 30*time.Second)
	for _, c := range []struct{ res, alg string }{{resRS, "RS256"}, {resES, "ES256"}, {resEd, "EdDSA"}} {
		for _, flow := range []string{"client_credentials", "authorization_code"} {
			t.Run(c.alg+"/"+flow, func(t *testing.T) {
				var tok string
				if flow == "client_credentials" {
					tok = p.ClientCredentials(t, c.res)
				} else {
					tok = p.AuthorizationCode(t, c.res)
				}
				h, cl := header(t, tok), claims(t, tok)
				if h["typ"] != "at+jwt" || h["alg"] != c.alg {
					t.Errorf("header %v, want typ at+jwt alg %s", h, c.alg)
				}
				if cl["aud"] != c.res {
					t.Errorf("aud %v, want the resource %s", cl["aud"], c.res)
				}
				id, err := check(a, tok)
				if err != nil {
					t.Fatalf("Warden refused the provider's token: %v", err)
				}
				if flow == "client_credentials" {
					if id.Kind != identity.Client || id.ID != "op|svc" {
						t.Errorf("client credentials: %v %s, want Client op|svc", id.Kind, id.ID)
					}
				} else {
					if id.Kind != identity.User || id.ID != "op|alice" || !slices.Contains(id.Groups, "op|staff") {
						t.Errorf("authorization code: %v %s %v, want User op|alice in op|staff", id.Kind, id.ID, id.Groups)
					}
					if id.Token.ClientID != "app" {
						t.Errorf("client id %q, want app", id.Token.ClientID)
					}
				}
				if !slices.Contains(id.Token.Scopes, "orders:read") {
					t.Errorf("scopes %v lack orders:read", id.Token.Scopes)
				}
			})
		}
	}
	other := p.ClientCredentials(t, "https://other.example")
	if _, err := check(a, other); !errors.Is(err, identity.ErrAudience) {
		t.Errorf("token for another resource: got %v, want ErrAudience", err)
	}
}

// TestProviderExpiry: the provider's exp is enforced, with the configured
// skew and without any.
func TestProviderExpiry(t *testing.T) {
	p := startProvider(t, newKeys(t, 0, "k1"))
	tok := p.ClientCredentials(t, resES)
	exp, ok := claims(t, tok)["exp"].(float64)
	if !ok || exp == 0 {
		t.Fatalf("exp: %v", claims(t, tok)["exp"])
	}
	expiry := time.Unix(int64(exp), 0)
	for _, c := range []struct {
		skew, after time.Duration
		ok          bool
	}{
		{30 * time.Second, -time.Second, true},
		{30 * time.Second, 10 * time.Second, true},
		{30 * time.Second, 31 * time.Second, false},
		// None (clock_skew: 0s is zero; only an unset one is 30 s).
		{0, -2 * time.Second, true},
		{0, time.Second, false},
	} {
		a, clk := warden(t, p, c.skew)
		clk.Add(time.Until(expiry) + c.after)
		_, err := check(a, tok)
		if c.ok && err != nil {
			t.Errorf("skew %v, %v after exp: %v", c.skew, c.after, err)
		}
		if !c.ok && !errors.Is(err, identity.ErrExpired) {
			t.Errorf("skew %v, %v after exp: got %v, want ErrExpired", c.skew, c.after, err)
		}
	}
}

// TestProviderRotationRestartOutage: the provider restarted with a new
// signing key is followed within 5 s; tokens it issued before a restart stay
// valid; while it is down, tokens of known keys are still judged and a token
// with an unknown kid is unavailable (503), never 401; after the outage a
// newly rotated key is accepted again.
func TestProviderRotationRestartOutage(t *testing.T) {
	k1 := newKeys(t, 0, "k1")
	p := startProvider(t, k1)
	a, clk := warden(t, p, 30*time.Second)
	t1 := p.ClientCredentials(t, resRS)
	if _, err := check(a, t1); err != nil {
		t.Fatalf("before rotation: %v", err)
	}

	// Rotation: the provider restarts signing with k2, still publishing k1.
	k2 := newKeys(t, 1, "k2")
	p.Stop()
	p.Boot(append(append([]signingKey{}, k2...), k1...))
	rotated := time.Now()
	t2 := p.ClientCredentials(t, resRS)
	t2es := p.ClientCredentials(t, resES)
	if kid := header(t, t2)["kid"]; kid != "k2-rs" {
		t.Fatalf("the restarted provider signs with %v, want k2-rs", kid)
	}
	for {
		_, err := check(a, t2)
		if err == nil {
			break
		}
		if time.Since(rotated) > 5*time.Second {
			t.Fatalf("rotated key still refused %v after the rotation: %v", time.Since(rotated), err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("rotated key accepted %v after the provider came back", time.Since(rotated).Round(time.Millisecond))
	if _, err := check(a, t2es); err != nil {
		t.Errorf("rotated ES256 key: %v", err)
	}
	if _, err := check(a, t1); err != nil {
		t.Errorf("token of the previous key, still published: %v", err)
	}

	// Outage.
	p.Stop()
	clk.Add(4 * time.Second) // past the unknown-kid interval
	if _, err := check(a, t2); err != nil {
		t.Errorf("known key while the provider is down: %v", err)
	}
	k3 := newKeys(t, 2, "k3")
	forged := mint(t, k3[0], map[string]any{"iss": p.Issuer, "sub": "svc", "client_id": "svc", "aud": resRS, "exp": time.Now().Add(time.Hour).Unix()})
	_, err := check(a, forged)
	if !identity.IsUnavailable(err) || errors.Is(err, identity.ErrUnknownKey) {
		t.Fatalf("unknown kid while the provider is down: got %v, want unavailable (503)", err)
	}
	if ra := identity.RetryAfter(err, 0); ra <= 0 {
		t.Errorf("no Retry-After for the outage: %v", err)
	}
	if st := a.KeyStatus(); len(st) != 1 || st[0].LastError == "" || !st[0].Ready {
		t.Errorf("KeyStatus during the outage: %+v", st)
	}

	// Back, rotated again (k1 retired): the new key is accepted, and a kid
	// the provider does not publish is now a plain 401.
	p.Boot(append(append([]signingKey{}, k3...), k2...))
	clk.Add(4 * time.Second)
	t3 := p.ClientCredentials(t, resEd)
	if _, err := check(a, t3); err != nil {
		t.Fatalf("after the outage, rotated key: %v", err)
	}
	clk.Add(4 * time.Second)
	stranger := mint(t, signingKey{"nobody", "ES256", newKeys(t, 0, "x")[1].Key}, map[string]any{"iss": p.Issuer, "sub": "svc", "client_id": "svc", "aud": resRS, "exp": time.Now().Add(time.Hour).Unix()})
	if _, err := check(a, stranger); !errors.Is(err, identity.ErrUnknownKey) {
		t.Errorf("unpublished kid with the provider up: got %v, want ErrUnknownKey", err)
	}
	if st := a.KeyStatus(); st[0].LastError != "" {
		t.Errorf("KeyStatus after recovery: %+v", st)
	}
}

// mint signs claims as the provider would, with a key it may not publish.
func mint(t *testing.T, k signingKey, claims map[string]any) string {
	return oidctest.SignJWS(t, jose.SignatureAlgorithm(k.Alg), k.Key, claims, map[jose.HeaderKey]any{"kid": k.ID, "typ": "at+jwt"})
}
