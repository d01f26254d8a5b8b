package policy

import (
	"errors"
	"fmt"
	"net/netip"
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
	// ErrHostMalformed: the :authority is not host[:port] (empty, userinfo,
	// two ports, a character no host name has): its host could be read
	// more than one way.
	ErrHostMalformed = errors.New("malformed request host")
	// ErrQueryMalformed: the query does not parse one way (a bad %-escape,
	// ";" as a separator, a control character): Warden's reading of its
	// parameters could differ from the upstream's.
	ErrQueryMalformed = errors.New("malformed request query")
)

// authoritySyntax checks that a (Envoy's :authority) is host[:port]: a
// non-empty host name (letters, digits, "-", ".", "_", "~", or non-ASCII
// for an internationalised name) or a bracketed IPv6 address, and an
// optional decimal port. An empty authority has one reading, the host "",
// which no host-scoped route matches and policy.unrouted still covers; the
// Check pipeline refuses it before (Envoy always sends one).
func authoritySyntax(a string) error {
	host, port := a, ""
	if strings.HasPrefix(a, "[") {
		end := strings.IndexByte(a, ']')
		if end < 0 {
			return fmt.Errorf("%w: unclosed [", ErrHostMalformed)
		}
		if ip, err := netip.ParseAddr(a[1:end]); err != nil || !ip.Is6() || ip.Zone() != "" {
			return fmt.Errorf("%w: not an IPv6 address in []", ErrHostMalformed)
		}
		host, port = "", a[end+1:]
		if port != "" && port[0] != ':' {
			return fmt.Errorf("%w: text after ]", ErrHostMalformed)
		}
	} else if i := strings.IndexByte(a, ':'); i >= 0 {
		host, port = a[:i], a[i:]
		if host == "" {
			return fmt.Errorf("%w: no host", ErrHostMalformed)
		}
	}
	if port != "" {
		port = port[1:]
		if len(port) > 5 {
			return fmt.Errorf("%w: bad port", ErrHostMalformed)
		}
		for i := 0; i < len(port); i++ {
			if port[i] < '0' || port[i] > '9' {
				return fmt.Errorf("%w: bad port", ErrHostMalformed)
			}
		}
	}
	for i := 0; i < len(host); i++ {
		c := host[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~' || c >= 0x80) {
			return fmt.Errorf("%w: %q in the host", ErrHostMalformed, c)
		}
	}
	return nil
}

// querySyntax checks that a raw query reads one way: "&"-separated
// name=value pairs whose %-escapes are all well formed, with no ";" (some
// upstreams separate pairs on it), no raw control character and at most
// maxQueryParams pairs. (An escaped control character, "%0A" in a form
// field, reads the same everywhere and is kept.) url.ParseQuery then reads
// every pair; before, it skipped the ones it could not, which an upstream
// (Node, Python, WHATWG) reads.
func querySyntax(q string) error {
	for i := 0; i < len(q); i++ {
		c := q[i]
		switch {
		case c < 0x20 || c == 0x7f:
			return fmt.Errorf("%w: control character", ErrQueryMalformed)
		case c == ';':
			return fmt.Errorf("%w: ; (a separator to some upstreams)", ErrQueryMalformed)
		case c == '#':
			return fmt.Errorf("%w: fragment", ErrQueryMalformed)
		case c == '%':
			if i+2 >= len(q) || !isHex(q[i+1]) || !isHex(q[i+2]) {
				return fmt.Errorf("%w: bad %%-escape", ErrQueryMalformed)
			}
			i += 2
		}
	}
	if strings.Count(q, "&") >= maxQueryParams {
		return fmt.Errorf("%w: over %d parameters", ErrQueryMalformed, maxQueryParams)
	}
	return nil
}

// maxQueryParams is net/url's own limit: a query with more parameters
// parses to none, which would hide them all from policies.
const maxQueryParams = 10000

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
	// a route-less path, which the route-less action already covers). It is
	// set when the reading needs a trailing slash dropped, and no reading
	// that keeps every trailing slash gets there.
	routedOnly bool
}

// transform is one rewrite an upstream may apply to a raw path before
// routing it.
type transform struct {
	why      string
	apply    func(string) string
	trailing bool // drops a trailing slash (see reading.routedOnly)
}

// transforms are the rewrites upstreams apply, each on its own or with
// any others, in any order: readings closes a path under all of them.
var transforms = []transform{
	{why: "encoded or back slashes as separators", apply: decodeSlashes},
	{why: "; parameters dropped", apply: dropMatrix},
	{why: "repeated slashes merged", apply: mergeSlashes},
	{why: "dot-segments resolved", apply: removeDots},
	{why: "trailing slash dropped", apply: dropTrailing, trailing: true},
}

// maxReadings bounds the readings of one path; a path with more is refused
// as ambiguous (none that an honest client sends comes near).
const maxReadings = 64

// maxReadPath bounds the length of a path that has readings (one that an
// upstream may read another way): longer, it is refused as ambiguous, so
// that the cost of one request stays bounded (BenchmarkRouteForWorstPath:
// a few milliseconds for the worst such path).
const maxReadPath = 4 << 10

// errTooManyReadings: the path has more readings than maxReadings;
// errTooLongToRead: it has readings and is longer than maxReadPath.
var (
	errTooManyReadings = fmt.Errorf("%w: it has too many readings", ErrPathAmbiguous)
	errTooLongToRead   = fmt.Errorf("%w: it is over %d bytes and could be read more than one way", ErrPathAmbiguous, maxReadPath)
)

// readings are the other ways an upstream may read path than Warden's own
// (split on "/", each segment percent-decoded): every path that the
// transforms, applied in any order and combination, lead to. A path
// without a feature any transform acts on has none, and costs one scan.
// (Matching literals without case is the one more reading; routeFor applies
// it to each of these and to path itself.)
func readings(path string) ([]reading, error) {
	if !pathFeatures(path) {
		return nil, nil
	}
	if len(path) > maxReadPath {
		return nil, errTooLongToRead
	}
	// First the closure under the transforms that keep trailing slashes,
	// then under all: what only the second reaches is routedOnly.
	var out []reading
	seen := map[string]bool{path: true}
	for _, withTrailing := range []bool{false, true} {
		// The second pass starts from the first's readings, which the
		// other transforms have already been applied to.
		queue := append([]reading{{path: path}}, out...)
		done := 0
		if withTrailing {
			done = len(queue)
		}
		for i := 0; i < len(queue); i++ {
			r := queue[i]
			for _, t := range transforms {
				if t.trailing != withTrailing && (!withTrailing || i >= done) {
					continue
				}
				p := t.apply(r.path)
				if p == "" || seen[p] {
					continue
				}
				if len(out) >= maxReadings {
					return nil, errTooManyReadings
				}
				why := t.why
				if r.why != "" {
					why = r.why + ", " + t.why
				}
				n := reading{why: why, path: p, routedOnly: withTrailing}
				seen[p] = true
				out = append(out, n)
				queue = append(queue, n)
			}
		}
	}
	return out, nil
}

// pathFeatures reports whether some transform may change path.
func pathFeatures(path string) bool {
	dot := false
	for i := 0; i < len(path); i++ {
		switch path[i] {
		case '/':
			if i+1 < len(path) && path[i+1] == '/' || i > 0 && i == len(path)-1 {
				return true
			}
		case '\\', ';':
			return true
		case '%':
			if i+2 < len(path) {
				switch strings.ToLower(path[i+1 : i+3]) {
				case "2e":
					dot = true
				case "2f", "5c":
					return true
				}
			}
		case '.':
			dot = dot || i > 0 && path[i-1] == '/'
		}
	}
	return dot && hasDotSegment(path)
}

func dropTrailing(p string) string { return strings.TrimRight(p, "/") }

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
	return dotReplacer.Replace(seg)
}

var (
	dotReplacer   = strings.NewReplacer("%2e", ".", "%2E", ".")
	slashReplacer = strings.NewReplacer("%2f", "/", "%2F", "/", "%5c", "/", "%5C", "/", `\`, "/")
)

func decodeSlashes(p string) string {
	return slashReplacer.Replace(p)
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
// may read the path leads to another route or other parameters than
// Warden's own reading. The ways are one set (readings): dot-segments
// resolved, slashes merged, %2F, %5C or "\" as separators, ";" parameters
// dropped, a trailing slash ignored, each alone and in every combination
// and order, and each of those (and the path itself) with its literals
// matched without case. Envoy configured as envoy/ shows (normalize_path,
// merge_slashes, escaped slashes rejected) forwards only paths that read
// one way, but not case, ";" or a trailing slash: those Warden refuses here.
func (s *Set) routeFor(method, host, service, path string, buf []Param) (*Route, []Param, error) {
	return s.routeForBuf(method, host, service, path, buf, nil)
}

// routeForBuf is routeFor with alt a buffer for the parameters of the
// other readings (the caller's scratch; nil allocates).
func (s *Set) routeForBuf(method, host, service, path string, buf, alt []Param) (*Route, []Param, error) {
	if err := pathSyntax(path); err != nil {
		return nil, buf, err
	}
	rt, params := s.firstRoute(method, host, service, path, buf, false)
	rs, err := readings(path)
	if err != nil {
		return nil, buf[:0], err
	}
	alt = alt[:0]
	for i := -1; i < len(rs); i++ {
		r := reading{path: path}
		if i >= 0 {
			r = rs[i]
		}
		for _, fold := range []bool{false, true} {
			if !fold && i < 0 || fold && !s.foldLits && !mayFoldPath(r.path) {
				continue
			}
			var rt2 *Route
			rt2, alt = s.firstRoute(method, host, service, r.path, alt[:0], fold)
			if r.routedOnly && rt2 == nil || rt2 == rt && slices.Equal(alt, params) {
				continue
			}
			why := r.why
			if fold {
				why = strings.TrimPrefix(why+", literals matched without case", ", ")
			}
			return nil, buf[:0], fmt.Errorf("%w: it routes differently with %s", ErrPathAmbiguous, why)
		}
	}
	return rt, params, nil
}

// hasRoutes reports whether some route may claim a request to service
// (its context extension; "" when Envoy sent none), whatever its method,
// path and host: a route of that service or of every service, on any host.
// The host is the caller's to choose, so it never narrows the set (a
// request to the routes' service under another Host is still unrouted);
// without a service every route could claim the request.
func (s *Set) hasRoutes(service string) bool {
	for _, rt := range s.routes {
		if service == "" || rt.Service == "" || rt.Service == service {
			return true
		}
	}
	return false
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

// mayFoldPath reports whether path, as written or %-decoded, has a letter
// that may match another without case and is not lower-case ASCII: an
// upper-case ASCII letter or any non-ASCII byte ("ſ", U+017F, folds to
// "s"; the Kelvin sign to "k"; "ı" upper-cases to "I"). A path without
// one matches lower-case ASCII literals the same with or without case.
func mayFoldPath(path string) bool {
	for i := 0; i < len(path); i++ {
		c := path[i]
		if c == '%' && i+2 < len(path) {
			c = unhex(path[i+1])<<4 | unhex(path[i+2])
			i += 2
		}
		if c >= 'A' && c <= 'Z' || c >= 0x80 {
			return true
		}
	}
	return false
}
