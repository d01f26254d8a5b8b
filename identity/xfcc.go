package identity

import "strings"

// XFCCURI returns the URI= value of the last (nearest-hop) element of an
// x-forwarded-client-cert header, "" when there is none. Values may be
// quoted; quoted commas and semicolons do not split.
func XFCCURI(h string) string {
	v, _ := XFCCField(h, "URI")
	return v
}

// XFCCField returns the value of key (any case) in the last (nearest-hop)
// element of an x-forwarded-client-cert header. ok is false when the key
// is absent, given twice in that element (ambiguous), or the header is
// malformed or over 16 KiB.
func XFCCField(h, key string) (string, bool) {
	if len(h) > 16<<10 {
		return "", false
	}
	var elems [][]string // elements of key=value pairs
	var pairs []string
	var cur strings.Builder
	quoted := false
	flushPair := func() {
		pairs = append(pairs, cur.String())
		cur.Reset()
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		switch {
		case c == '\\' && quoted && i+1 < len(h):
			i++
			cur.WriteByte(h[i])
		case c == '"':
			quoted = !quoted
		case c == ';' && !quoted:
			flushPair()
		case c == ',' && !quoted:
			flushPair()
			elems, pairs = append(elems, pairs), nil
		default:
			cur.WriteByte(c)
		}
	}
	if quoted {
		return "", false // unbalanced quotes: not a header Envoy wrote
	}
	flushPair()
	elems = append(elems, pairs)
	val, found := "", false
	for _, kv := range elems[len(elems)-1] {
		k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if ok && strings.EqualFold(k, key) {
			if found {
				return "", false // ambiguous
			}
			val, found = v, true
		}
	}
	return val, found
}
