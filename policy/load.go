package policy

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/wardenauthz/warden/internal/methods"

	"github.com/cedar-policy/cedar-go"

	xast "github.com/cedar-policy/cedar-go/x/exp/ast"

	"github.com/cedar-policy/cedar-go/x/exp/schema"
	sast "github.com/cedar-policy/cedar-go/x/exp/schema/ast"
	"github.com/cedar-policy/cedar-go/x/exp/schema/resolved"
	"github.com/wardenauthz/warden/internal/fielderr"
	"github.com/wardenauthz/warden/internal/jsonlist"
)

// Source is where policies are read from: a directory of an fs.FS. Name is
// how the directory is named in errors (its path on disk, or "embedded:...").
type Source struct {
	FS   fs.FS
	Dir  string
	Name string
	// FullContext builds the whole Cedar context of SPEC §5 for every
	// decision, even the parts no policy of the set reads (which are
	// otherwise left out: see ctxNeeds). For where the context itself is
	// kept or shown.
	FullContext bool
	// Replayable keeps each decision's Cedar request in its Result
	// (Result.Logged) for replayable decision records; it implies
	// FullContext.
	Replayable bool
	// SkipErrors gives a forbid whose condition errors Cedar's own meaning
	// (ignored; policy.on_error: skip). By default it denies (ErrPolicy).
	SkipErrors bool
	// AllowUnrouted lets Cedar decide a request to a service that has
	// routes but matches none, as the route-less Action::"<METHOD>"
	// (policy.unrouted: allow_policies). By default it is denied
	// (ErrRouteUnknown) before any policy is evaluated.
	AllowUnrouted bool
}

// Files named in a policy directory.
const (
	SchemaFile   = "schema.cedarschema"
	EntitiesFile = "entities.json"
)

// Set is one loaded, immutable generation of policies, entities and routes.
type Set struct {
	policies []*compiled
	byID     map[cedar.PolicyID]*compiled
	index    *index
	entities *entityStore
	pcache   *principalCache // mapped principals (nil: none kept)
	routes   []*Route
	// foldLits: some route literal has an upper-case or non-ASCII letter,
	// so a path without one may still match it without case (routeFor).
	foldLits bool
	needs    *ctxNeeds // what of the context the policies can observe
	maxAges  []maxAge  // @step_up_max_age forbids, enforced on every allow
	names    map[cedar.EntityUID]string
	// replayable: keep each decision's Cedar request (Source.Replayable).
	replayable                bool
	skipErrors, allowUnrouted bool
	// userSchema is schema.cedarschema's declarations (nil without one),
	// for ModelSchema.
	userSchema     *sast.Schema
	userSchemaFile string
	// schema is the resolved model schema entities.json was read with
	// (nil without schema.cedarschema).
	schema *resolved.Schema
	// attached is Engine.Attach's value.
	attached any
}

// Attached is what the engine attached to this set (Engine.Attach), nil
// when nothing was.
func (s *Set) Attached() any { return s.attached }

// UIDString is uid.String(), precomputed for the set's actions (every
// decision logs its action; the quoting costs more than a map lookup).
func (s *Set) UIDString(uid cedar.EntityUID) string {
	if n, ok := s.names[uid]; ok {
		return n
	}
	return uid.String()
}

// Len is the number of policies.
func (s *Set) Len() int { return len(s.policies) }

// PolicyInfo describes one policy of a Set.
type PolicyInfo struct {
	ID       string
	Forbid   bool
	Position string // file:line:col
	Text     string // its source text, up to the next policy
}

// Policies lists the set's policies in file order.
func (s *Set) Policies() []PolicyInfo {
	out := make([]PolicyInfo, len(s.policies))
	for i, c := range s.policies {
		out[i] = PolicyInfo{ID: string(c.id), Forbid: c.forbid, Position: c.pos, Text: c.text}
	}
	return out
}

type compiled struct {
	id     cedar.PolicyID
	policy *cedar.Policy
	ast    *xast.Policy
	forbid bool
	pos    string // file:line:col
	// file, line, col and text (up to the next policy) locate the
	// expressions of a validation error.
	file      string
	line, col int
	text      string
	status    int    // @status, 0 when absent
	stepACR   string // @step_up_acr
	stepAge   int    // @step_up_max_age (seconds), -1 when absent
	order     int32
	// alone is Result.Reasons when this policy alone decides (shared by
	// those results: length and capacity 1, never written into).
	alone []string
}

func (c *compiled) stepUp() bool { return c.stepACR != "" || c.stepAge >= 0 }

// errorf is a problem of policy c, at its position.
func (c *compiled) errorf(format string, args ...any) *fielderr.Error {
	return place{c.file, c.line, c.col}.errorf(format, args...)
}

// Load reads and checks everything in src; it returns all problems at once
// (a fielderr.List: file:line:col: message), or a complete Set.
func Load(src Source, routeCfgs []RouteConfig) (*Set, error) {
	var errs fielderr.List
	routes, err := compileRoutes(routeCfgs)
	if err != nil {
		errs = append(errs, fielderr.From(err)...)
	}
	policyFiles, err := policyFilesOf(src)
	if err != nil {
		return nil, err
	}
	s := &Set{byID: map[cedar.PolicyID]*compiled{}, routes: routes}
	for _, r := range routes {
		for _, sg := range r.segs {
			s.foldLits = s.foldLits || sg.param == "" && mayFold(sg.lit)
		}
	}
	display := func(name string) string { return path.Join(src.Name, name) }
	for _, name := range policyFiles {
		b, err := fs.ReadFile(src.FS, path.Join(src.Dir, name))
		if err != nil {
			errs = append(errs, fileError(display(name), err))
			continue
		}
		errs = append(errs, s.addPolicies(display(name), b)...)
	}
	if len(policyFiles) == 0 {
		errs = append(errs, &fielderr.Error{File: src.Name, Message: "no *.cedar policy files"})
	}

	// The schema first: with one, entities.json is read as the Cedar CLI
	// reads it (entity-typed attributes are references).
	schemaB, schemaErr := fs.ReadFile(src.FS, path.Join(src.Dir, SchemaFile))
	var rs *resolved.Schema
	switch {
	case schemaErr == nil:
		if err := s.readSchema(display(SchemaFile), schemaB); err != nil {
			errs = append(errs, fielderr.From(err)...)
		} else if sc, err := s.ModelSchema(); err == nil {
			rs, _ = sc.Resolve() // its error is reported by validateSchema
		}
	case !errors.Is(schemaErr, fs.ErrNotExist):
		errs = append(errs, fileError(display(SchemaFile), schemaErr))
	}

	// Static entities, then Warden's action entities (merged into them).
	sb := newStoreBuilder()
	var entPos []entityPos
	if b, err := fs.ReadFile(src.FS, path.Join(src.Dir, EntitiesFile)); err == nil {
		// The entities that could be read are validated too (all
		// problems at once); any error fails the load.
		pos, err := parseEntitiesInto(display(EntitiesFile), b, rs, sb.add)
		if err != nil {
			errs = append(errs, fielderr.From(err)...)
		}
		entPos = pos
	} else if !errors.Is(err, fs.ErrNotExist) {
		errs = append(errs, fileError(display(EntitiesFile), err))
	}
	s.schema = rs
	addActionEntities(sb, routes)
	s.entities = sb.build()
	s.pcache = newPrincipalCache()
	s.names = map[cedar.EntityUID]string{}
	for uid := range s.entities.all() {
		if uid.Type == actionType {
			s.names[uid] = uid.String()
		}
	}

	switch {
	case schemaErr == nil && s.userSchema != nil:
		errs = append(errs, s.validateSchema(entPos)...)
	case errors.Is(schemaErr, fs.ErrNotExist):
		errs = append(errs, s.checkActions()...)
	}
	errs = append(errs, s.checkHead(routes)...)
	if len(errs) > 0 {
		return nil, errs
	}
	s.index = buildIndex(s.policies)
	s.maxAges = maxAges(s.policies)
	s.needs = fullContext
	s.replayable = src.Replayable
	s.skipErrors, s.allowUnrouted = src.SkipErrors, src.AllowUnrouted
	if !src.FullContext && !src.Replayable {
		s.needs = contextNeeds(s.policies)
	}
	return s, nil
}

// fileError is file's read error err.
func fileError(file string, err error) *fielderr.Error {
	return &fielderr.Error{File: file, Message: err.Error(), Err: err}
}

// policyFilesOf lists the *.cedar files of src's directory and its
// subdirectories, as paths relative to it, in lexical order. Names starting
// with "." are skipped, directories too: a Kubernetes ConfigMap volume keeps
// its real files in ..data and ..TIMESTAMP beside the links to them, which
// must not be read twice.
func policyFilesOf(src Source) ([]string, error) {
	var files []string
	err := fs.WalkDir(src.FS, src.Dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == src.Dir {
				return err
			}
			return fmt.Errorf("%s: %w", path.Join(src.Name, rel(src.Dir, p)), err)
		}
		if p != src.Dir && strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if !d.IsDir() && strings.HasSuffix(d.Name(), ".cedar") {
			files = append(files, rel(src.Dir, p))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("policy directory %s: %w", src.Name, err)
	}
	sort.Strings(files)
	return files, nil
}

// rel is p relative to dir (p is dir or below it, as fs.WalkDir gives it).
func rel(dir, p string) string {
	if dir == "." {
		return p
	}
	return strings.TrimPrefix(strings.TrimPrefix(p, dir), "/")
}

// addPolicies parses one file and checks ids and annotations.
func (s *Set) addPolicies(file string, b []byte) fielderr.List {
	list, err := cedar.NewPolicyListFromBytes(file, b)
	if err != nil {
		return fielderr.List{cedarParseError(file, b, err)}
	}
	var errs fielderr.List
	for i, p := range list {
		pos := p.Position()
		end := len(b)
		if i+1 < len(list) {
			end = list[i+1].Position().Offset
		}
		text := ""
		if pos.Offset >= 0 && pos.Offset <= end && end <= len(b) {
			text = string(b[pos.Offset:end])
		}
		c := &compiled{policy: p, ast: (*xast.Policy)(p.AST()), forbid: p.Effect() == cedar.Forbid, stepAge: -1,
			pos: fmt.Sprintf("%s:%d:%d", file, pos.Line, pos.Column), order: int32(len(s.policies)),
			file: file, line: pos.Line, col: pos.Column, text: text}
		bad := func(format string, args ...any) {
			errs = append(errs, c.errorf(format, args...))
		}
		ann := p.Annotations()
		id, ok := ann["id"]
		switch {
		case !ok:
			bad(`policy has no @id("...") annotation`)
			continue
		case id == "":
			bad(`@id must not be empty`)
			continue
		}
		c.id = cedar.PolicyID(id)
		c.alone = []string{string(id)}
		if prev, dup := s.byID[c.id]; dup {
			bad("duplicate @id(%q), first used at %s", id, prev.pos)
			continue
		}
		if v, ok := ann["status"]; ok {
			n, err := strconv.Atoi(string(v))
			switch {
			case !c.forbid:
				bad("@status applies to forbid policies only")
			case err != nil || n < 400 || n > 499:
				bad("@status(%q): must be a 4xx HTTP status", v)
			default:
				c.status = n
			}
		}
		if v, ok := ann["step_up_acr"]; ok {
			if !c.forbid {
				bad("@step_up_acr applies to forbid policies only")
			} else if v == "" || strings.ContainsAny(string(v), "\"\\") {
				bad("@step_up_acr(%q): must be a non-empty acr value without quotes", v)
			}
			c.stepACR = string(v)
		}
		if v, ok := ann["step_up_max_age"]; ok {
			n, err := strconv.Atoi(string(v))
			if !c.forbid {
				bad("@step_up_max_age applies to forbid policies only")
			} else if err != nil || n < 0 {
				bad("@step_up_max_age(%q): must be a whole number of seconds", v)
			}
			c.stepAge = n
		}
		s.byID[c.id] = c
		s.policies = append(s.policies, c)
	}
	return errs
}

// cedarParseError turns cedar-go's "parser error: parse error at <input>:3:24
// ...", the only form it gives them in, into a field error at 3:24 of file.
// At the end of the file, the error is where the bracket that was never
// closed opens.
func cedarParseError(file string, b []byte, err error) *fielderr.Error {
	at := func(line, col int, format string, args ...any) *fielderr.Error {
		return &fielderr.Error{File: file, Line: line, Col: col, Message: fmt.Sprintf(format, args...)}
	}
	msg := strings.TrimPrefix(err.Error(), "parser error: ")
	msg = strings.TrimPrefix(msg, "parse error at ")
	m := cedarPos.FindStringSubmatch(msg)
	if m == nil {
		return &fielderr.Error{File: file, Message: msg}
	}
	line, _ := strconv.Atoi(m[1])
	col, _ := strconv.Atoi(m[2])
	text := m[3]
	if strings.HasPrefix(text, `"": `) || strings.Contains(text, "got  want") || strings.Contains(text, "unexpected EOF") {
		if l, c, open, ok := unclosed(b); ok {
			return at(l, c, "%q is never closed: the file ends before its %q", open, closer[open])
		}
		return at(line, col, "unexpected end of file (%s)", text)
	}
	if g := exactGot.FindStringSubmatch(text); g != nil {
		// A policy that starts while a bracket is open: the bracket is
		// the mistake.
		if (g[1] == "@" || g[1] == "permit" || g[1] == "forbid") && (g[2] == "}" || g[2] == ")" || g[2] == "]") {
			pl, pc := line, col
			if l, c, ok := tokenBefore(b, line, col, g[1]); ok {
				pl, pc = l, c
			}
			if off, ok := offsetOf(b, pl, pc); ok {
				if l, c, open, ok := unclosed(b[:off]); ok {
					return at(l, c, "%q is never closed: the next policy starts at %d:%d", open, pl, pc)
				}
			}
		}
		// cedar-go may name the token after the one it did not want.
		if l, c, ok := tokenBefore(b, line, col, g[1]); ok {
			line, col = l, c
		}
		return at(line, col, "got %q, want %q", g[1], g[2])
	}
	return at(line, col, "%s", text)
}

// cedarPos is cedar-go's position and message: "<input>:L:C msg".
var cedarPos = regexp.MustCompile(`(?s)^<input>:(\d+):(\d+) (.*)$`)

var exactGot = regexp.MustCompile(`^"(?:[^"\\]|\\.)*": exact got (\S+) want (\S+)$`)

// tokenBefore finds tok just before position line:col of b (whitespace
// and comments between), and returns its position.
func tokenBefore(b []byte, line, col int, tok string) (int, int, bool) {
	off, ok := offsetOf(b, line, col)
	if !ok {
		return 0, 0, false
	}
	end := off
	for end > 0 {
		switch b[end-1] {
		case ' ', '\t', '\r', '\n':
			end--
			continue
		}
		break
	}
	start := end - len(tok)
	if start < 0 || string(b[start:end]) != tok {
		return 0, 0, false
	}
	line, col = jsonlist.LineCol(b, start)
	return line, col, true
}

// offsetOf is the byte offset of position line:col in b.
func offsetOf(b []byte, line, col int) (int, bool) {
	if line < 1 || col < 1 {
		return 0, false
	}
	off := 0
	for i := 1; i < line; i++ {
		j := bytes.IndexByte(b[off:], '\n')
		if j < 0 {
			return 0, false
		}
		off += j + 1
	}
	return min(off+col-1, len(b)), true
}

var closer = map[string]string{"{": "}", "(": ")", "[": "]"}

// unclosed finds the innermost bracket of Cedar text b still open at its
// end (strings and comments skipped).
func unclosed(b []byte) (line, col int, open string, ok bool) {
	type opener struct {
		ch        byte
		line, col int
	}
	var stack []opener
	line, col = 1, 1
	for i := 0; i < len(b); i++ {
		ch := b[i]
		switch {
		case ch == '"':
			for i++; i < len(b) && b[i] != '"'; i++ {
				if b[i] == '\\' {
					i, col = i+1, col+1
				}
				if i < len(b) && b[i] == '\n' {
					line, col = line+1, 0
				}
				col++
			}
			col++
		case ch == '/' && i+1 < len(b) && b[i+1] == '/':
			for i < len(b) && b[i] != '\n' {
				i++
			}
			line, col = line+1, 0
		case ch == '{' || ch == '(' || ch == '[':
			stack = append(stack, opener{ch, line, col})
		case ch == '}' || ch == ')' || ch == ']':
			if n := len(stack); n > 0 {
				stack = stack[:n-1]
			}
		case ch == '\n':
			line, col = line+1, 0
		}
		col++
	}
	if len(stack) == 0 {
		return 0, 0, "", false
	}
	o := stack[len(stack)-1]
	return o.line, o.col, string(o.ch), true
}

// parseEntities reads the Cedar entities JSON format without a schema,
// naming the line, uid and attribute of each problem.
func parseEntities(file string, b []byte) (cedar.EntityMap, error) {
	ents, _, err := parseEntitiesWith(file, b, nil)
	return ents, err
}

// Action entities Warden defines: every method action is in read or write,
// and every route action in its method action and in read or write.
var (
	actionType = cedar.EntityType("Action")
	readAction = cedar.NewEntityUID(actionType, "read")
	writeAct   = cedar.NewEntityUID(actionType, "write")
	stdMethods = []string{"GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE"}
	// anyMethods are the route actions of a method "*" route: a HEAD
	// request is decided as GET (actionMethod), so there is no HEAD one.
	anyMethods = []string{"GET", "OPTIONS", "POST", "PUT", "PATCH", "DELETE"}
)

func methodGroup(m string) cedar.EntityUID {
	if methods.Read(m) {
		return readAction
	}
	return writeAct
}

func addActionEntities(sb *storeBuilder, routes []*Route) {
	add := sb.addParents
	add(readAction)
	add(writeAct)
	methods := slices.Clone(stdMethods)
	for _, r := range routes {
		if r.Method != "*" && !slices.Contains(methods, r.Method) {
			methods = append(methods, r.Method)
		}
	}
	for _, m := range methods {
		add(cedar.NewEntityUID(actionType, cedar.String(m)), methodGroup(m))
	}
	for _, r := range routes {
		ms := []string{r.Method}
		if r.Method == "*" {
			ms = anyMethods
		}
		for _, m := range ms {
			mu := cedar.NewEntityUID(actionType, cedar.String(m))
			add(routeAction(m, r.Template), mu, methodGroup(m))
		}
	}
}

// actionMethod is the method of the action a request with method is
// decided as, on route (nil: none). HEAD is GET without the body: a HEAD
// request is decided as the GET it reads (so a forbid on GET applies to
// it), except on a route declared for HEAD alone.
func actionMethod(method string, route *Route) string {
	if route != nil && route.Method != "*" {
		return route.Method
	}
	if method == "HEAD" {
		return "GET"
	}
	return method
}

// checkHead refuses policies that name Action::"HEAD": no request is
// decided as it (actionMethod), so such a policy would never apply,
// unless a route is declared for HEAD alone.
func (s *Set) checkHead(routes []*Route) fielderr.List {
	for _, r := range routes {
		if r.Method == "HEAD" {
			return nil
		}
	}
	head := cedar.NewEntityUID(actionType, "HEAD")
	var errs fielderr.List
	check := func(c *compiled, uid cedar.EntityUID) {
		if uid == head {
			errs = append(errs, c.errorf(`policy %q: no request is decided as Action::"HEAD": a HEAD request is decided as the GET it reads (Action::"GET", or its GET route's action)`, c.id))
		}
	}
	s.eachScopeAction(check)
	return errs
}

// eachScopeAction calls f with each policy and each action its scope
// names (action == A, action in A, action in [A, ...]), in file order.
func (s *Set) eachScopeAction(f func(c *compiled, uid cedar.EntityUID)) {
	for _, c := range s.policies {
		switch a := c.ast.Action.(type) {
		case xast.ScopeTypeEq:
			f(c, a.Entity)
		case xast.ScopeTypeIn:
			f(c, a.Entity)
		case xast.ScopeTypeInSet:
			for _, e := range a.Entities {
				f(c, e)
			}
		}
	}
}

func routeAction(method, template string) cedar.EntityUID {
	return cedar.NewEntityUID(actionType, cedar.String(method+" "+template))
}

// checkActions, without a schema, catches misspelt actions: every action in
// a policy scope must be one Warden defines or one in entities.json.
func (s *Set) checkActions() fielderr.List {
	var errs fielderr.List
	check := func(c *compiled, uid cedar.EntityUID) {
		if !s.entities.has(uid) {
			errs = append(errs, c.errorf("policy %q: unknown action %s (not a route action, a method, read, write, or in %s)", c.id, uid, EntitiesFile))
		}
	}
	s.eachScopeAction(check)
	return errs
}

// readSchema parses schema.cedarschema (the user's declarations).
func (s *Set) readSchema(file string, b []byte) error {
	var sc schema.Schema
	sc.SetFilename(file)
	if err := sc.UnmarshalCedar(b); err != nil {
		return schemaParseError(file, err)
	}
	s.userSchema, s.userSchemaFile = sc.AST(), file
	return nil
}

// schemaParseError turns cedar-go's "file:3:24: msg" (or "<input>:3:24:
// msg"), the only form it gives a schema's parse error in, into a field
// error at 3:24 of file.
func schemaParseError(file string, err error) *fielderr.Error {
	msg := strings.Replace(err.Error(), "<input>", file, 1)
	if rest, ok := strings.CutPrefix(msg, file+":"); ok {
		if m := schemaPos.FindStringSubmatch(rest); m != nil {
			line, _ := strconv.Atoi(m[1])
			col, _ := strconv.Atoi(m[2])
			return &fielderr.Error{File: file, Line: line, Col: col, Message: m[3]}
		}
	}
	return &fielderr.Error{Message: msg}
}

var schemaPos = regexp.MustCompile(`(?s)^(\d+):(\d+): (.*)$`)

// validateSchema validates policies and entities against the schema merged
// into Warden's model (ModelSchema): the user's declarations replace
// Warden's of the same name. Each entity's problems name its place.
func (s *Set) validateSchema(pos []entityPos) fielderr.List {
	v, err := s.modelValidator()
	if err != nil {
		return fielderr.From(err)
	}
	errs := s.validatePolicies(v)
	for _, p := range pos {
		if p.uid.Type == actionType {
			continue
		}
		e, _ := s.entities.Get(p.uid)
		if err := v.Entity(e); err != nil {
			errs = append(errs, p.at.errorf("entity %s: %v", p.uid, plainCedarError(err)))
		}
	}
	return errs
}
