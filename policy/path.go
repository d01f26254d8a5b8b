package policy

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Path problems: requests whose path Warden will not guess about. Both are
// denials (400), never a route picked by luck.
var (
	// ErrPathMalformed: the path is not an origin-form path Warden can read
	// (no leading "/", a bad %-escape, a control character or NUL, "#").
	ErrPathMalformed = errors.New("malformed request path")
	// ErrPathAmbiguous: the path matches the route table differently
	// depending on how the upstream reads it (see routeFor).
	ErrPathAmbiguous = errors.New("ambiguous request path")
)

// pathSyntax checks that path (query already cut) is an origin-form path
// whose escapes decode to no control character.
func pathSyntax(path string) error {
	if path == "" || path[0] != '/' {
		return fmt.Errorf("%w: it must start with /", ErrPathMalformed)
	}
	for i := 0; i < len(path); i++ {
		c := path[i]
		switch {
		case c < 0x20 || c == 0x7f:
			return fmt.Errorf("%w: control character", ErrPathMalformed)
		case c == '#':
			return fmt.Errorf("%w: fragment", ErrPathMalformed)
		case c == '%':
			if i+2 >= len(path) || !isHex(path[i+1]) || !isHex(path[i+2]) {
				return fmt.Errorf("%w: bad %%-escape", ErrPathMalformed)
			}
			if d := unhex(path[i+1])<<4 | unhex(path[i+2]); d < 0x20 || d == 0x7f {
				return fmt.Errorf("%w: encoded control character", ErrPathMalformed)
			}
			i += 2
		}
	}
	return nil
}

func isHex(c byte) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' }

func unhex(c byte) byte {
	switch {
	case c >= 'a':
		return c - 'a' + 10
	case c >= 'A':
		return c - 'A' + 10
	}
	return c - '0'
}

// reading is one way an upstream may read a raw path.
type reading struct {
	why  string
	path string
	// routedOnly: the reading counts only when it matches a route (an
	// upstream that ignores a trailing slash serves an unrouted path as
	// whatever it routes the path without it to; one that does not serves
	// a route-less path, which the route-less action already covers).
	routedOnly bool
}

// readings are the other ways an upstream may read path than Warden's own
// (split on "/", each segment percent-decoded), for the features path has.
// A path without such features has none, and costs one scan.
func readings(path string) []reading {
	var dots, double, slash, matrix, trailing bool
	for i := 0; i < len(path); i++ {
		switch path[i] {
		case '/':
			if i+1 < len(path) && path[i+1] == '/' {
				double = true
			}
			if i > 0 && i == len(path)-1 {
				trailing = true
			}
		case '.':
			dots = dots || i > 0 && path[i-1] == '/' // checked exactly below
		case '%':
			if i+2 < len(path) {
				switch strings.ToLower(path[i+1 : i+3]) {
				case "2e":
					dots = true
				case "2f", "5c":
					slash = true
				}
			}
		case '\\':
			slash = true
		case ';':
			matrix = true
		}
	}
	dots = dots && hasDotSegment(path)
	if !(dots || double || slash || matrix || trailing) {
		return nil
	}
	var out []reading
	add := func(why, p string, routedOnly bool) {
		if p == path {
			return
		}
		for _, r := range out {
			if r.path == p {
				return
			}
		}
		out = append(out, reading{why, p, routedOnly})
	}
	if slash {
		add("encoded or back slashes as separators", decodeSlashes(path), false)
	}
	if matrix {
		add("; parameters dropped", dropMatrix(path), false)
	}
	if double {
		add("repeated slashes merged", mergeSlashes(path), false)
	}
	if dots {
		add("dot-segments resolved", removeDots(path), false)
	}
	all := path
	if slash {
		all = decodeSlashes(all)
	}
	if matrix {
		all = dropMatrix(all)
	}
	all = removeDots(mergeSlashes(all))
	add("normalised", all, false)
	for _, r := range append([]reading{{path: path}}, out...) {
		if t := strings.TrimRight(r.path, "/"); t != r.path && t != "" {
			add("trailing slash dropped", t, true)
		}
	}
	return out
}

// hasDotSegment reports whether a segment of path decodes to "." or "..".
func hasDotSegment(path string) bool {
	for _, seg := range strings.Split(path[1:], "/") {
		if d := decodeDots(seg); d == "." || d == ".." {
			return true
		}
	}
	return false
}

// decodeDots decodes %2e in a segment (RFC 3986 §2.3: "." is unreserved, so
// %2E and "." are the same).
func decodeDots(seg string) string {
	if !strings.Contains(seg, "%") {
		return seg
	}
	return strings.NewReplacer("%2e", ".", "%2E", ".").Replace(seg)
}

func decodeSlashes(p string) string {
	return strings.NewReplacer("%2f", "/", "%2F", "/", "%5c", "/", "%5C", "/", `\`, "/").Replace(p)
}

func dropMatrix(p string) string {
	segs := strings.Split(p, "/")
	for i, s := range segs {
		if j := strings.IndexByte(s, ';'); j >= 0 {
			segs[i] = s[:j]
		}
	}
	return strings.Join(segs, "/")
}

func mergeSlashes(p string) string {
	for strings.Contains(p, "//") {
		p = strings.ReplaceAll(p, "//", "/")
	}
	return p
}

// removeDots is RFC 3986 §5.2.4 on a path's segments ("%2e" counts as ".").
func removeDots(p string) string {
	segs := strings.Split(p[1:], "/")
	out := make([]string, 0, len(segs))
	for i, s := range segs {
		last := i == len(segs)-1
		switch decodeDots(s) {
		case ".":
			if last {
				out = append(out, "")
			}
		case "..":
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
			if last {
				out = append(out, "")
			}
		default:
			out = append(out, s)
		}
	}
	return "/" + strings.Join(out, "/")
}

// routeFor is the route (nil: none) and parameters of a request, or an
// error when its path is malformed or ambiguous: when some way an upstream
// may read the path (dot-segments resolved, slashes merged, %2F or "\" as
// separators, ";" parameters dropped, a trailing slash ignored, literals
// matched without case) leads to another route or other parameters than
// Warden's own reading. Envoy configured as envoy/ shows (normalize_path,
// merge_slashes, escaped slashes rejected) forwards only paths that read
// one way.
func (s *Set) routeFor(method, host, service, path string, buf []Param) (*Route, []Param, error) {
	if err := pathSyntax(path); err != nil {
		return nil, buf, err
	}
	rt, params := s.firstRoute(method, host, service, path, buf, false)
	same := func(rt2 *Route, p2 []Param) bool { return rt2 == rt && slices.Equal(p2, params) }
	var alt []Param
	for _, r := range readings(path) {
		var rt2 *Route
		rt2, alt = s.firstRoute(method, host, service, r.path, alt[:0], false)
		if r.routedOnly && rt2 == nil {
			continue
		}
		if !same(rt2, alt) {
			return nil, buf[:0], fmt.Errorf("%w: it routes differently with %s", ErrPathAmbiguous, r.why)
		}
	}
	if hasUpper(path) {
		if rt2, p2 := s.firstRoute(method, host, service, path, alt[:0], true); !same(rt2, p2) {
			return nil, buf[:0], fmt.Errorf("%w: it routes differently when matched without case", ErrPathAmbiguous)
		}
	}
	return rt, params, nil
}

// firstRoute is the first route in file order that matches.
func (s *Set) firstRoute(method, host, service, path string, buf []Param, fold bool) (*Route, []Param) {
	for _, rt := range s.routes {
		if p, ok := rt.match(method, host, service, path, buf, fold); ok {
			return rt, p
		}
	}
	return nil, buf
}

// hasUpper reports whether path has an upper-case ASCII letter, as written
// or %-encoded (an escape's own hex digits do not count).
func hasUpper(path string) bool {
	for i := 0; i < len(path); i++ {
		c := path[i]
		if c == '%' && i+2 < len(path) {
			c = unhex(path[i+1])<<4 | unhex(path[i+2])
			i += 2
		}
		if c >= 'A' && c <= 'Z' {
			return true
		}
	}
	return false
}
