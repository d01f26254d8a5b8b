// Package credential recognises values shaped like credentials, so that
// decision records can redact them wherever they appear (a header, a query
// parameter, a path segment, a context extension), not only under a
// credential-sounding name.
//
// The model. A value is cut into words: maximal runs of the base64 and
// base64url alphabets (A-Z a-z 0-9 - _ + / =) together with '.', '~' and
// percent escapes (%XX, read as the byte they encode). In a URL path a raw
// '/' ends a word (segments are words); elsewhere '/' belongs to the word
// (base64's standard alphabet), and a part with '/' is judged piece by
// piece and, when it does not read as a path, whole. A word is replaced
// whole by Redacted when one of its parts (the decoded word cut at '.',
// '~', after '=' padding, and at every character outside the two
// alphabets) is
//
//   - base64 JSON: at least 8 characters whose first 8 decode (in either
//     alphabet) to '{', optional white space and '"'. This is every JWS and
//     JWE header (eyJ...), AWS ALB's x-amzn-oidc-data, and other base64 JSON
//     assertions; a JWT is redacted however its dots fall, since any one
//     part starting a JSON object takes the whole word with it;
//   - long hex: only hex digits and '-', with more than 40 hex digits in a
//     row. A UUID (32), a Git SHA-1 (40), a Mongo ObjectId (24), a W3C
//     traceparent (32) survive; a SHA-256 in hex (64) does not;
//   - opaque: at least 32 characters, and somewhere in them 28 letters and
//     digits in a row (hex pieces of 8 to 40 digits between '-' and '_'
//     left out: "user-<uuid>" is an id) holding both letters and digits
//     and changing class (upper, lower, digit) at least 5 times in their
//     27 steps, or letters alone changing case at least 11 times. Random base64, base62 and base36 keys change class at about
//     every second character; words, slugs and dates rarely do
//     ("release-2024-v2-final-notes" changes 4 times in 24).
//
// Random 32-byte keys are found: all in hex and base64url, all but about
// 0.5% in standard base64 (those starting with '/' read as a path) and
// 1.5% in base32 (TestRandomKeysFound). Short ids (under 32 characters
// that are not base64 JSON) always survive.
// Known limits: a credential under 32 characters (unless base64 JSON), or
// a long one drawn from an alphabet with few digits (base32) whose class
// changes fall under the threshold, is not recognised by shape; the names
// redaction (policy) and not putting credentials in URLs remain the
// defences there.
package credential

import "strings"

// Redacted replaces a credential-looking word.
const Redacted = "[REDACTED]"

// Redact returns s with the values of credential-named parameters and URL
// userinfo replaced by Redacted (RedactParams), then every
// credential-looking word, and whether it replaced any. path says s is a
// URL path: a raw '/' then separates words.
func Redact(s string, path bool) (string, bool) {
	s, hit := RedactParams(s)
	if plain(s, path) {
		return s, hit
	}
	r, hitWords := redactWords(s, path)
	return r, hit || hitWords
}

// redactWords is Redact without its plain pre-check: every word looked
// at (the model plain is held to).
func redactWords(s string, path bool) (string, bool) {
	var b strings.Builder
	last := 0 // s[last:] is not written yet
	hit := false
	for i := 0; i < len(s); {
		if !wordByte(s[i], path) {
			i++
			continue
		}
		j := i
		for j < len(s) && wordByte(s[j], path) {
			j++
		}
		if looks(s[i:j], path) {
			if !hit {
				b.Grow(len(s))
				hit = true
			}
			b.WriteString(s[last:i])
			b.WriteString(Redacted)
			last = j
		}
		i = j
	}
	if !hit {
		return s, false
	}
	b.WriteString(s[last:])
	return b.String(), true
}

// plain reports, in one pass over s, that it holds nothing Redact replaces:
// no '%' (an escape may spell anything), no "ey" or "ew" (every base64 JSON
// part starts so: '{' is 'e' and the top of '"' or white space 'y' or 'w'),
// and no word of 32 bytes or more (the least a long-hex or opaque part
// needs) unless it is hex digits and '-' alone with at most 40 digits in a
// row: such a word is one part that is not base64 JSON (it has no 'y' or
// 'w') and reads as hex, redacted only past 40 digits in a row (a UUID,
// Envoy's x-request-id, is plain). The decision log redacts every string
// of every record; most are short and plain. It errs only towards the full
// model (a differential fuzz holds Redact equal to the model without it).
func plain(s string, path bool) bool {
	mask := byte(wordAnywhere)
	if path {
		mask = wordInPath
	}
	// In one word so far: run bytes, hexRun digits since its last '-',
	// and notHex set when one of them is neither a hex digit nor '-'.
	// Branches taken rarely (predicted), one pass.
	run, hexRun := 0, 0
	prev, notHex := byte(0), byte(0)
	for i := 0; i < len(s); i++ {
		k := byteKind[s[i]]
		if k&percent != 0 || prev&isE != 0 && k&isYW != 0 {
			return false
		}
		prev = k
		if k&mask == 0 {
			run, hexRun, notHex = 0, 0, 0
			continue
		}
		run++
		notHex |= k & nonHex
		if k&dash != 0 {
			hexRun = 0
		} else {
			hexRun++ // counts only while notHex is 0
		}
		if run >= 32 && (notHex != 0 || hexRun > 40) {
			return false
		}
	}
	return true
}

// byteKind is, for each byte, whether wordByte holds for it outside a path
// (wordAnywhere) and in one (wordInPath), and what plain looks for: '%',
// 'e', 'y' or 'w', a byte neither a hex digit nor '-' (nonHex), '-'.
var byteKind = func() (t [256]byte) {
	for c := range 256 {
		if wordByte(byte(c), false) {
			t[c] |= wordAnywhere
		}
		if wordByte(byte(c), true) {
			t[c] |= wordInPath
		}
		if unhex(byte(c)) < 0 && c != '-' {
			t[c] |= nonHex
		}
	}
	t['%'] |= percent
	t['e'] |= isE
	t['y'] |= isYW
	t['w'] |= isYW
	t['-'] |= dash
	return t
}()

const (
	wordAnywhere = 1 << iota
	wordInPath
	percent
	isE
	isYW
	nonHex
	dash
)

// Looks reports whether the whole of s is one credential-looking word (or
// holds one).
func Looks(s string) bool {
	_, hit := Redact(s, false)
	return hit
}

func alnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

// b64 is a character of either base64 alphabet (padding included).
func b64(c byte) bool {
	return alnum(c) || c == '-' || c == '_' || c == '+' || c == '/' || c == '='
}

func wordByte(c byte, path bool) bool {
	if c == '/' {
		return !path
	}
	return b64(c) || c == '.' || c == '~' || c == '%'
}

// looks decides one word.
func looks(w string, path bool) bool {
	if len(w) < 8 {
		return false
	}
	d := w
	if strings.IndexByte(w, '%') >= 0 {
		d = unescape(w)
	}
	for i := 0; i < len(d); {
		if !b64(d[i]) {
			i++
			continue
		}
		// A part ends after its padding: "token=eyJ..." is two parts.
		j := i
		for j < len(d) && b64(d[j]) && d[j] != '=' {
			j++
		}
		for j < len(d) && d[j] == '=' {
			j++
		}
		if part(d[i:j], path) {
			return true
		}
		i = j
	}
	return false
}

// unescape decodes the %XX escapes of s, however many times they were
// applied (%2565 is e), leaving malformed ones as they are: a decoded byte
// that completes an escape with the two before it is decoded again, so
// one pass reaches what decoding until nothing changes would, in time
// linear in s (each decoding shortens the output by two bytes).
func unescape(s string) string {
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		b = append(b, s[i])
		for n := len(b); n >= 3 && b[n-3] == '%' && unhex(b[n-2]) >= 0 && unhex(b[n-1]) >= 0; n = len(b) {
			b = append(b[:n-3], byte(unhex(b[n-2])<<4|unhex(b[n-1])))
		}
	}
	return string(b)
}

func unhex(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c-'a') + 10
	case 'A' <= c && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

// part decides one run of base64 characters. A '/' in it may be base64's
// or a path's: each '/'-separated piece is judged, and the whole too when
// it reads as base64 rather than a path (it does not start with '/', and
// has at most one '/' in 16 characters; random base64 has one in 64).
func part(p string, escapedSlash bool) bool {
	if len(p) < 8 {
		return false
	}
	if strings.IndexByte(p, '/') < 0 {
		return piece(p)
	}
	for q := range strings.SplitSeq(p, "/") {
		if piece(q) {
			return true
		}
	}
	// In a path every '/' left in a word was escaped (%2F): base64's.
	whole := escapedSlash || p[0] != '/' && strings.Count(p, "/")*8 <= len(p)
	return whole && (jsonB64(strings.TrimLeft(p, "/")) || opaque(strings.TrimRight(p, "=")))
}

func piece(p string) bool {
	if len(p) < 8 {
		return false
	}
	if jsonB64(p) {
		return true
	}
	core := strings.TrimRight(p, "=")
	// hex digits and '-' only: the longest run of digits decides
	onlyHex, run, longest := true, 0, 0
	for i := 0; i < len(core) && onlyHex; i++ {
		switch c := core[i]; {
		case '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F':
			run++
			longest = max(longest, run)
		case c == '-':
			run = 0
		default:
			onlyHex = false
		}
	}
	if onlyHex {
		return longest > 40
	}
	return opaque(core)
}

// opaque: some 28 letters and digits in a row (hex pieces of 8 to 40
// between '-' and '_' left out, so "user-<uuid>" is an id) hold both
// letters and digits and change class at least 5 times in their 27 steps,
// or letters alone changing case at least 11 times. '/' separates pieces
// too (a relative path's segments).
// A window, not the whole: a key glued to a long uniform run is found.
func opaque(core string) bool {
	if len(core) < 32 {
		return false
	}
	const win = 28
	var cls [win]byte // the window's classes, a ring
	n, changes, digits := 0, 0, 0
	for len(core) > 0 {
		i := strings.IndexAny(core, "-_/")
		piece := core
		if i >= 0 {
			piece, core = core[:i], core[i+1:]
		} else {
			core = ""
		}
		if 8 <= len(piece) && len(piece) <= 40 && hexOnly(piece) {
			continue
		}
		for j := 0; j < len(piece); j++ {
			k := class(piece[j])
			if k == 0 {
				continue
			}
			if n >= win { // char n-win leaves; n-win+1 is next to it
				if cls[n%win] != cls[(n+1)%win] {
					changes--
				}
				if cls[n%win] == 3 {
					digits--
				}
			}
			if n > 0 && cls[(n-1)%win] != k {
				changes++
			}
			cls[n%win] = k
			if k == 3 {
				digits++
			}
			n++
			if n >= win && (digits > 0 && digits < win && changes >= 5 || digits == 0 && changes >= 11) {
				return true
			}
		}
	}
	return false
}

func hexOnly(s string) bool {
	for i := 0; i < len(s); i++ {
		if unhex(s[i]) < 0 {
			return false
		}
	}
	return true
}

func class(c byte) byte {
	switch {
	case 'a' <= c && c <= 'z':
		return 1
	case 'A' <= c && c <= 'Z':
		return 2
	case '0' <= c && c <= '9':
		return 3
	}
	return 0
}

// jsonB64 reports whether p's first 8 characters decode, in either base64
// alphabet, to '{', optional white space and '"'.
func jsonB64(p string) bool {
	if len(p) < 8 { // a part with its leading '/'s trimmed may be shorter
		return false
	}
	var out [6]byte
	for g := 0; g < 2; g++ {
		var v uint32
		for k := 0; k < 4; k++ {
			d := b64val(p[g*4+k])
			if d < 0 {
				return false
			}
			v = v<<6 | uint32(d)
		}
		out[g*3], out[g*3+1], out[g*3+2] = byte(v>>16), byte(v>>8), byte(v)
	}
	if out[0] != '{' {
		return false
	}
	for _, c := range out[1:] {
		switch c {
		case ' ', '\t', '\r', '\n':
			continue
		case '"':
			return true
		}
		return false
	}
	return false
}

func b64val(c byte) int {
	switch {
	case 'A' <= c && c <= 'Z':
		return int(c - 'A')
	case 'a' <= c && c <= 'z':
		return int(c-'a') + 26
	case '0' <= c && c <= '9':
		return int(c-'0') + 52
	case c == '+' || c == '-':
		return 62
	case c == '/' || c == '_':
		return 63
	}
	return -1
}
