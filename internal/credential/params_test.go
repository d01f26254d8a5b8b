package credential

import (
	mrand "math/rand/v2"
	"strings"
	"testing"
)

func TestRedactParamsCases(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"/api/healthz?access_token=01234567-89ab-4cde-8f01-23456789abcd", "/api/healthz?access_token=[REDACTED]"},
		{"https://app.example/cb?state=xyz&code=SplxlOBeZQQYbYS6WxSbIA", "https://app.example/cb?state=xyz&code=[REDACTED]"},
		{"https://app/cb?acc%65ss_tok%65n=S1&x=1", "https://app/cb?acc%65ss_tok%65n=[REDACTED]&x=1"},
		{"/r?next=%2Fcb%3Fcode%3DS2%26state%3D1&z=2", "/r?next=%2Fcb%3Fcode%3D[REDACTED]%26state%3D1&z=2"},
		{"/r?code=a%26b&z=2", "/r?code=[REDACTED]&z=2"},
		{"https://user:pw@host/x", "https://[REDACTED]@host/x"},
		{"/p;jsessionid=ABC", "/p;jsessionid=[REDACTED]"},
		{"token=x", "token=[REDACTED]"},
		{"alice@example.com", "alice@example.com"},
		{"/a//b@c", "/a//b@c"},
		{`Bearer realm="warden", error="invalid_token"`, `Bearer realm="warden", error="invalid_token"`},
		{"code=", "code="},
		{"code=[REDACTED]", "code=[REDACTED]"},
		{"https://x/?user[password]=S3", "https://x/?user[password]=[REDACTED]"},
	} {
		got, hit := RedactParams(c.in)
		if got != c.want || hit != (c.in != c.want) {
			t.Errorf("RedactParams(%q) = %q, %v; want %q", c.in, got, hit, c.want)
		}
	}
	for _, c := range []struct{ in, want string }{
		{"user:password@orders", "[REDACTED]@orders"},
		{"orders", "orders"},
		{"a@b@orders:8080", "[REDACTED]@orders:8080"},
		{"orders/x@y", "orders/x@y"},
	} {
		if got, _ := RedactHost(c.in); got != c.want {
			t.Errorf("RedactHost(%q) = %q; want %q", c.in, got, c.want)
		}
	}
}

// TestRedactParamsFastPath: RedactParams with its pre-checks answers as
// the model without them on strings drawn from names, separators and
// escapes, every run (FuzzRedactPlain does so for any input).
func TestRedactParamsFastPath(t *testing.T) {
	rng := mrand.New(mrand.NewPCG(7, 8))
	atoms := []string{"code", "Code", "x", "TOKEN", "api key", "=", "&", "?", "#", ";", ",", "/", "//", "@", ":", "%3D", "%26", "%2565", "%", "v", "[REDACTED]", " ", "\"", "\xff", "to\u212aen"}
	for range 20000 {
		var b strings.Builder
		for range rng.IntN(10) {
			b.WriteString(atoms[rng.IntN(len(atoms))])
		}
		s := b.String()
		got, hit := RedactParams(s)
		want, wantHit := redactParamsModel(s)
		if got != want || hit != wantHit {
			t.Fatalf("RedactParams(%q) = %q, %v; the model says %q, %v", s, got, hit, want, wantHit)
		}
		if again, hit2 := RedactParams(got); hit2 || again != got {
			t.Fatalf("not idempotent: %q -> %q -> %q", s, got, again)
		}
	}
}
