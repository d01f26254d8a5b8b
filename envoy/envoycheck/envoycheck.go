// Package envoycheck checks Envoy configuration offline, the way Envoy
// would at load time, without an Envoy binary: YAML to JSON, strict protojson
// into a Bootstrap (or a Listener) with every Any resolved, the generated
// validation run inside every Any (it does not descend into them by
// itself), and the load-time checks validation cannot express (router
// filter last, referenced clusters defined, the ext_authz gRPC cluster
// speaks HTTP/2). Every problem names the file, line and field.
package envoycheck

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	extauthzv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	netauthzv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/ext_authz/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tcpproxyv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	httpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	"go.yaml.in/yaml/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/wardenauthz/warden/internal/fielderr"
	"github.com/wardenauthz/warden/internal/yamlpath"
)

// Field is where a problem is and what it is: file, line and column of
// the YAML, field path (e.g.
// static_resources.listeners[0].filter_chains[0]) and message.
type Field = fielderr.Error

// Problem is one finding: an error (Envoy would refuse the file, or it
// cannot work with Warden) or a security warning (Envoy loads it, but it
// weakens what Warden enforces: see Lint).
type Problem struct {
	Field
	// Warning marks a security lint finding rather than an error.
	Warning bool
	// Hint is how to fix it, when there is one to give.
	Hint string
}

// AsField is p as a field error, its message marked as a warning and
// followed by its hint as Error writes them.
func (p Problem) AsField() *fielderr.Error {
	f := p.Field
	if p.Warning {
		f.Message = "warning: " + f.Message
	}
	if p.Hint != "" {
		f.Message += " (fix: " + p.Hint + ")"
	}
	return &f
}

func (p Problem) Error() string { return p.AsField().Error() }

// problem is the error msg at line (0: unknown) of file.
func problem(file string, line int, msg string) Problem {
	return Problem{Field: Field{File: file, Line: line, Message: msg, LineOnly: true}}
}

// Errors are the problems that are not warnings.
func Errors(ps []Problem) []Problem {
	var out []Problem
	for _, p := range ps {
		if !p.Warning {
			out = append(out, p)
		}
	}
	return out
}

// File checks one Envoy YAML file.
func File(name string) []Problem {
	b, err := os.ReadFile(name)
	if err != nil {
		return []Problem{problem(name, 0, err.Error())}
	}
	return Check(name, b)
}

// LoadBootstrap reads an Envoy bootstrap file and returns it when it has no
// problems (tests derive their Envoy stand-in from the shipped files).
func LoadBootstrap(name string) (*bootstrapv3.Bootstrap, error) {
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, err
	}
	msg, ps := check(name, b)
	if ps = Errors(ps); len(ps) > 0 {
		errs := make(fielderr.List, len(ps))
		for i, p := range ps {
			errs[i] = p.AsField()
		}
		return nil, errs
	}
	bs, ok := msg.(*bootstrapv3.Bootstrap)
	if !ok {
		return nil, fmt.Errorf("%s: a listener, not a bootstrap", name)
	}
	return bs, nil
}

// Check checks Envoy YAML text (a Bootstrap, or a single Listener); name is
// used in problems. It returns every problem found, errors and security
// warnings (Problem.Warning), in file order of discovery.
func Check(name string, b []byte) []Problem {
	_, ps := check(name, b)
	return ps
}

func check(name string, b []byte) (proto.Message, []Problem) {
	c := &checker{file: name}
	fail := func(msg string) (proto.Message, []Problem) { return nil, []Problem{problem(name, 0, msg)} }
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	if err := dec.Decode(&c.root); err != nil {
		if errors.Is(err, io.EOF) {
			return fail("empty file")
		}
		return fail("YAML: " + strings.TrimPrefix(err.Error(), "yaml: "))
	}
	var doc any
	if err := c.root.Decode(&doc); err != nil {
		return fail("YAML: " + err.Error())
	}
	js, err := json.Marshal(doc)
	if err != nil {
		return fail("YAML to JSON: " + err.Error())
	}
	top, _ := doc.(map[string]any)
	if p, ok := c.notEnvoy(top); !ok {
		return nil, []Problem{p}
	}
	newMsg := func() proto.Message { return &bootstrapv3.Bootstrap{} }
	if _, ok := top["filter_chains"]; ok {
		newMsg = func() proto.Message { return &listenerv3.Listener{} }
	} else if _, ok := top["filterChains"]; ok {
		newMsg = func() proto.Message { return &listenerv3.Listener{} }
	}
	// protojson stops at the first problem: report it, drop the field it
	// is about, and decode again, so that every such problem is reported
	// in one run (bounded).
	var msg proto.Message
	removed := map[string]bool{}
	for {
		msg = newMsg()
		err := protojson.Unmarshal(js, msg)
		if err == nil {
			break
		}
		p := c.jsonProblem(js, err)
		c.problems = append(c.problems, p)
		if len(c.problems) >= maxDecodeProblems {
			c.problems = append(c.problems, problem(name, 0, fmt.Sprintf("stopped after %d problems", maxDecodeProblems)))
			return nil, c.problems
		}
		at, ok := remove(doc, p.Path, strings.Contains(p.Message, "@type") || strings.Contains(p.Message, "unable to resolve"))
		if !ok {
			return nil, c.problems
		}
		removed[at] = true
		if js, err = json.Marshal(doc); err != nil {
			return nil, c.problems
		}
	}
	decoded := len(c.problems)
	c.validate("", msg)
	c.walk("", msg.ProtoReflect())
	switch m := msg.(type) {
	case *bootstrapv3.Bootstrap:
		c.loadChecks(m.GetStaticResources().GetListeners(), m.GetStaticResources().GetClusters(), "static_resources.listeners", true)
	case *listenerv3.Listener:
		c.loadChecks([]*listenerv3.Listener{m}, nil, "", false)
	}
	// A field dropped above is not reported again as missing.
	out := c.problems[:decoded]
	for _, p := range c.problems[decoded:] {
		if !removed[p.Path] {
			out = append(out, p)
		}
	}
	// In file order (problems without a line first).
	slices.SortStableFunc(out, func(a, b Problem) int { return a.Line - b.Line })
	return msg, out
}

// maxDecodeProblems bounds the decode-report-drop loop.
const maxDecodeProblems = 100

// bootstrapKeys are the top-level fields of an Envoy Bootstrap and Listener.
var bootstrapKeys = func() map[string]bool {
	keys := map[string]bool{}
	for _, m := range []proto.Message{&bootstrapv3.Bootstrap{}, &listenerv3.Listener{}} {
		fields := m.ProtoReflect().Descriptor().Fields()
		for i := range fields.Len() {
			keys[string(fields.Get(i).Name())] = true
			keys[fields.Get(i).JSONName()] = true
		}
	}
	return keys
}()

// notEnvoy recognises YAML that is not an Envoy bootstrap or listener at
// all (a Kubernetes manifest, an Istio resource, a Warden config), rather
// than reporting its first key as an unknown field.
func (c *checker) notEnvoy(top map[string]any) (Problem, bool) {
	const what = "not an Envoy bootstrap or listener: "
	const hint = "give warden envoy validate the bootstrap Envoy starts with (envoy -c FILE), or a listener"
	if top == nil {
		return withHint(problem(c.file, 1, what+"the top level is not a mapping"), hint), false
	}
	if kind, ok := top["kind"].(string); ok {
		if api, ok := top["apiVersion"].(string); ok {
			line, col := yamlpath.Find(&c.root, "kind")
			p := problem(c.file, line, fmt.Sprintf(what+"a Kubernetes manifest (apiVersion: %s, kind: %s)", api, kind))
			p.Col = col
			return withHint(p, "for Istio, check the mesh config with istioctl analyze; "+hint), false
		}
	}
	_, policy := top["policy"]
	_, identity := top["identity"]
	if policy && identity {
		return withHint(problem(c.file, 1, what+"a Warden config"), "check it with warden config validate FILE"), false
	}
	var unknown []string
	for k := range top {
		if !bootstrapKeys[k] {
			unknown = append(unknown, k)
		}
	}
	// A bootstrap with a misspelt key or two is reported key by key; YAML
	// most of whose keys are not Envoy's is something else.
	if len(top) > 0 && 2*len(unknown) > len(top) {
		slices.Sort(unknown)
		return withHint(problem(c.file, 1, what+"most of its top-level keys ("+strings.Join(unknown, ", ")+
			") are not Bootstrap or Listener fields (static_resources, admin, node, filter_chains, ...)"), hint), false
	}
	return Problem{}, true
}

// remove deletes the value at path (as pathAt spells it) from doc, so that
// decoding can go on past it; for an Any's unresolvable @type it removes
// the whole Any. It returns the path removed, or false when it cannot
// remove anything without shifting the positions of what follows.
func remove(doc any, path string, wholeAny bool) (string, bool) {
	type step struct {
		m   map[string]any
		key string
		at  string // path up to and including key
	}
	var steps []step
	cur, rest, at := doc, path, ""
	for rest != "" {
		switch v := cur.(type) {
		case map[string]any:
			// Keys may hold dots (typed_per_filter_config's filter names):
			// take the longest key that rest starts with.
			best := ""
			for k := range v {
				if len(k) > len(best) && strings.HasPrefix(rest, k) &&
					(len(rest) == len(k) || rest[len(k)] == '.' || rest[len(k)] == '[') {
					best = k
				}
			}
			if best == "" {
				return "", false
			}
			at = join(at, best)
			steps = append(steps, step{v, best, at})
			cur, rest = v[best], strings.TrimPrefix(rest[len(best):], ".")
		case []any:
			if !strings.HasPrefix(rest, "[") {
				return "", false
			}
			end := strings.IndexByte(rest, ']')
			i, err := strconv.Atoi(rest[1:max(end, 1)])
			if end < 0 || err != nil || i < 0 || i >= len(v) {
				return "", false
			}
			at += rest[:end+1]
			steps = append(steps, step{nil, "", at})
			cur, rest = v[i], strings.TrimPrefix(rest[end+1:], ".")
		default:
			return "", false
		}
	}
	if n := len(steps); wholeAny && n > 0 && steps[n-1].key == "@type" {
		steps = steps[:n-1]
	}
	if len(steps) == 0 || steps[len(steps)-1].m == nil {
		return "", false
	}
	last := steps[len(steps)-1]
	delete(last.m, last.key)
	return last.at, true
}

type checker struct {
	file     string
	root     yaml.Node
	problems []Problem
}

func (c *checker) add(path, format string, args ...any) {
	c.problems = append(c.problems, c.at(path, fmt.Sprintf(format, args...)))
}

// at is the problem msg of the field at path, placed in the YAML.
func (c *checker) at(path, msg string) Problem {
	line, col := yamlpath.Find(&c.root, path)
	return Problem{Field: Field{File: c.file, Line: line, Col: col, Path: path, Message: msg, LineOnly: true}}
}

func withHint(p Problem, hint string) Problem {
	p.Hint = hint
	return p
}

var protojsonPos = regexp.MustCompile(`\(line (\d+):(\d+)\): `)

// jsonProblem turns protojson's "(line 1:345): unknown field" into the YAML
// path and line of that offset.
func (c *checker) jsonProblem(js []byte, err error) Problem {
	// protobuf-go writes "proto:" then a space or, at random, a no-break
	// space (so that no one matches its messages exactly).
	msg := strings.TrimLeft(strings.TrimPrefix(err.Error(), "proto:"), " \u00a0")
	m := protojsonPos.FindStringSubmatchIndex(msg)
	if m == nil {
		return problem(c.file, 0, msg)
	}
	col, _ := strconv.Atoi(msg[m[4]:m[5]])
	text := msg[:m[0]] + msg[m[1]:]
	path := pathAt(js, col-1)
	return c.at(path, text)
}

// pathAt is the path of the value being read at byte offset off of
// compact JSON: "a.b[2].c".
func pathAt(js []byte, off int) string {
	type frame struct {
		obj   bool
		key   string
		index int
		want  bool // object: next string is a key
	}
	var stack []frame
	path := func() string {
		var sb strings.Builder
		for _, f := range stack {
			if f.obj {
				if f.key == "" {
					continue
				}
				if sb.Len() > 0 {
					sb.WriteByte('.')
				}
				sb.WriteString(f.key)
			} else {
				fmt.Fprintf(&sb, "[%d]", f.index)
			}
		}
		return sb.String()
	}
	dec := json.NewDecoder(strings.NewReader(string(js)))
	for {
		if int(dec.InputOffset()) > off {
			return path()
		}
		tok, err := dec.Token()
		if err != nil {
			return path()
		}
		valueDone := func() {
			if n := len(stack); n > 0 {
				if stack[n-1].obj {
					stack[n-1].want = true
				} else {
					stack[n-1].index++
				}
			}
		}
		switch t := tok.(type) {
		case json.Delim:
			switch t {
			case '{':
				stack = append(stack, frame{obj: true, want: true})
			case '[':
				stack = append(stack, frame{index: 0})
			case '}', ']':
				stack = stack[:len(stack)-1]
				valueDone()
			}
		default:
			if n := len(stack); n > 0 && stack[n-1].obj && stack[n-1].want {
				stack[n-1].key, _ = t.(string)
				stack[n-1].want = false
				continue
			}
			valueDone()
		}
	}
}

type validatorAll interface{ ValidateAll() error }

// validate runs a message's generated validation (which stops at Any).
func (c *checker) validate(path string, m proto.Message) {
	v, ok := m.(validatorAll)
	if !ok {
		return
	}
	if err := v.ValidateAll(); err != nil {
		for _, e := range fielderr.Flatten(err) {
			c.add(path, "%s", e)
		}
	}
}

// walk finds every Any, unpacks it and validates what is inside.
func (c *checker) walk(path string, m protoreflect.Message) {
	if a, ok := m.Interface().(*anypb.Any); ok {
		inner, err := a.UnmarshalNew()
		if err != nil {
			c.add(path, "%s: %v", a.GetTypeUrl(), err)
			return
		}
		c.validate(path, inner)
		c.walk(path, inner.ProtoReflect())
		return
	}
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.Kind() != protoreflect.MessageKind && fd.Kind() != protoreflect.GroupKind {
			return true
		}
		name := join(path, string(fd.Name()))
		switch {
		case fd.IsList():
			l := v.List()
			for i := range l.Len() {
				c.walk(fmt.Sprintf("%s[%d]", name, i), l.Get(i).Message())
			}
		case fd.IsMap():
			if fd.MapValue().Kind() != protoreflect.MessageKind {
				return true
			}
			v.Map().Range(func(k protoreflect.MapKey, mv protoreflect.Value) bool {
				c.walk(join(name, k.String()), mv.Message())
				return true
			})
		default:
			c.walk(name, v.Message())
		}
		return true
	})
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// loadChecks are Envoy's load-time checks that validation cannot express.
func (c *checker) loadChecks(listeners []*listenerv3.Listener, clusters []*clusterv3.Cluster, base string, haveClusters bool) {
	byName := map[string]*clusterv3.Cluster{}
	for i, cl := range clusters {
		if _, dup := byName[cl.GetName()]; dup {
			c.add(fmt.Sprintf("static_resources.clusters[%d].name", i), "cluster %q defined twice", cl.GetName())
		}
		byName[cl.GetName()] = cl
	}
	cluster := func(path, name, what string) *clusterv3.Cluster {
		cl, ok := byName[name]
		if haveClusters && !ok {
			c.add(path, "%s refers to cluster %q, which is not defined in static_resources.clusters", what, name)
		}
		return cl
	}
	for li, l := range listeners {
		lp := base
		if base != "" {
			lp = fmt.Sprintf("%s[%d]", base, li)
		}
		chains := l.GetFilterChains()
		if l.GetDefaultFilterChain() != nil {
			chains = append(chains, l.GetDefaultFilterChain())
		}
		for ci, fc := range chains {
			cp := join(lp, fmt.Sprintf("filter_chains[%d]", ci))
			if ci == len(l.GetFilterChains()) {
				cp = join(lp, "default_filter_chain")
			}
			for fi, f := range fc.GetFilters() {
				fp := join(cp, fmt.Sprintf("filters[%d]", fi))
				inner, err := f.GetTypedConfig().UnmarshalNew()
				if err != nil {
					continue // reported by walk
				}
				switch t := inner.(type) {
				case *hcmv3.HttpConnectionManager:
					c.checkHCM(join(fp, "typed_config"), t, cluster)
				case *netauthzv3.ExtAuthz:
					c.lintNetAuthz(join(fp, "typed_config"), t)
					c.checkGRPCCluster(join(fp, "typed_config.grpc_service.envoy_grpc.cluster_name"), t.GetGrpcService().GetEnvoyGrpc().GetClusterName(), cluster)
				case *tcpproxyv3.TcpProxy:
					if n := t.GetCluster(); n != "" {
						cluster(join(fp, "typed_config.cluster"), n, "tcp_proxy")
					}
				}
			}
		}
	}
}

type clusterFn func(path, name, what string) *clusterv3.Cluster

func (c *checker) checkHCM(p string, h *hcmv3.HttpConnectionManager, cluster clusterFn) {
	filters := h.GetHttpFilters()
	if len(filters) == 0 {
		c.add(join(p, "http_filters"), "no HTTP filters: the router filter must be last")
	}
	authorized := false // an ext_authz filter asks Warden
	for i, f := range filters {
		fp := fmt.Sprintf("%s.http_filters[%d]", p, i)
		inner, err := f.GetTypedConfig().UnmarshalNew()
		if err != nil {
			if f.GetTypedConfig() == nil {
				c.add(fp, "filter %q has no typed_config", f.GetName())
			}
			continue
		}
		_, isRouter := inner.(*routerv3.Router)
		if isRouter && i != len(filters)-1 {
			c.add(fp, "the router filter must be the last HTTP filter (filters after it never run)")
		}
		if !isRouter && i == len(filters)-1 {
			c.add(fp, "the last HTTP filter is %q: it must be the router (envoy.filters.http.router)", f.GetName())
		}
		if az, ok := inner.(*extauthzv3.ExtAuthz); ok {
			authorized = true
			c.lintAuthz(join(fp, "typed_config"), az)
			switch {
			case az.GetGrpcService() != nil:
				c.checkGRPCCluster(join(fp, "typed_config.grpc_service.envoy_grpc.cluster_name"), az.GetGrpcService().GetEnvoyGrpc().GetClusterName(), cluster)
			case az.GetHttpService() != nil:
				cluster(join(fp, "typed_config.http_service.server_uri.cluster"), az.GetHttpService().GetServerUri().GetCluster(), "ext_authz http_service")
			}
		}
	}
	if authorized {
		c.lintHCM(p, h)
	}
	for vi, vh := range h.GetRouteConfig().GetVirtualHosts() {
		for ri, r := range vh.GetRoutes() {
			rp := fmt.Sprintf("%s.route_config.virtual_hosts[%d].routes[%d].route", p, vi, ri)
			c.checkRoute(rp, r.GetRoute(), cluster)
		}
	}
}

func (c *checker) checkRoute(p string, r *routev3.RouteAction, cluster clusterFn) {
	if r == nil {
		return
	}
	if n := r.GetCluster(); n != "" {
		cluster(join(p, "cluster"), n, "route")
	}
	for i, w := range r.GetWeightedClusters().GetClusters() {
		cluster(fmt.Sprintf("%s.weighted_clusters.clusters[%d].name", p, i), w.GetName(), "route")
	}
}

// checkGRPCCluster: an ext_authz gRPC cluster must exist and speak HTTP/2.
func (c *checker) checkGRPCCluster(p, name string, cluster clusterFn) {
	if name == "" {
		return // google_grpc: Envoy's own client, no cluster
	}
	cl := cluster(p, name, "ext_authz grpc_service")
	if cl == nil || http2(cl) {
		return
	}
	c.add(p, "cluster %q is used for gRPC but does not speak HTTP/2: set typed_extension_protocol_options "+
		"envoy.extensions.upstreams.http.v3.HttpProtocolOptions with explicit_http_config.http2_protocol_options: {}", name)
}

func http2(cl *clusterv3.Cluster) bool {
	//lint:ignore SA1019 the deprecated field still configures HTTP/2
	if cl.GetHttp2ProtocolOptions() != nil {
		return true
	}
	a, ok := cl.GetTypedExtensionProtocolOptions()["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]
	if !ok {
		return false
	}
	var o httpv3.HttpProtocolOptions
	if a.UnmarshalTo(&o) != nil {
		return false
	}
	if o.GetExplicitHttpConfig().GetHttp2ProtocolOptions() != nil {
		return true
	}
	// use_downstream_protocol / auto_config may pick HTTP/1.1: not enough for gRPC.
	return false
}
