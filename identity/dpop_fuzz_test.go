package identity

import (
	"strings"
	"testing"
)

// The form of a proof for POST https://api.example.com/orders/1 with an
// embedded P-256 jwk (its signature is not valid).
const seedProof = "eyJhbGciOiJFUzI1NiIsImp3ayI6eyJrdHkiOiJFQyIsImNydiI6IlAtMjU2IiwieCI6IjJKNlVSQnpSMDR5dEhVamdvVGVDSFRKU0VCQnZDWmNCX2pXOHdaQkRFRGsiLCJ5IjoiT1lBUUV1UHl1Y1hZWjJ1UDBWdmF0bEp6c2d1bXl0RnBsWWlfR0hEWXJRSSJ9LCJ0eXAiOiJkcG9wK2p3dCJ9.eyJhdGgiOiJ4IiwiaHRtIjoiUE9TVCIsImh0dSI6Imh0dHBzOi8vYXBpLmV4YW1wbGUuY29tL29yZGVycy8xIiwiaWF0IjoxNzAwMDAwMDAwLCJqdGkiOiJqIn0.c2ln"

// FuzzDPoPProof: the proof parser never panics, refuses everything over
// its bounds or with a comma (two headers), and what it accepts has a
// thumbprint and the claims it needs; htu normalisation is idempotent.
func FuzzDPoPProof(f *testing.F) {
	for _, s := range []string{seedProof, "", "a.b.c", "a.b.c,a.b.c", "eyJhbGciOiJub25lIn0.e30.", strings.Repeat("a", 5000)} {
		f.Add(s, "https://api.example.com/orders/1")
	}
	f.Add("", "HTTPS://API.example.com:443/a/../b/%7e%2f")
	f.Add("", "https://[::1]:8443/x")
	f.Add("", "https://u@h/x?y#z")
	f.Fuzz(func(t *testing.T, proof, htu string) {
		jkt, c, err := parseProof(proof, []string{"RS256", "ES256", "EdDSA"})
		if err == nil {
			if len(proof) > MaxProofBytes || strings.Contains(proof, ",") || len(jkt) != 43 ||
				c.htm == "" || c.htu == "" || c.jti == "" || len(c.jti) > maxJTIBytes || c.iat.IsZero() {
				t.Fatalf("accepted %q: %q %+v", proof, jkt, c)
			}
		}
		if n, ok := normalizeHTU(htu); ok {
			if n2, ok2 := normalizeHTU(n); !ok2 || n2 != n {
				t.Fatalf("normalizeHTU(%q) = %q, then %q %v", htu, n, n2, ok2)
			}
			if strings.ContainsAny(n, "?#") {
				t.Fatalf("normalizeHTU(%q) = %q", htu, n)
			}
		}
	})
}
