package policy

import (
	"fmt"
	"net/url"
	"strings"
	"sync/atomic"
	"unicode"
	"unicode/utf8"

	"github.com/cedar-policy/cedar-go"

	"github.com/wardenauthz/warden/internal/fielderr"
)

// Route is a compiled route.
type Route struct {
	Service  string
	Method   string // upper case, or "*"
	Template string
	Host     string // lower case, without port; "" matches any
	segs     []segment
	prefix   bool // template ends in "/" or "{name...}": matches the rest
	rest     string
	resType  cedar.EntityType
	resID    []segment // literal and {param} parts of the resource id
	hasRes   bool
	// actions are the route's actions by request method (routeAction),
	// made once: its method's, or for "*" the standard methods'.
	actions map[string]cedar.EntityUID
	// memo keeps parts of the last request's Cedar form that depend only
	// on the route and the service (nil: none kept).
	memo *routeMemo
}

// routeMemo holds, for the service of the route's last request, the
// resource's parents (the service, for a resource that is no entity of
// the set) and context.route. Each is immutable once stored.
type routeMemo struct {
	parents atomic.Pointer[serviceParents]
	ctx     atomic.Pointer[serviceRecord]
}

type serviceParents struct {
	service string
	svc     []cedar.EntityUID // the service, alone
	set     cedar.EntityUIDSet
}

type serviceRecord struct {
	service string
	rec     cedar.Value
}

// action is the route's action for a request of method (actionMethod).
func (r *Route) action(method string) cedar.EntityUID {
	am := actionMethod(method, r)
	if a, ok := r.actions[am]; ok {
		return a
	}
	return routeAction(am, r.Template)
}

// resourceParents are the parents of a resource of the route that is no
// entity of the set: the service svc, as a list and as a set.
func (r *Route) resourceParents(service string, svc cedar.EntityUID) ([]cedar.EntityUID, cedar.EntityUIDSet) {
	if r.memo != nil {
		if p := r.memo.parents.Load(); p != nil && p.service == service {
			return p.svc, p.set
		}
	}
	p := &serviceParents{service: service, svc: []cedar.EntityUID{svc}, set: cedar.NewEntityUIDSet(svc)}
	if r.memo != nil {
		r.memo.parents.Store(p)
	}
	return p.svc, p.set
}

// contextRoute is context.route for a request of the route to service.
func (r *Route) contextRoute(service string) cedar.Value {
	if r.memo != nil {
		if p := r.memo.ctx.Load(); p != nil && p.service == service {
			return p.rec
		}
	}
	rt := cedar.RecordMap{"template": str(r.Template)}
	if service != "" {
		rt["service"] = str(service)
	}
	p := &serviceRecord{service: service, rec: cedar.NewRecord(rt)}
	if r.memo != nil {
		r.memo.ctx.Store(p)
	}
	return p.rec
}

type segment struct {
	lit   string
	param string // "" for a literal
}

// compileRoutes checks and compiles the route table.
func compileRoutes(cfgs []RouteConfig) ([]*Route, error) {
	var errs fielderr.List
	var out []*Route
	var idx []int // out[j] is cfgs[idx[j]]
	for i, rc := range cfgs {
		r, err := compileRoute(rc)
		if err != nil {
			err.Path = fmt.Sprintf("routes[%d].%s", i, err.Path)
			errs = append(errs, err)
			continue
		}
		for j, prev := range out {
			if prev.shadows(r) {
				errs = append(errs, fielderr.Errorf(fmt.Sprintf("routes[%d]", i), "%s %s can never match: routes[%d] (%s %s) matches every request it would", rc.Method, rc.Path, idx[j], cfgs[idx[j]].Method, cfgs[idx[j]].Path))
				break
			}
		}
		out = append(out, r)
		idx = append(idx, i)
	}
	return out, errs.Err()
}

// shadows reports whether r matches every request that b matches, so that
// b, after r, can never match.
func (r *Route) shadows(b *Route) bool {
	methodOK := r.Method == "*" || r.Method == b.Method || r.Method == "GET" && b.Method == "HEAD"
	if !methodOK || r.Host != "" && r.Host != b.Host || r.Service != "" && r.Service != b.Service {
		return false
	}
	// Every path of b's template must match r's: segment by segment, a
	// parameter of r takes any non-empty segment, a literal only itself.
	if len(b.segs) < len(r.segs) {
		return false
	}
	for i, rs := range r.segs {
		bs := b.segs[i]
		switch {
		case rs.param != "":
			if bs.param == "" && bs.lit == "" {
				return false
			}
		case bs.param != "" || bs.lit != rs.lit:
			return false
		}
	}
	if !r.prefix {
		return !b.prefix && len(b.segs) == len(r.segs)
	}
	// r matches its segments then "/" and anything: b's paths must go on.
	return len(b.segs) > len(r.segs) || b.prefix
}

func compileRoute(rc RouteConfig) (*Route, *fielderr.Error) {
	r := &Route{Service: rc.Service, Method: strings.ToUpper(rc.Method), Template: rc.Path, Host: normHost(rc.Host), memo: &routeMemo{}}
	if r.Method != "*" && !isToken(r.Method) {
		return nil, fielderr.Errorf("method", "%q is not an HTTP method", rc.Method)
	}
	r.actions = map[string]cedar.EntityUID{}
	for _, m := range stdMethods {
		if am := actionMethod(m, r); r.actions[am] == (cedar.EntityUID{}) {
			r.actions[am] = routeAction(am, r.Template)
		}
	}
	if !strings.HasPrefix(rc.Path, "/") {
		return nil, fielderr.Errorf("path", "%q must start with /", rc.Path)
	}
	if strings.ContainsAny(rc.Path, "?#") {
		return nil, fielderr.Errorf("path", "%q must not contain a query or fragment", rc.Path)
	}
	if strings.Contains(r.Host, ":") {
		return nil, fielderr.Errorf("host", "%q must not have a port", rc.Host)
	}
	params := map[string]bool{}
	parts := strings.Split(rc.Path[1:], "/")
	for i, p := range parts {
		last := i == len(parts)-1
		switch {
		case last && p == "" && i > 0:
			r.prefix = true // "/files/" matches everything below
		case strings.HasPrefix(p, "{") && strings.HasSuffix(p, "}"):
			name := p[1 : len(p)-1]
			if strings.HasSuffix(name, "...") {
				if !last {
					return nil, fielderr.Errorf("path", "%q: {name...} must be the last segment", rc.Path)
				}
				name = strings.TrimSuffix(name, "...")
				r.prefix, r.rest = true, name
			}
			if !isIdent(name) {
				return nil, fielderr.Errorf("path", "%q: bad parameter name %q", rc.Path, name)
			}
			if params[name] {
				return nil, fielderr.Errorf("path", "%q: parameter %q used twice", rc.Path, name)
			}
			params[name] = true
			if r.rest != name {
				r.segs = append(r.segs, segment{param: name})
			}
		case strings.ContainsAny(p, "{}"):
			return nil, fielderr.Errorf("path", "%q: a parameter must be a whole segment", rc.Path)
		default:
			lit, err := url.PathUnescape(p)
			if err != nil {
				return nil, fielderr.Errorf("path", "%q: %v", rc.Path, err)
			}
			r.segs = append(r.segs, segment{lit: lit})
		}
	}
	if rc.Resource != "" {
		typ, id, ok := splitUIDTemplate(rc.Resource)
		if !ok {
			return nil, fielderr.Errorf("resource", "%q is not of the form Type::\"id\"", rc.Resource)
		}
		r.resType, r.hasRes = cedar.EntityType(typ), true
		for id != "" {
			open := strings.IndexByte(id, '{')
			if open < 0 {
				r.resID = append(r.resID, segment{lit: id})
				break
			}
			end := strings.IndexByte(id[open:], '}')
			if end < 0 {
				return nil, fielderr.Errorf("resource", "%q: unclosed {", rc.Resource)
			}
			if open > 0 {
				r.resID = append(r.resID, segment{lit: id[:open]})
			}
			name := id[open+1 : open+end]
			if !params[name] {
				return nil, fielderr.Errorf("resource", "%q: {%s} is not a parameter of path %q", rc.Resource, name, rc.Path)
			}
			r.resID = append(r.resID, segment{param: name})
			id = id[open+end+1:]
		}
	}
	return r, nil
}

// splitUIDTemplate splits `Type::"id"` (Type may be namespaced).
func splitUIDTemplate(s string) (typ, id string, ok bool) {
	i := strings.LastIndex(s, `::"`)
	if i <= 0 || !strings.HasSuffix(s, `"`) || len(s) < i+4 {
		return "", "", false
	}
	typ, id = s[:i], s[i+3:len(s)-1]
	for _, part := range strings.Split(typ, "::") {
		if !isIdent(part) {
			return "", "", false
		}
	}
	if strings.ContainsAny(id, `"\`) {
		return "", "", false
	}
	return typ, id, true
}

func isIdent(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		if !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || i > 0 && r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

// Param is one path parameter.
type Param struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// match reports whether r matches; params are appended to buf. With fold,
// literal segments match without regard to case (foldEqual).
func (r *Route) match(method, host, service, path string, buf []Param, fold bool) ([]Param, bool) {
	if r.Method != "*" && r.Method != method && !(method == "HEAD" && r.Method == "GET") {
		return buf, false // HEAD is GET without the body: a GET route is HEAD's too
	}
	if r.Host != "" && r.Host != host {
		return buf, false
	}
	if service != "" && r.Service != "" && r.Service != service {
		return buf, false
	}
	if path == "" || path[0] != '/' {
		return buf, false
	}
	rest := path[1:]
	n := len(buf)
	for i, s := range r.segs {
		last := i == len(r.segs)-1
		var seg string
		if j := strings.IndexByte(rest, '/'); j < 0 {
			if !last || r.prefix {
				return buf[:n], false // the template needs more of the path
			}
			seg, rest = rest, ""
		} else {
			if last && !r.prefix {
				return buf[:n], false // the path has more segments
			}
			seg, rest = rest[:j], rest[j+1:]
		}
		dec, err := url.PathUnescape(seg)
		if err != nil {
			return buf[:n], false
		}
		if s.param == "" {
			if dec != s.lit && !(fold && foldEqual(dec, s.lit)) {
				return buf[:n], false
			}
			continue
		}
		if dec == "" {
			return buf[:n], false // {name} matches a non-empty segment
		}
		buf = append(buf, Param{s.param, dec})
	}
	if r.prefix && r.rest != "" {
		dec, err := url.PathUnescape(rest)
		if err != nil {
			return buf[:n], false
		}
		buf = append(buf, Param{r.rest, dec})
	}
	return buf, true
}

// resource fills the resource template; ok is false when the route has none.
func (r *Route) resource(params []Param) (cedar.EntityUID, bool) {
	if !r.hasRes {
		return cedar.EntityUID{}, false
	}
	if len(r.resID) == 1 && r.resID[0].param != "" { // Type::"{id}": the parameter itself
		for _, p := range params {
			if p.Name == r.resID[0].param {
				return cedar.NewEntityUID(r.resType, cedar.String(p.Value)), true
			}
		}
		return cedar.NewEntityUID(r.resType, ""), true
	}
	var b strings.Builder
	for _, s := range r.resID {
		if s.param == "" {
			b.WriteString(s.lit)
			continue
		}
		for _, p := range params {
			if p.Name == s.param {
				b.WriteString(p.Value)
				break
			}
		}
	}
	return cedar.NewEntityUID(r.resType, cedar.String(b.String())), true
}

// foldEqual reports whether an upstream matching without case may take a
// for b: rune by rune, equal under Unicode simple case folding (Go's
// EqualFold and regexp (?i), JavaScript /iu: "ſ" is "s", the Kelvin sign
// "K" is "k") or under upper/lower-case mapping (Java's equalsIgnoreCase,
// JavaScript /i: "ı" and "İ" are "i").
func foldEqual(a, b string) bool {
	if strings.EqualFold(a, b) {
		return true
	}
	for len(a) > 0 && len(b) > 0 {
		ra, na := utf8.DecodeRuneInString(a)
		rb, nb := utf8.DecodeRuneInString(b)
		a, b = a[na:], b[nb:]
		if ra == rb || strings.EqualFold(string(ra), string(rb)) {
			continue
		}
		ua, ub := unicode.ToUpper(ra), unicode.ToUpper(rb)
		if ua != ub && unicode.ToLower(ua) != unicode.ToLower(ub) {
			return false
		}
	}
	return a == "" && b == ""
}

// mayFold reports whether s has a letter that matches another without case
// and is not lower-case ASCII: an upper-case ASCII letter or any non-ASCII
// byte.
func mayFold(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' || c >= 0x80 {
			return true
		}
	}
	return false
}
