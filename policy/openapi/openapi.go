// Package openapi imports the routes of an OpenAPI 3 document (YAML or
// JSON) as Warden routes (policy.routes), for `warden routes import`.
//
// Only what routes need is read: servers (their URL's path is the routes'
// base path, its host optionally each route's host), paths with their
// operations, and the x-warden-resource extension (on a path item or an
// operation) that names a route's resource. Without it, a path with
// parameters gets the resource Type::"{last parameter}", Type singularised
// from the literal segment before that parameter (/orders/{id}: Order).
package openapi

import (
	"bytes"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"
	"unicode"

	"go.yaml.in/yaml/v3"

	"github.com/wardenauthz/warden/policy"
)

// Options steer an import.
type Options struct {
	Service      string // each route's service ("" for none)
	ResourceType string // the resource type of every route with parameters ("" to derive it)
	// BasePath is put before every path; nil takes it from the first
	// server URL's path.
	BasePath *string
	Host     bool // set each route's host from the first server URL
}

// Route is one imported route, with the operation it came from.
type Route struct {
	policy.RouteConfig
	OperationID string
	Summary     string
}

// Result is an import's routes, in an order Warden loads without
// shadowing (literal segments before parameters, HEAD before GET), and the
// operations that could not be imported, each with why.
type Result struct {
	Title    string
	Version  string
	Routes   []Route
	Warnings []string
}

// Methods an OpenAPI path item may have, in the order routes are written
// (HEAD before GET: a GET route also matches HEAD).
var methods = []string{"head", "get", "put", "post", "delete", "options", "patch", "trace"}

// Limits on what is read.
const (
	maxBytes      = 16 << 20
	maxOperations = 10000
)

type document struct {
	OpenAPI string `yaml:"openapi"`
	Swagger string `yaml:"swagger"`
	Info    struct {
		Title   string `yaml:"title"`
		Version string `yaml:"version"`
	} `yaml:"info"`
	Servers []struct {
		URL       string `yaml:"url"`
		Variables map[string]struct {
			Default string `yaml:"default"`
		} `yaml:"variables"`
	} `yaml:"servers"`
	Paths yaml.Node `yaml:"paths"`
}

type operation struct {
	OperationID string  `yaml:"operationId"`
	Summary     string  `yaml:"summary"`
	Resource    *string `yaml:"x-warden-resource"`
}

// Import reads an OpenAPI 3 document (YAML or JSON); name is how errors
// name it.
func Import(name string, b []byte, o Options) (*Result, error) {
	if len(b) > maxBytes {
		return nil, fmt.Errorf("%s: larger than %d MiB", name, maxBytes>>20)
	}
	var doc document
	if err := yaml.NewDecoder(bytes.NewReader(b)).Decode(&doc); err != nil {
		return nil, fmt.Errorf("%s: not YAML or JSON: %v", name, err)
	}
	switch {
	case doc.Swagger != "":
		return nil, fmt.Errorf("%s: a Swagger %s document: convert it to OpenAPI 3 first", name, doc.Swagger)
	case !strings.HasPrefix(doc.OpenAPI, "3."):
		return nil, fmt.Errorf("%s: not an OpenAPI 3 document (no openapi: 3.x)", name)
	case doc.Paths.Kind != yaml.MappingNode:
		return nil, fmt.Errorf("%s: paths: want a mapping of paths", name)
	}
	res := &Result{Title: doc.Info.Title, Version: doc.Info.Version}
	base, host := "", ""
	if len(doc.Servers) > 0 {
		raw := doc.Servers[0].URL
		for k, v := range doc.Servers[0].Variables {
			raw = strings.ReplaceAll(raw, "{"+k+"}", v.Default)
		}
		u, err := url.Parse(raw)
		if err != nil {
			return nil, fmt.Errorf("%s: servers[0].url %q: %v", name, doc.Servers[0].URL, err)
		}
		base, host = strings.TrimRight(u.Path, "/"), u.Hostname()
	}
	if o.BasePath != nil {
		base = strings.TrimRight(*o.BasePath, "/")
	}
	if base != "" && !strings.HasPrefix(base, "/") {
		return nil, fmt.Errorf("%s: base path %q must start with /", name, base)
	}
	if o.Host && host == "" {
		return nil, fmt.Errorf("%s: no host in servers[0].url to set the routes' host from", name)
	}
	ops := 0
	p := doc.Paths.Content
	for i := 0; i+1 < len(p); i += 2 {
		path, item := p[i].Value, p[i+1]
		if strings.HasPrefix(path, "x-") {
			continue
		}
		where := fmt.Sprintf("%s:%d: paths[%q]", name, p[i].Line, path)
		if item.Kind != yaml.MappingNode {
			return nil, fmt.Errorf("%s: want a path item (a mapping)", where)
		}
		var pathOp operation
		if err := item.Decode(&pathOp); err != nil {
			return nil, fmt.Errorf("%s: %v", where, err)
		}
		if len(path) > 1 && strings.HasSuffix(path, "/") {
			res.Warnings = append(res.Warnings, fmt.Sprintf("%s: skipped: a Warden route ending in / matches every path below it, not only this one", where))
			continue
		}
		tmpl, names, err := template(base + path)
		if err != nil {
			res.Warnings = append(res.Warnings, fmt.Sprintf("%s: skipped: %v", where, err))
			continue
		}
		for j := 0; j+1 < len(item.Content); j += 2 {
			m := item.Content[j].Value
			if !slices.Contains(methods, m) {
				continue
			}
			if ops++; ops > maxOperations {
				return nil, fmt.Errorf("%s: more than %d operations", name, maxOperations)
			}
			var op operation
			if err := item.Content[j+1].Decode(&op); err != nil {
				return nil, fmt.Errorf("%s.%s: %v", where, m, err)
			}
			r := Route{RouteConfig: policy.RouteConfig{Service: o.Service, Method: strings.ToUpper(m), Path: tmpl}, OperationID: op.OperationID, Summary: op.Summary}
			if o.Host {
				r.Host = host
			}
			ext := cmpPtr(op.Resource, pathOp.Resource)
			switch {
			case ext != nil:
				r.Resource = renameParams(*ext, names)
			case len(names) > 0:
				last := names[len(names)-1]
				typ := o.ResourceType
				if typ == "" {
					typ = resourceType(path, last.openapi)
				}
				r.Resource = fmt.Sprintf("%s::\"{%s}\"", typ, last.warden)
			}
			res.Routes = append(res.Routes, r)
		}
	}
	if len(res.Routes) == 0 {
		return nil, errors.Join(append([]error{fmt.Errorf("%s: no operations to import", name)}, warnErrs(res.Warnings)...)...)
	}
	sort.SliceStable(res.Routes, func(i, j int) bool { return less(res.Routes[i].RouteConfig, res.Routes[j].RouteConfig) })
	// What Warden would refuse is an error here too.
	cfgs := make([]policy.RouteConfig, len(res.Routes))
	for i, r := range res.Routes {
		cfgs[i] = r.RouteConfig
	}
	if err := policy.CheckRoutes(cfgs); err != nil {
		return nil, fmt.Errorf("%s: the imported routes do not load: %w", name, err)
	}
	return res, nil
}

func warnErrs(ws []string) []error {
	var out []error
	for _, w := range ws {
		out = append(out, errors.New(w))
	}
	return out
}

func cmpPtr(a, b *string) *string {
	if a != nil {
		return a
	}
	return b
}

type paramName struct{ openapi, warden string }

var identRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// template is an OpenAPI path as a Warden route template: parameter names
// made identifiers (pet-id: pet_id). A parameter must be a whole segment.
func template(path string) (string, []paramName, error) {
	if !strings.HasPrefix(path, "/") {
		return "", nil, fmt.Errorf("the path must start with /")
	}
	segs := strings.Split(path[1:], "/")
	var names []paramName
	seen := map[string]bool{}
	for i, s := range segs {
		if !strings.ContainsAny(s, "{}") {
			continue
		}
		if !strings.HasPrefix(s, "{") || !strings.HasSuffix(s, "}") || strings.Count(s, "{") != 1 {
			return "", nil, fmt.Errorf("segment %q: Warden routes take a parameter as a whole segment only", s)
		}
		n := paramName{openapi: s[1 : len(s)-1]}
		n.warden = strings.Map(func(r rune) rune {
			if r == '_' || r < unicode.MaxASCII && (unicode.IsLetter(r) || unicode.IsDigit(r)) {
				return r
			}
			return '_'
		}, n.openapi)
		if n.warden == "" || n.warden[0] >= '0' && n.warden[0] <= '9' {
			n.warden = "p_" + n.warden
		}
		if !identRe.MatchString(n.warden) || seen[n.warden] {
			return "", nil, fmt.Errorf("parameter %q: no usable name", n.openapi)
		}
		seen[n.warden] = true
		names = append(names, n)
		segs[i] = "{" + n.warden + "}"
	}
	return "/" + strings.Join(segs, "/"), names, nil
}

// renameParams rewrites the {openapi-name}s of an x-warden-resource
// template to the route's parameter names.
func renameParams(s string, names []paramName) string {
	for _, n := range names {
		s = strings.ReplaceAll(s, "{"+n.openapi+"}", "{"+n.warden+"}")
	}
	return s
}

// resourceType is the entity type of a path's resource: the literal
// segment before the parameter, singular and in PascalCase
// (/orders/{id}: Order; /line-items/{id}: LineItem), else "Resource".
func resourceType(path, param string) string {
	segs := strings.Split(strings.Trim(path, "/"), "/")
	lit := ""
	for i, s := range segs {
		if s == "{"+param+"}" {
			for k := i - 1; k >= 0; k-- {
				if !strings.Contains(segs[k], "{") {
					lit = segs[k]
					break
				}
			}
			break
		}
	}
	var b strings.Builder
	for _, w := range strings.FieldsFunc(lit, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) || r > unicode.MaxASCII }) {
		b.WriteString(strings.ToUpper(w[:1]) + w[1:])
	}
	t := singular(b.String())
	if t == "" || !identRe.MatchString(t) {
		return "Resource"
	}
	return t
}

// singular is an English plural's singular, for the common forms.
func singular(w string) string {
	lw := strings.ToLower(w)
	switch {
	case strings.HasSuffix(lw, "ies") && len(w) > 3:
		return w[:len(w)-3] + "y"
	case strings.HasSuffix(lw, "sses"), strings.HasSuffix(lw, "shes"), strings.HasSuffix(lw, "ches"), strings.HasSuffix(lw, "xes"), strings.HasSuffix(lw, "zzes"):
		return w[:len(w)-2]
	case strings.HasSuffix(lw, "ss"), strings.HasSuffix(lw, "us"), strings.HasSuffix(lw, "is"):
		return w
	case strings.HasSuffix(lw, "s") && len(w) > 1:
		return w[:len(w)-1]
	}
	return w
}

// less orders routes so that none shadows a later one: segment by segment,
// literals before parameters; then HEAD before GET.
func less(a, b policy.RouteConfig) bool {
	as, bs := strings.Split(a.Path, "/"), strings.Split(b.Path, "/")
	for i := 0; i < len(as) && i < len(bs); i++ {
		ap, bp := strings.HasPrefix(as[i], "{"), strings.HasPrefix(bs[i], "{")
		if ap != bp {
			return !ap
		}
		if !ap && as[i] != bs[i] {
			return as[i] < bs[i]
		}
	}
	if len(as) != len(bs) {
		return len(as) < len(bs)
	}
	return slices.Index(methods, strings.ToLower(a.Method)) < slices.Index(methods, strings.ToLower(b.Method))
}
