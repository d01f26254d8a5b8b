package identity

import (
	"context"
	"crypto"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/wardenauthz/warden/identity/oidctest"
	"github.com/wardenauthz/warden/internal/testwait"
)

// BenchmarkVerify compares Warden's verification with go-oidc's own on the
// same RS256-2048 token: cached (hash + map), first (every pre-crypto check,
// signature, go-oidc, our claim checks; no cache), and go-oidc alone.
func BenchmarkVerify(b *testing.B) {
	is := oidctest.New(b)
	const aud = "api://orders"
	a, err := New(Config{Issuers: []IssuerConfig{{Name: "corp", Issuer: is.URL, Audiences: []string{aud}}}}, Options{})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a.Start(ctx)
	testwait.Until(b, 5*time.Second, "keys never fetched", func() bool { return len(a.NotReady()) == 0 })
	c := is.Claims("alice", aud)
	c["groups"] = []string{"admins", "ops"}
	c["scope"] = "orders:read orders:write"
	tok := is.Sign(b, c)
	iss := a.issuers[is.URL]

	b.Run("cached", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := a.verifyToken(ctx, tok); err != nil {
				b.Fatal(err)
			}
		}
	})
	// authenticate is the Check hot path for a cached Bearer JWT: the
	// header read, the cache hit and the binding check.
	b.Run("authenticate", func(b *testing.B) {
		in := Input{Authorization: Credential("Bearer " + tok)}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := a.Authenticate(ctx, in); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("first", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			p, err := preparse(tok, 8192)
			if err != nil {
				b.Fatal(err)
			}
			t, err := iss.verify(ctx, tok, p)
			if err != nil {
				b.Fatal(err)
			}
			principalOf(t)
		}
	})
	b.Run("go-oidc-alone", func(b *testing.B) {
		v := oidc.NewVerifier(is.URL, &oidc.StaticKeySet{PublicKeys: []crypto.PublicKey{is.Key("k1").Key.Public()}}, &oidc.Config{ClientID: aud})
		b.ReportAllocs()
		for b.Loop() {
			if _, err := v.Verify(ctx, tok); err != nil {
				b.Fatal(err)
			}
		}
	})
}
