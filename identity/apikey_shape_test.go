package identity

import (
	"math/rand/v2"
	"strings"
	"testing"
)

// looksLikeAPIKeyOriginal is looksLikeAPIKey as it was before it was made
// one byte search: strings.EqualFold at every offset, then strings.ToLower
// and splitAPIKey. It is the model the fast one is compared with.
func looksLikeAPIKeyOriginal(raw string) bool {
	if len(raw) >= len(apiKeyPrefix) && strings.EqualFold(raw[:len(apiKeyPrefix)], apiKeyPrefix) {
		return true
	}
	const n = len(apiKeyPrefix) + apiKeyIDLen + 1 + apiKeySecretLen
	for i := 0; i+n <= len(raw); i++ {
		if !strings.EqualFold(raw[i:i+len(apiKeyPrefix)], apiKeyPrefix) {
			continue
		}
		k := strings.ToLower(raw[i : i+n])
		if _, ok := splitAPIKey(k); ok {
			return true
		}
	}
	return false
}

// isToken68Original is isToken68 as it was before its table.
func isToken68Original(t string) bool {
	i := 0
	for i < len(t) {
		c := t[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-._~+/", c) >= 0 {
			i++
			continue
		}
		break
	}
	if i == 0 {
		return false
	}
	for ; i < len(t); i++ {
		if t[i] != '=' {
			return false
		}
	}
	return true
}

// sameShapeAnswers fails t when the fast readers and their originals
// disagree on s.
func sameShapeAnswers(t *testing.T, s string) {
	t.Helper()
	if got, want := looksLikeAPIKey(s), looksLikeAPIKeyOriginal(s); got != want {
		t.Fatalf("looksLikeAPIKey(%q) = %v, the original says %v", s, got, want)
	}
	if got, want := isToken68(s), isToken68Original(s); got != want {
		t.Fatalf("isToken68(%q) = %v, the original says %v", s, got, want)
	}
}

const shapeKey = "wk_0123456789abcdef_" + "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"

// FuzzTokenShape: looksLikeAPIKey and isToken68 answer as their originals
// (Unicode folding, per-byte branches) on every input.
func FuzzTokenShape(f *testing.F) {
	for _, s := range []string{
		"", "wk_", "WK_x", "wK", "abc", "abc==", "=", "a=b", "eyJ.eyJ.sig", "x" + shapeKey + "y",
		"x" + strings.ToUpper(shapeKey), "x" + strings.Replace(shapeKey, "k", "\u212a", 1),
		"x" + shapeKey[:len(shapeKey)-1], "x" + strings.Replace(shapeKey, "_0", "-0", 1),
		"a~b+c/d-e.f_g", "ab\u00e9", "a\x00",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) { sameShapeAnswers(t, s) })
}

// TestTokenShapeProperty compares the fast readers with their originals
// on generated tokens that hold whole keys, near misses (a digit, the
// separator or the length wrong; a Unicode look-alike of the prefix) and
// no key, at random offsets and in random case.
func TestTokenShapeProperty(t *testing.T) {
	r := rand.New(rand.NewPCG(18, 18))
	alphabet := "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~+/wWkK_"
	odd := []string{"\u212a", "\u0130", "\xff", "\u00e9", " ", ",", "\x00", "="}
	randomCase := func(s string) string {
		b := []byte(s)
		for i, c := range b {
			if r.IntN(2) == 0 {
				switch {
				case 'a' <= c && c <= 'z':
					b[i] = c - 32
				case 'A' <= c && c <= 'Z':
					b[i] = c + 32
				}
			}
		}
		return string(b)
	}
	oddRate := 0 // odd bytes in 1 of oddRate; 0: none (a token68)
	fill := func(n int) string {
		var b strings.Builder
		for range n {
			if oddRate > 0 && r.IntN(oddRate) == 0 {
				b.WriteString(odd[r.IntN(len(odd))])
				continue
			}
			b.WriteByte(alphabet[r.IntN(len(alphabet))])
		}
		return b.String()
	}
	key := func() string {
		const hex = "0123456789abcdef"
		b := []byte("wk_")
		for i := range apiKeyIDLen + 1 + apiKeySecretLen {
			if i == apiKeyIDLen {
				b = append(b, '_')
				continue
			}
			b = append(b, hex[r.IntN(16)])
		}
		return randomCase(string(b))
	}
	spoil := func(k string) string {
		switch r.IntN(6) {
		case 0: // a digit that is not hex
			i := 3 + r.IntN(len(k)-3)
			return k[:i] + string("gG_-.z"[r.IntN(6)]) + k[i+1:]
		case 1: // the separator
			return k[:19] + string("-.a0"[r.IntN(4)]) + k[20:]
		case 2: // one short
			return k[:len(k)-1]
		case 3: // a Unicode look-alike in the prefix or a digit
			i := r.IntN(len(k))
			return k[:i] + odd[r.IntN(len(odd))] + k[i+1:]
		case 4: // a prefix without the rest
			return k[:3+r.IntN(len(k)-3)]
		}
		return k + k[3:]
	}
	var keys, none, tok68, notTok68 int
	for range 20000 {
		oddRate = []int{0, 0, 40, 400}[r.IntN(4)]
		var s string
		switch r.IntN(4) {
		case 0:
			s = fill(r.IntN(200)) + key() + fill(r.IntN(200))
		case 1:
			s = fill(r.IntN(200)) + spoil(key()) + fill(r.IntN(200))
		case 2:
			s = fill(r.IntN(200)) + spoil(key()) + spoil(key()) + key()[:r.IntN(85)]
		default:
			s = fill(r.IntN(900))
		}
		if r.IntN(4) == 0 {
			s = strings.Trim(s, "=") + strings.Repeat("=", r.IntN(3))
		}
		sameShapeAnswers(t, s)
		if looksLikeAPIKeyOriginal(s) {
			keys++
		} else {
			none++
		}
		if isToken68Original(s) {
			tok68++
		} else {
			notTok68++
		}
	}
	// The generator must exercise both answers, or the comparison says little.
	if keys < 2000 || none < 2000 || tok68 < 2000 || notTok68 < 2000 {
		t.Fatalf("generated %d inputs with a key and %d without, %d token68 and %d not", keys, none, tok68, notTok68)
	}
}
