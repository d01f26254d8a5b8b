package identity

import "strings"

// XFCCURI returns the URI= value of the last (nearest-hop) element of an
// x-forwarded-client-cert header, "" when there is none. Values may be
// quoted; quoted commas and semicolons do not split.
func XFCCURI(h string) string {
	if len(h) > 16<<10 {
		return ""
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
		return "" // unbalanced quotes: not a header Envoy wrote
	}
	flushPair()
	elems = append(elems, pairs)
	uri := ""
	for _, kv := range elems[len(elems)-1] {
		k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if ok && strings.EqualFold(k, "URI") {
			if uri != "" {
				return "" // ambiguous
			}
			uri = v
		}
	}
	return uri
}
