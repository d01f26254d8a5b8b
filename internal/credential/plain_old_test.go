package credential

import (
	mrand "math/rand/v2"
	"strings"
	"testing"
)

// plainOld is plain as it was before it let long hex words through and
// took fewer branches (issue 18: every x-request-id, a UUID, took
// Redact's full path).
func plainOld(s string, path bool) bool {
	const maybe = percent | isE
	mask := byte(wordAnywhere)
	if path {
		mask = wordInPath
	}
	run := 0
	for i := 0; i < len(s); i++ {
		k := byteKind[s[i]]
		if k&maybe != 0 && (s[i] == '%' || i+1 < len(s) && (s[i+1] == 'y' || s[i+1] == 'w')) {
			return false
		}
		if k&mask == 0 {
			run = 0
		} else if run++; run >= 32 {
			return false
		}
	}
	return true
}

// TestPlainHexWords: strings of hex words (UUIDs, runs of 40 and 41
// digits, dashes anywhere) glued to other bytes: Redact with the new
// pre-check answers as the model without it, and the new pre-check passes
// whatever the old one passed.
func TestPlainHexWords(t *testing.T) {
	rng := mrand.New(mrand.NewPCG(3, 4))
	const hexAlpha = "0123456789abcdefABCDEF"
	const other = "-_/.~+=gzGZ:; \"%"
	hexWord := func() string {
		var b strings.Builder
		for range 1 + rng.IntN(4) {
			if b.Len() > 0 || rng.IntN(3) == 0 {
				b.WriteString(strings.Repeat("-", 1+rng.IntN(2)))
			}
			n := []int{8, 12, 32, 39, 40, 41, 42, 1 + rng.IntN(45)}[rng.IntN(8)]
			for range n {
				b.WriteByte(hexAlpha[rng.IntN(len(hexAlpha))])
			}
		}
		return b.String()
	}
	for range 100000 {
		var b strings.Builder
		for range 1 + rng.IntN(3) {
			if rng.IntN(2) == 0 {
				b.WriteString(hexWord())
			}
			for range rng.IntN(3) {
				b.WriteByte(other[rng.IntN(len(other))])
			}
		}
		s := b.String()
		for _, path := range []bool{false, true} {
			sameAsModel(t, s, path)
			if plainOld(s, path) && !plain(s, path) {
				t.Fatalf("plain(%q, %v) refuses what the old one passed", s, path)
			}
		}
	}
	for _, s := range []string{"6f1c2a8e-3b7d-4f0e-9a52-2d1f8c4b7e90", "req 6f1c2a8e-3b7d-4f0e-9a52-2d1f8c4b7e90 ok"} {
		if !plain(s, false) || !plain(s, true) {
			t.Errorf("plain(%q) = false: a UUID takes Redact's full path", s)
		}
	}
	for _, s := range []string{strings.Repeat("ab12", 10) + "c", "x-" + strings.Repeat("0", 41), strings.Repeat("a", 31) + "g"} {
		if plain(s, false) {
			t.Errorf("plain(%q) = true", s)
		}
	}
}
