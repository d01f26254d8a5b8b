package identity

import (
	"context"
	"crypto"
	"errors"
	"maps"
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
	// authenticate-800 is the same with a token of about 800 bytes, the
	// size of the benchmark mix's (more claims, longer groups).
	c800 := is.Claims("bob", aud)
	c800["groups"] = []string{"admins", "ops", "orders-readers", "billing"}
	c800["scope"] = "orders:read orders:write invoices:read profile openid"
	c800["client_id"] = "orders-frontend-web-application"
	c800["amr"] = []string{"pwd", "mfa"}
	tok800 := is.Sign(b, c800)
	if n := len(tok800); n < 700 || n > 900 {
		b.Fatalf("token of %d bytes, want about 800", n)
	}
	b.Run("authenticate-800", func(b *testing.B) {
		in := Input{Authorization: Credential("Bearer " + tok800)}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := a.Authenticate(ctx, in); err != nil {
				b.Fatal(err)
			}
		}
	})
	// expired is a refusal the benchmark mix sends 5% of the time: a
	// well-signed token of the same size past its exp (+ skew).
	cexp := maps.Clone(c800)
	cexp["exp"] = time.Now().Add(-time.Hour).Unix()
	cexp["iat"] = time.Now().Add(-2 * time.Hour).Unix()
	cexp["nbf"] = cexp["iat"]
	tokExp := is.Sign(b, cexp)
	b.Run("expired", func(b *testing.B) {
		in := Input{Authorization: Credential("Bearer " + tokExp)}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := a.Authenticate(ctx, in); !errors.Is(err, ErrExpired) {
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
