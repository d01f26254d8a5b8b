package credential

import (
	"crypto/rand"
	"crypto/sha512"
	"encoding/base32"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	mrand "math/rand/v2"
	"regexp"
	"strings"
	"testing"
)

// jwt is a compact JWS with a random payload and signature.
func jwt(t testing.TB) string {
	sig := sha512.Sum512([]byte(t.Name())) // fixed: the fuzz target must be deterministic
	enc := base64.RawURLEncoding
	return enc.EncodeToString([]byte(`{"alg":"ES256","typ":"JWT"}`)) + "." +
		enc.EncodeToString([]byte(`{"sub":"alice","iss":"https://idp.example.com","exp":1900000000}`)) + "." +
		enc.EncodeToString(sig[:])
}

// keys is deterministic: the table's "random" keys are the same every run.
var keys = mrand.NewChaCha8([32]byte{'w', 'a', 'r', 'd', 'e', 'n'})

func randB64(n int, enc *base64.Encoding) string {
	b := make([]byte, n)
	_, _ = keys.Read(b)
	return enc.EncodeToString(b)
}

func TestRedactCredentials(t *testing.T) {
	j := jwt(t)
	parts := strings.Split(j, ".")
	jwe := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"RSA-OAEP","enc":"A256GCM"}`)) + "." +
		randB64(256, base64.RawURLEncoding) + "." + randB64(12, base64.RawURLEncoding) + "." +
		randB64(100, base64.RawURLEncoding) + "." + randB64(16, base64.RawURLEncoding)
	for name, tc := range map[string]struct {
		in   string
		path bool
	}{
		"jws":                                   {j, false},
		"jwe":                                   {jwe, false},
		"bearer":                                {"Bearer " + j, false},
		"x-amzn-oidc-data":                      {j, false},
		"dpop":                                  {j, false},
		"jwt in path":                           {"/callback/" + j + "/done", true},
		"jwt dots moved":                        {parts[0][:9] + "." + parts[0][9:] + parts[1] + ".." + parts[2], false},
		"jwt percent-encoded dots":              {strings.ReplaceAll(j, ".", "%2E"), true},
		"jwt in path, every byte escaped twice": {"/orders/" + escapeAll(escapeAll(j)), true},
		"jwt escaped three times":               {escapeAll(escapeAll(escapeAll(j))), false},
		"jwt escaped twelve times":              {escapeTimes(j, 12), true},
		"std base64 json":                       {base64.StdEncoding.EncodeToString([]byte(`{ "user_id": "alice", "roles": ["admin"] }`)), false},
		"spaced json":                           {base64.StdEncoding.EncodeToString([]byte("{\n  \"a\": 1}")), false},
		"std base64 key":                        {randB64(32, base64.StdEncoding), false},
		"url base64 key":                        {randB64(32, base64.RawURLEncoding), false},
		"std base64 in path, escaped": {
			"/k/" + strings.NewReplacer("+", "%2B", "/", "%2F", "=", "%3D").Replace(randB64(33, base64.StdEncoding)), true,
		},
		"github pat":                 {"ghp_" + "aB3dE6fG9hJ2kL5mN8pQ1rS4tU7vW0xY3zA6", false},
		"hex sha256":                 {hex.EncodeToString(make32()), false},
		"long base36":                {"k3j9x2m8q4w7e1r5t6y0u2i8o3p7a9s4d6f1g5h2", false},
		"in query":                   {"a=1&assertion=" + j, false},
		"cookie pair":                {"sid=" + randB64(32, base64.RawURLEncoding) + "; theme=dark", false},
		"slack":                      {"xoxb-123456789012-1234567890123-" + "AbCdEfGhIjKlMnOpQrStUvWx9z8y", false},
		"aws secret":                 {"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", false},
		"base64 padded":              {randB64(30, base64.URLEncoding), false},
		"key glued to a uniform run": {randB64(32, base64.RawURLEncoding) + strings.Repeat("A", 300), false},
		"long base32":                {"JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXPJBSWY3DP", false},
	} {
		got, hit := Redact(tc.in, tc.path)
		if !hit || !strings.Contains(got, Redacted) {
			t.Errorf("%s: %q not redacted: %q", name, tc.in, got)
		}
	}
}

func make32() []byte {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return b
}

func TestRedactKeepsOrdinaryValues(t *testing.T) {
	for _, in := range []string{
		"",
		"/orders/123",
		"/orders/3f2b8c1e-9d4a-4b7e-8f6a-1c2d3e4f5a6b",                  // UUID
		"3F2B8C1E9D4A4B7E8F6A1C2D3E4F5A6B",                              // UUID without dashes
		"/repos/warden/commit/5d41402abc4b2a76b9719d911017c592aaf0c2d3", // Git SHA-1
		"507f1f77bcf86cd799439011",                                      // ObjectId
		"01ARZ3NDEKTSV4RRFFQ69G5FAV",                                    // ULID
		"/blog/release-2024-v2-final-notes-for-customers",
		"/api/v1/users/alice/orders/2024-11-29",
		"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
		"orders.orders.svc.cluster.local:8080",
		"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
		"gzip, deflate, br",
		"en-GB,en;q=0.9",
		"spiffe://cluster.local/ns/orders/sa/frontend",
		"1f3a5c7e9b2d4f6a",                                        // short hex id
		"a1b2c3d4-e5f6-7890-abcd-ef1234567890",                    // UUID
		"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", // traceparent
		"getUserAccountSettingsByIdentifierName",
		"Order::\"/orders/42\"",
		"eyJ",
		"user-3f2b8c1e-9d4a-4b7e-8f6a-1c2d3e4f5a6b",
		"/customers/ord_3f2b8c1e9d4a4b7e8f6a1c2d3e4f5a6b/items",
		"orders/3f2b8c1e-9d4a-4b7e-8f6a-1c2d3e4f5a6b/items",
		"/catalog/search/0" + strings.Repeat("x", 100),
		"/builds/version-1-2-3-build-20241129-release-candidate-final-linux-amd64",
	} {
		for _, path := range []bool{false, true} {
			if got, hit := Redact(in, path); hit || got != in {
				t.Errorf("Redact(%q, %v) = %q: an ordinary value was redacted", in, path, got)
			}
		}
	}
}

// shapeJWS is the suite-wide secret scan's shape of a JWS (internal/secretscan).
var shapeJWS = regexp.MustCompile(`eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.`)

// FuzzRedact holds the model's invariants: redaction is idempotent, leaves
// nothing a second pass would take, never grows a value beyond one marker
// per input byte, and a real JWT placed anywhere in the input, whatever
// surrounds it, does not survive.
func FuzzRedact(f *testing.F) {
	f.Add("Bearer x", "/p/", byte('.'), false)
	f.Add("a=", "&b=1", byte('&'), false)
	f.Add("", "", byte('/'), true)
	f.Add("eyJ", "x", byte('%'), true)
	f.Add("/callback/", "/done", byte('~'), true)
	j := jwt(f)
	f.Fuzz(func(t *testing.T, prefix, suffix string, cut byte, path bool) {
		for _, in := range []string{prefix + suffix, prefix + j + suffix} {
			got, hit := Redact(in, path)
			if !hit && got != in {
				t.Fatalf("changed without a hit: %q -> %q", in, got)
			}
			again, hit2 := Redact(got, path)
			if hit2 || again != got {
				t.Fatalf("not idempotent: %q -> %q -> %q", in, got, again)
			}
		}
		got, _ := Redact(prefix+j+suffix, path)
		if strings.Contains(got, j[10:40]) || strings.Contains(got, j[len(j)-30:]) {
			t.Fatalf("JWT survived in %q", got)
		}
		if shapeJWS.MatchString(got) && !shapeJWS.MatchString(prefix) && !shapeJWS.MatchString(suffix) {
			t.Fatalf("a JWS shape survived: %q", got)
		}
		// The JWT cut in two by any byte: the claims and signature on
		// either side do not survive unless under 48 characters of them
		// are there (a fragment of the header alone is no secret).
		k := 9 + int(cut)%(len(j)-18)
		got, _ = Redact(prefix+j[:k]+string(cut)+j[k:]+suffix, path)
		dot := strings.IndexByte(j, '.') + 1
		for _, side := range []string{j[dot:max(k, dot)], j[max(k, dot):]} {
			if len(side) < 48 {
				continue
			}
			for w := 0; w+24 <= len(side); w += 8 {
				win := side[w : w+24]
				if strings.Contains(got, win) && !strings.Contains(prefix+suffix, win) {
					t.Fatalf("%q of the JWT survived a cut at %d by %q: %q", win, k, cut, got)
				}
			}
		}
	})
}

// BenchmarkRedact: the strings of a typical record (clip runs it on each).
func BenchmarkRedact(b *testing.B) {
	vals := []string{"/v1/orders/3f2b8c1e-9d4a-4b7e-8f6a-1c2d3e4f5a6b/items", "api.example.com", "5d41402abc4b2a76b9719d911017c592", `User::"corp|alice"`, `Action::"GET /v1/orders/{id}"`}
	b.ReportAllocs()
	for b.Loop() {
		for i, v := range vals {
			_, _ = Redact(v, i == 0)
		}
	}
}

// TestRandomKeysFound: the share of random 32-byte keys, in each base64
// alphabet, in hex and in base32, that the model misses (documented in the
// package).
func TestRandomKeysFound(t *testing.T) {
	// per thousand: standard base64 starting with '/' (1 in 64) reads as
	// an absolute path; base32's few digits change class less
	limits := map[string]int{"std": 10, "url": 1, "hex": 1, "base32": 30}
	for name, enc := range map[string]func([]byte) string{
		"std":    base64.StdEncoding.EncodeToString,
		"url":    base64.RawURLEncoding.EncodeToString,
		"hex":    hex.EncodeToString,
		"base32": func(b []byte) string { return strings.TrimRight(base32.StdEncoding.EncodeToString(b), "=") },
	} {
		missed := 0
		const n = 20000
		for range n {
			b := make([]byte, 32)
			_, _ = rand.Read(b)
			if !Looks(enc(b)) {
				missed++
			}
		}
		t.Logf("%s: %d of %d missed", name, missed, n)
		if missed*1000 > n*limits[name] {
			t.Errorf("%s: %d of %d random 32-byte keys missed, over %d per thousand", name, missed, n, limits[name])
		}
	}
}

func sameAsModel(t *testing.T, s string, path bool) {
	t.Helper()
	got, hit := Redact(s, path)
	p, paramHit := redactParamsModel(s)
	want, wantHit := redactWords(p, path)
	wantHit = wantHit || paramHit
	if got != want || hit != wantHit {
		t.Fatalf("Redact(%q, %v) = %q, %v; the model says %q, %v", s, path, got, hit, want, wantHit)
	}
}

// FuzzRedactPlain: Redact with its plain pre-checks (and RedactParams
// with its own) answers as the model without them, for every input (a miss would leak a secret into the logs).
func FuzzRedactPlain(f *testing.F) {
	for _, s := range []string{"", "eyJhbGciOi", "ewogICJhIjog", "%65yJhbGciOiJIUzI1NiJ9", "/v1/orders/42", strings.Repeat("a1B", 11),
		"5d41402abc4b2a76b9719d911017c592", "x-eyJ0eXAiOiJKV1Qi", "/a/" + strings.Repeat("Zq9", 12) + "/b", "user-6f1c2a8e-3b7d-4f0e-9a52-2d1f8c4b7e90"} {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, s string, path bool) {
		sameAsModel(t, s, path)
		if len(s) <= 256 {
			// the same bytes, repeated to reach the long-word bounds
			sameAsModel(t, s+s+s, path)
		}
	})
}

// TestRedactPlainRandom: the differential test on strings drawn near the
// pre-check's edges (words of 31 to 33 bytes, "ey"/"ew" and escapes placed
// anywhere), every run.
func TestRedactPlainRandom(t *testing.T) {
	rng := mrand.New(mrand.NewPCG(1, 2))
	const alpha = "abcdefwyeyEY0123456789AZ-_+/=.~%%2F:;, {}\"\t"
	j := jwt(t)
	for range 200000 {
		n := rng.IntN(70)
		b := make([]byte, n)
		for i := range b {
			b[i] = alpha[rng.IntN(len(alpha))]
		}
		s := string(b)
		switch rng.IntN(6) {
		case 0:
			k := rng.IntN(n + 1)
			s = s[:k] + j[:8+rng.IntN(len(j)-8)] + s[k:]
		case 1:
			s = strings.Repeat(randB64(8, base64.RawURLEncoding)[:4], 7+rng.IntN(3)) + s
		}
		sameAsModel(t, s, false)
		sameAsModel(t, s, true)
	}
}

// TestRedactShortAfterSlash: a path word whose escaped slashes leave under
// 8 characters once trimmed ("/%2Fabcdefg": the part "/abcdefg") is judged,
// not a panic (the decision log's goroutine redacts every request path: a
// panic there ended the process).
func TestRedactShortAfterSlash(t *testing.T) {
	for _, s := range []string{"/%2Fabcdefg", "/%2F%2Fabcdefg", "%2F%2F%2Fabcdefg", "/x/%2fabcdefg/y"} {
		for _, path := range []bool{true, false} {
			if got, hit := Redact(s, path); hit || got != s {
				t.Errorf("Redact(%q, %v) = %q, %v; want it unchanged", s, path, got, hit)
			}
		}
	}
}

// escapeAll writes every byte of s as %XX.
func escapeAll(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		fmt.Fprintf(&b, "%%%02X", s[i])
	}
	return b.String()
}

// escapeTimes escapes every byte of s, then the escapes' % signs n-1 times
// more (%41, %2541, %252541, ...): each level two bytes longer, not three
// times, as a proxy escaping a path again writes it.
func escapeTimes(s string, n int) string {
	s = escapeAll(s)
	for range n - 1 {
		s = strings.ReplaceAll(s, "%", "%25")
	}
	return s
}
