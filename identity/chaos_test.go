package identity_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wardenauthz/warden/identity"
	"github.com/wardenauthz/warden/identity/oidctest"
)

// TestJWKSFaults: with the JWKS endpoint down, slow, hanging, or answering
// garbage, tokens of cached keys keep working; tokens of unknown keys are
// refused as unavailable (503 with Retry-After: Warden cannot know whether
// the provider rotated) without waiting past the caller's deadline; a bad
// answer never replaces good keys; and a flood of concurrent unknown key ids
// costs at most one fetch per unknown-kid interval.
func TestJWKSFaults(t *testing.T) {
	for _, fault := range []struct {
		name string
		set  func(is *oidctest.Issuer)
	}{
		{"down", func(is *oidctest.Issuer) { is.SetDown(true) }},
		{"slow", func(is *oidctest.Issuer) { is.SetDelay(3 * time.Second) }},
		{"hanging", func(is *oidctest.Issuer) { is.SetDelay(time.Hour) }},
		{"not JSON", func(is *oidctest.Issuer) { is.SetGarbage([]byte("<html>502 Bad Gateway</html>")) }},
		{"wrong shape", func(is *oidctest.Issuer) { is.SetGarbage([]byte(`{"keys":"none"}`)) }},
		{"no keys", func(is *oidctest.Issuer) { is.SetGarbage([]byte(`{"keys":[]}`)) }},
		{"private and broken keys", func(is *oidctest.Issuer) {
			is.SetGarbage([]byte(`{"keys":[{"kty":"RSA","kid":"k1","n":"AQAB","e":"AQAB"},{"kty":"oct","kid":"k2","k":"c2VjcmV0"}]}`))
		}},
		{"oversized", func(is *oidctest.Issuer) {
			is.SetGarbage([]byte(`{"keys":[],"pad":"` + strings.Repeat("a", 2<<20) + `"}`))
		}},
	} {
		t.Run(fault.name, func(t *testing.T) {
			is := oidctest.New(t)
			a, clk := newAuth(t, is)
			valid := is.Sign(t, is.Claims("alice", aud))
			if _, err := a.Authenticate(context.Background(), bearer(valid)); err != nil {
				t.Fatal(err)
			}
			fault.set(is)
			clk.Add(4 * time.Second) // past the unknown-kid interval: the next unknown kid may fetch
			base := is.Fetches()
			var wg sync.WaitGroup
			for i := range 50 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					tok := oidctest.SignWith(t, oidctest.RSAKey(fmt.Sprintf("unknown-%d", i), 1), is.Claims("mallory", aud), nil)
					ctx, cancel := context.WithTimeout(context.Background(), 250*time.Millisecond) // Envoy's timeout
					defer cancel()
					start := time.Now()
					_, err := a.Authenticate(ctx, bearer(tok))
					if !identity.IsUnavailable(err) || errors.Is(err, identity.ErrUnknownKey) {
						t.Errorf("unknown kid %d: got %v, want unavailable", i, err)
					}
					if ra := identity.RetryAfter(err, 0); ra <= 0 || ra > 3*time.Second {
						t.Errorf("unknown kid %d: Retry-After %v", i, ra)
					}
					if took := time.Since(start); took > time.Second {
						t.Errorf("unknown kid %d took %v", i, took)
					}
				}()
			}
			wg.Wait()
			// A new token of the cached key (not in the verified-token cache).
			fresh := is.Sign(t, is.Claims("bob", aud))
			if _, err := a.Authenticate(context.Background(), bearer(fresh)); err != nil {
				t.Fatalf("cached key after the fault: %v", err)
			}
			if got := is.Fetches() - base; got > 1 {
				t.Errorf("fetches during the fault: %d, want at most 1", got)
			}
		})
	}
}
