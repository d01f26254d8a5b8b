package identity

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/wardenauthz/warden/identity/oidctest"
	"github.com/wardenauthz/warden/internal/testclock"
	"github.com/wardenauthz/warden/internal/testwait"
)

// expiredTestAuth is an Authenticator of is on clk, started and ready.
func expiredTestAuth(t *testing.T, is *oidctest.Issuer, clk *testclock.Clock) *Authenticator {
	t.Helper()
	a, err := New(Config{Issuers: []IssuerConfig{{Name: "corp", Issuer: is.URL, Audiences: []string{"api"}}}}, Options{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	a.Start(ctx)
	testwait.Until(t, 5*time.Second, "keys never fetched", func() bool { return len(a.NotReady()) == 0 })
	return a
}

// unsigned is a compact JWS of claims with a signature that verifies
// under no key: its claims are judged before its signature.
func unsigned(t *testing.T, claims map[string]any) string {
	t.Helper()
	p, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"RS256","typ":"at+jwt","kid":"k1"}`)) + "." + enc(p) + "." + enc([]byte(strings.Repeat("s", 256)))
}

// answer is what Authenticate said, for comparing two Authenticators.
func answer(id Identity, err error) string {
	if err != nil {
		var ch *DPoPChallenge
		return fmt.Sprintf("refused %T %q challenge=%v expired=%v", err, err.Error(), errors.As(err, &ch), errors.Is(err, ErrExpired))
	}
	return fmt.Sprintf("%v %s %v %s", id.Kind, id.ID, id.Groups, id.Credential)
}

// TestExpiredCacheAgainstFullPath: an Authenticator that remembers expired
// tokens answers every request exactly as its twin without that cache —
// the same refusal (type, message, DPoP challenge) or the same identity —
// while the clock jumps forward and back across the tokens' exp, nbf and
// iat, for valid, expired, not yet valid, future-issued, wrong-audience,
// unknown-issuer and badly signed tokens, presented as Bearer and DPoP.
func TestExpiredCacheAgainstFullPath(t *testing.T) {
	is := oidctest.New(t)
	t0 := time.Now().Truncate(time.Second)
	clk := testclock.New(t0)
	a := expiredTestAuth(t, is, clk)
	twin := expiredTestAuth(t, is, clk)
	twin.expired = nil

	r := rand.New(rand.NewPCG(18, 3))
	offsets := []time.Duration{-3 * time.Hour, -time.Hour, -31 * time.Second, -30 * time.Second, -29 * time.Second, -time.Second, 0, time.Second, 29 * time.Second, 31 * time.Second, time.Hour}
	at := func(d time.Duration) int64 { return t0.Add(d).Unix() }
	var toks []string
	for i := range 40 {
		c := map[string]any{"iss": is.URL, "sub": fmt.Sprint("user-", i), "aud": "api", "exp": at(offsets[r.IntN(len(offsets))]), "jti": fmt.Sprint("j", i)}
		if r.IntN(2) == 0 {
			c["nbf"] = at(offsets[r.IntN(len(offsets))])
		}
		if r.IntN(2) == 0 {
			c["iat"] = at(offsets[r.IntN(len(offsets))])
		}
		switch r.IntN(8) {
		case 0:
			c["aud"] = "other"
		case 1:
			c["iss"] = "https://unknown.example"
		case 2:
			c["sub"] = 7 // not a string
		}
		if r.IntN(4) == 0 {
			toks = append(toks, unsigned(t, c))
		} else {
			toks = append(toks, is.Sign(t, c))
		}
	}
	ctx := context.Background()
	var hits, hitsUndone int
	cached := map[string]bool{}
	for range 3000 {
		clk.Set(t0.Add(time.Duration(r.Int64N(int64(8*time.Hour))) - 4*time.Hour).Add(time.Duration(r.IntN(3)-1) * 30 * time.Second))
		tok := toks[r.IntN(len(toks))]
		scheme := []string{"Bearer ", "DPoP "}[r.IntN(2)]
		in := Input{Authorization: Credential(scheme + tok)}
		hit := a.expired.expired(hashToken(tok), clk.Now())
		got := answer(a.Authenticate(ctx, in))
		want := answer(twin.Authenticate(ctx, in))
		if got != want {
			t.Fatalf("at t0%+v, %s%s…: with the expired cache %s, without %s", clk.Now().Sub(t0), scheme, tok[:20], got, want)
		}
		if hit {
			hits++
		}
		if cached[tok] && !hit && !strings.Contains(got, "expired=true") {
			hitsUndone++ // remembered as expired, the clock set back before exp + skew
		}
		if strings.Contains(got, "expired=true") {
			cached[tok] = true
		}
	}
	// The run must have answered from the cache, and set the clock back
	// under remembered tokens, or the comparison says little.
	if hits < 300 || hitsUndone < 30 {
		t.Fatalf("%d answers from the expired cache, %d remembered tokens judged anew after the clock went back", hits, hitsUndone)
	}
}

// TestExpiredCacheHoldsOnlyExpiry: an expired token is remembered and its
// second refusal is the same error value; refusals that time, keys or
// discovery can undo (not yet valid, issued in the future, unknown key or
// bad signature, unknown issuer) and the others (audience, claims) are
// not remembered.
func TestExpiredCacheHoldsOnlyExpiry(t *testing.T) {
	is := oidctest.New(t)
	t0 := time.Now().Truncate(time.Second)
	clk := testclock.New(t0)
	a := expiredTestAuth(t, is, clk)
	ctx := context.Background()
	base := map[string]any{"iss": is.URL, "sub": "alice", "aud": "api", "exp": t0.Add(time.Hour).Unix()}
	with := func(k string, v any) map[string]any {
		c := maps.Clone(base)
		c[k] = v
		return c
	}

	expired := is.Sign(t, with("exp", t0.Add(-time.Hour).Unix()))
	_, first := a.Authenticate(ctx, Input{Authorization: Credential("Bearer " + expired)})
	if first != ErrExpired || !a.expired.expired(hashToken(expired), clk.Now()) {
		t.Fatalf("expired token: %v, remembered %v", first, a.expired.expired(hashToken(expired), clk.Now()))
	}
	_, again := a.Authenticate(ctx, Input{Authorization: Credential("Bearer " + expired)})
	if again != first {
		t.Fatalf("second refusal %v (%T), first %v", again, again, first)
	}
	_, dpop := a.Authenticate(ctx, Input{Authorization: Credential("DPoP " + expired)})
	var ch *DPoPChallenge
	if !errors.As(dpop, &ch) || ch.Err != ErrExpired || ch.Algs != nil || dpop.Error() != ErrExpired.Error() {
		t.Fatalf("DPoP presentation of a remembered expired token: %#v", dpop)
	}

	for _, c := range []struct {
		name string
		tok  string
		want error
	}{
		{"not yet valid", is.Sign(t, with("nbf", t0.Add(time.Hour).Unix())), ErrNotYetValid},
		{"issued in the future", is.Sign(t, with("iat", t0.Add(time.Hour).Unix())), ErrIssuedInFuture},
		{"bad signature", unsigned(t, base), ErrSignature},
		{"unknown issuer", is.Sign(t, with("iss", "https://unknown.example")), ErrUnknownIssuer},
		{"audience", is.Sign(t, with("aud", "other")), ErrAudience},
		{"claims", is.Sign(t, with("sub", 7)), ErrClaims},
	} {
		_, err := a.Authenticate(ctx, Input{Authorization: Credential("Bearer " + c.tok)})
		if err == nil || errors.Is(err, ErrExpired) {
			t.Fatalf("%s: %v", c.name, err)
		}
		if !errors.Is(err, c.want) && !errors.Is(err, ErrUnknownKey) {
			t.Errorf("%s: got %v, want %v", c.name, err, c.want)
		}
		if a.expired.expired(hashToken(c.tok), clk.Now().Add(100*time.Hour)) {
			t.Errorf("%s: remembered as expired", c.name)
		}
	}
}

// TestExpiredCacheBounded: a flood of distinct expired tokens keeps at
// most expiredSlots of them, and the latest ones are answered from it.
func TestExpiredCacheBounded(t *testing.T) {
	is := oidctest.New(t)
	clk := testclock.New(time.Now())
	a := expiredTestAuth(t, is, clk)
	ctx := context.Background()
	var last string
	for i := range 3 * expiredSlots {
		last = unsigned(t, map[string]any{"iss": is.URL, "sub": "alice", "aud": "api", "exp": clk.Now().Add(-time.Hour).Unix(), "jti": fmt.Sprint(i)})
		if _, err := a.Authenticate(ctx, Input{Authorization: Credential("Bearer " + last)}); err != ErrExpired {
			t.Fatalf("token %d: %v", i, err)
		}
	}
	held := 0
	for i := range a.expired.slots {
		if a.expired.slots[i].Load() != nil {
			held++
		}
	}
	if held > expiredSlots || held < expiredSlots/2 {
		t.Fatalf("%d slots hold a token after %d expired tokens", held, 3*expiredSlots)
	}
	if !a.expired.expired(hashToken(last), clk.Now()) {
		t.Fatal("the latest expired token is not remembered")
	}
}
