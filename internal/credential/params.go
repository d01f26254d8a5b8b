package credential

import (
	"slices"
	"strings"
)

// The parameters model. Besides credential-looking words (Redact's shape
// model), a string may carry a credential under its name: a URL or path
// with a query (a referer, Envoy's x-envoy-original-path, a redirect
// target inside another parameter), a form body, a header combining
// several. RedactParams finds them in any string:
//
//   - The string is read decoded: every %XX escape, however many times it
//     was applied (%253D is '='), is the byte it encodes; each decoded byte
//     keeps the depth of escaping it came from (0 raw, 1 for %XX, ...).
//   - A parameter is name=value. Its name runs back from the '=' to the
//     start of the string or a separator (? & ; # , = / \ white space
//     " ' < > ( ) { }); a name SensitiveName takes (the list the request's
//     own query and headers are redacted by in a decision record) has its
//     value replaced by Redacted. The value runs to the first & or #, white
//     space, " ' < or > escaped no more deeply than the '=' (a raw & ends a
//     raw parameter's value, not an escaped %26 inside it; an escaped
//     query's %26 ends its own value), or the end of the string. An empty
//     value is left empty; a value already Redacted is not a hit.
//   - Userinfo: after "//" at the start of the string or after : = white
//     space " ' < ( , ? & ; or #, an authority runs to the first / ? # \
//     white space " ' < or > (escaped no more deeply than the "//"); when
//     it holds '@', all before its last '@' (user and password) is
//     Redacted. RedactHost does the same for a string that is a host
//     (a record's request host, a Host-like header): all before its last
//     '@' ahead of any / ? or #.
//
// It errs towards redacting: a parameter-like text in a value ("q=a%26code%3Dx")
// loses its value too.

// SensitiveName reports whether a header or query parameter name looks like
// it carries a credential: such values never reach a decision record.
func SensitiveName(name string) bool {
	n := strings.ToLower(name)
	if n == "code" || n == "sig" || n == "dpop" { // OAuth codes, signed URLs, DPoP proofs
		return true
	}
	for _, s := range sensitiveParts {
		if strings.Contains(n, s) {
			return true
		}
	}
	return false
}

var sensitiveParts = []string{"auth", "key", "token", "secret", "passw", "session", "cookie", "signature", "credential", "jwt", "assertion", "oidc", "saml"}

// RedactParams returns s with the values of credential-named parameters
// and URL userinfo replaced by Redacted (the parameters model), and whether
// it replaced any.
func RedactParams(s string) (string, bool) {
	if !paramsMaybe(s) {
		return s, false
	}
	if strings.IndexByte(s, '%') < 0 && strings.IndexByte(s, '@') < 0 && !sensitivePair(s) {
		return s, false // no escape, no userinfo, no credential name before an '='
	}
	return redactParamsModel(s)
}

// redactParamsModel is RedactParams without its pre-checks: every string
// decoded and looked at (a differential test holds the two equal).
func redactParamsModel(s string) (string, bool) {
	d := decodeDepth(s)
	var spans []span
	spans = d.params(spans)
	spans = d.userinfo(spans)
	return d.apply(s, spans)
}

// RedactHost returns s, a host (or host:port), with userinfo before its
// last '@' replaced by Redacted, then with RedactParams applied, and
// whether it replaced any.
func RedactHost(s string) (string, bool) {
	hit := false
	if strings.IndexByte(s, '@') >= 0 || strings.Contains(s, "%") {
		d := decodeDepth(s)
		if sp, ok := d.authority(0, 0); ok {
			s, hit = d.apply(s, []span{sp})
		}
	}
	r, hit2 := RedactParams(s)
	return r, hit || hit2
}

// sensitivePair reports, without allocating unless a name has upper
// case, whether some '=' of s (read raw) follows a name SensitiveName
// takes: a superset of what params finds when s has no escape.
func sensitivePair(s string) bool {
	for k := 0; k < len(s); k++ {
		if s[k] != '=' {
			continue
		}
		j := k
		for j > 0 && !nameSep(s[j-1]) {
			j--
		}
		if j < k && SensitiveName(s[j:k]) {
			return true
		}
	}
	return false
}

// paramsMaybe: s holds '=', '@' or '%' (an escape may spell either).
func paramsMaybe(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '=' || c == '@' || c == '%' {
			return true
		}
	}
	return false
}

// decoded is a string read with its escapes decoded: b[i] came from
// s[at[i]:at[i+1]] (at[len(b)] is len(s)), escaped dep[i] times.
type decoded struct {
	b   []byte
	at  []int
	dep []uint8
}

func decodeDepth(s string) *decoded {
	d := &decoded{b: make([]byte, 0, len(s)), at: make([]int, 0, len(s)+1), dep: make([]uint8, 0, len(s))}
	for i := 0; i < len(s); i++ {
		d.b, d.at, d.dep = append(d.b, s[i]), append(d.at, i), append(d.dep, 0)
		for n := len(d.b); n >= 3 && d.b[n-3] == '%' && unhex(d.b[n-2]) >= 0 && unhex(d.b[n-1]) >= 0; n = len(d.b) {
			dep := max(d.dep[n-3], d.dep[n-2], d.dep[n-1])
			if dep < 255 {
				dep++
			}
			d.b = append(d.b[:n-3], byte(unhex(d.b[n-2])<<4|unhex(d.b[n-1])))
			d.at, d.dep = d.at[:n-2], append(d.dep[:n-3], dep)
		}
	}
	d.at = append(d.at, len(s))
	return d
}

// span is a range of decoded bytes to replace.
type span struct{ from, to int }

func nameSep(c byte) bool {
	switch c {
	case '?', '&', ';', '#', ',', '=', '/', '\\', ' ', '\t', '\r', '\n', '"', '\'', '<', '>', '(', ')', '{', '}':
		return true
	}
	return c < 0x20
}

func valueEnd(c byte) bool {
	switch c {
	case '&', '#', ' ', '\t', '\r', '\n', '"', '\'', '<', '>':
		return true
	}
	return c < 0x20
}

func authorityEnd(c byte) bool {
	switch c {
	case '/', '?', '#', '\\', ' ', '\t', '\r', '\n', '"', '\'', '<', '>':
		return true
	}
	return c < 0x20
}

// params appends the values of credential-named parameters.
func (d *decoded) params(spans []span) []span {
	b := d.b
	lo := 0 // names do not start in a value already taken
	for k := 0; k < len(b); k++ {
		if b[k] != '=' {
			continue
		}
		j := k
		for j > lo && !nameSep(b[j-1]) {
			j--
		}
		if j == k || !SensitiveName(string(b[j:k])) {
			continue
		}
		e := k + 1
		for e < len(b) && !(valueEnd(b[e]) && d.dep[e] <= d.dep[k]) {
			e++
		}
		if e > k+1 && string(b[k+1:e]) != Redacted {
			spans = append(spans, span{k + 1, e})
		}
		lo, k = e, e-1
	}
	return spans
}

// userinfo appends the userinfo of every URL authority.
func (d *decoded) userinfo(spans []span) []span {
	b := d.b
	for k := 0; k+1 < len(b); k++ {
		if b[k] != '/' || b[k+1] != '/' {
			continue
		}
		if !authorityStart(b, k) {
			continue
		}
		if sp, ok := d.authority(k+2, max(d.dep[k], d.dep[k+1])); ok {
			spans = append(spans, sp)
		}
		k++
	}
	return spans
}

// authority is the userinfo of the authority starting at decoded byte
// from, ended by a byte escaped no more deeply than dep.
func (d *decoded) authority(from int, dep uint8) (span, bool) {
	at := -1
	for e := from; e < len(d.b); e++ {
		c := d.b[e]
		if authorityEnd(c) && d.dep[e] <= dep {
			break
		}
		if c == '@' {
			at = e
		}
	}
	if at <= from || string(d.b[from:at]) == Redacted {
		return span{}, false
	}
	return span{from, at}, true
}

// apply replaces spans (decoded) in s, overlapping ones merged.
func (d *decoded) apply(s string, spans []span) (string, bool) {
	if len(spans) == 0 {
		return s, false
	}
	for i := range spans { // to s's offsets
		spans[i] = span{d.at[spans[i].from], d.at[spans[i].to]}
	}
	slices.SortFunc(spans, func(x, y span) int { return x.from - y.from })
	var b strings.Builder
	b.Grow(len(s) + len(Redacted)*len(spans))
	last := 0
	for i := 0; i < len(spans); {
		from, to := spans[i].from, spans[i].to
		for i++; i < len(spans) && spans[i].from <= to; i++ {
			to = max(to, spans[i].to)
		}
		b.WriteString(s[last:from])
		b.WriteString(Redacted)
		last = to
	}
	b.WriteString(s[last:])
	return b.String(), true
}

// RedactOpenUserinfo is for p, a string cut short (the rest of it held '@'
// or an escape): the userinfo of an authority p leaves open (started, not
// ended before p does, so its '@' may be in the part cut off) is
// Redacted to p's end, and whether there was one. host says p is a host:
// it starts an authority itself.
func RedactOpenUserinfo(p string, host bool) (string, bool) {
	d := decodeDepth(p)
	b := d.b
	// minEnd[i] is the least depth of an authority end at or after i.
	minEnd := make([]uint8, len(b)+1)
	minEnd[len(b)] = 255
	for i := len(b) - 1; i >= 0; i-- {
		minEnd[i] = minEnd[i+1]
		if authorityEnd(b[i]) && d.dep[i] < minEnd[i] {
			minEnd[i] = d.dep[i]
		}
	}
	from := -1
	if host && (len(b) == 0 || minEnd[0] > 0) {
		from = 0
	}
	for k := 0; from < 0 && k+1 < len(b); k++ {
		if b[k] != '/' || b[k+1] != '/' || !authorityStart(b, k) {
			continue
		}
		if minEnd[k+2] > max(d.dep[k], d.dep[k+1]) {
			from = k + 2
		}
	}
	if from < 0 || from == len(b) || string(b[from:]) == Redacted {
		return p, false
	}
	return d.apply(p, []span{{from, len(b)}})
}

// authorityStart: the "//" at b[k] starts an authority (at the start of
// the string, or after : = white space " ' < ( , ? & ; or #).
func authorityStart(b []byte, k int) bool {
	if k == 0 {
		return true
	}
	switch b[k-1] {
	case ':', '=', ' ', '\t', '\r', '\n', '"', '\'', '<', '(', ',', '?', '&', ';', '#':
		return true
	}
	return false
}
