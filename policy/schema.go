package policy

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/cedar-policy/cedar-go/types"
	"github.com/cedar-policy/cedar-go/x/exp/schema"
	sast "github.com/cedar-policy/cedar-go/x/exp/schema/ast"
	"github.com/cedar-policy/cedar-go/x/exp/schema/resolved"
	"github.com/cedar-policy/cedar-go/x/exp/schema/validate"

	"github.com/wardenauthz/warden/internal/fielderr"
)

// The common types of the model a user's schema.cedarschema may declare to
// add the attributes their policies read (each a record; undeclared, it is
// empty, and reading any attribute of it is a validation error):
//
//	type Headers = {"x-tenant-id"?: String};        // context.request.headers
//	type Query = {"page"?: Set<String>};            // context.request.query
//	type Extensions = {"tier"?: String};            // context.extensions
//	type TokenClaims = {"tenant"?: String};         // context.token, besides the registered claims
//
// Any entity type, common type or action the user's schema declares
// replaces Warden's of the same name (so `entity User in [Group] {dept:
// String};` gives users an attribute, `entity Order in [Service] {owner:
// User};` a route's resource one).
var userRecordTypes = []string{"Headers", "Query", "Extensions", "TokenClaims"}

// principalTypes are the principal types Warden builds (identity kinds).
var principalTypes = []sast.EntityTypeRef{"User", "Client", "Workload", "Anonymous", "ApiKey"}

// ModelSchema is the Cedar schema of Warden's model for the set's routes
// (principal types, the routes' resource types, every method and route
// action with its read or write parent, the context as Warden builds it),
// merged with the policy directory's schema.cedarschema, if any, whose
// declarations replace Warden's of the same name.
func (s *Set) ModelSchema() (*schema.Schema, error) {
	w := &sast.Schema{Entities: sast.Entities{}, Actions: sast.Actions{}, CommonTypes: sast.CommonTypes{}, Namespaces: sast.Namespaces{}}
	opt := func(t sast.IsType) sast.Attribute { return sast.Attribute{Type: t, Optional: true} }
	req := func(t sast.IsType) sast.Attribute { return sast.Attribute{Type: t} }
	str := sast.String()

	w.Entities["Group"] = sast.Entity{ParentTypes: []sast.EntityTypeRef{"Group"}}
	for _, p := range principalTypes {
		e := sast.Entity{}
		switch p {
		case "Workload":
			e.Shape = sast.RecordType{"trust_domain": req(str), "namespace": opt(str), "service_account": opt(str)}
			e.ParentTypes = []sast.EntityTypeRef{"Group"}
		case "User", "Client", "ApiKey": // an API key's attributes: declare entity ApiKey in [Group] {...};
			e.ParentTypes = []sast.EntityTypeRef{"Group"}
		}
		w.Entities[sast.Ident(p)] = e
	}
	w.Entities["Service"] = sast.Entity{}
	var resourceTypes []sast.EntityTypeRef
	for _, r := range s.routes {
		if !r.hasRes || slices.Contains(resourceTypes, sast.EntityTypeRef(r.resType)) {
			continue
		}
		resourceTypes = append(resourceTypes, sast.EntityTypeRef(r.resType))
		ent := sast.Entity{ParentTypes: []sast.EntityTypeRef{"Service"}}
		if ns, name, ok := cutLast(string(r.resType), "::"); ok {
			n := w.Namespaces[types.Path(ns)]
			if n.Entities == nil {
				n.Entities = sast.Entities{}
			}
			n.Entities[sast.Ident(name)] = ent
			w.Namespaces[types.Path(ns)] = n
			continue
		}
		w.Entities[sast.Ident(r.resType)] = ent
	}
	for _, n := range userRecordTypes {
		w.CommonTypes[sast.Ident(n)] = sast.CommonType{Type: sast.RecordType{}}
	}

	token := sast.RecordType{
		"iss": req(str), "sub": opt(str), "client_id": opt(str), "acr": opt(str),
		"aud": req(sast.Set(str)), "scope": req(sast.Set(str)), "groups": req(sast.Set(str)), "amr": req(sast.Set(str)),
		"iat": opt(sast.Long()), "exp": opt(sast.Long()), "auth_time": opt(sast.Long()),
		"iat_datetime": opt(sast.Datetime()), "exp_datetime": opt(sast.Datetime()), "auth_time_datetime": opt(sast.Datetime()),
		// The confirmation of a sender-constrained token (RFC 7800): Warden
		// refuses a cnf with any other member.
		"cnf": opt(sast.RecordType{"jkt": opt(str), "x5t#S256": opt(str)}),
	}
	// context builds the context record of an action: route is nil for a
	// route-less method action.
	context := func(route *Route) sast.RecordType {
		request := sast.RecordType{
			// Envoy always sends these.
			"method": req(str), "path": req(str), "host": req(str), "headers": req(sast.Type("Headers")),
			"scheme": opt(str), "protocol": opt(str), "id": opt(str), "query": opt(sast.Type("Query")),
		}
		c := sast.RecordType{
			"request": req(request),
			"source":  req(sast.RecordType{"ip": req(sast.IPAddr()), "port": req(sast.Long())}),
			"now":     req(sast.Datetime()),
			"token":   opt(sast.Type("Token")),
			// kind: jwt, dpop, mtls_bound, introspected or api_key.
			"credential": opt(sast.RecordType{"kind": req(str)}),
			"workload": opt(sast.RecordType{"id": req(str), "trust_domain": req(str),
				"namespace": opt(str), "service_account": opt(str)}),
			"extensions": opt(sast.Type("Extensions")),
			"route":      opt(sast.RecordType{"service": opt(str), "template": opt(str)}),
		}
		if route != nil {
			c["route"] = req(sast.RecordType{"service": opt(str), "template": req(str)})
			params := sast.RecordType{}
			for _, sg := range route.segs {
				if sg.param != "" {
					params[types.String(sg.param)] = req(str)
				}
			}
			if route.rest != "" {
				params[types.String(route.rest)] = req(str)
			}
			if len(params) > 0 {
				c["path_params"] = req(params)
			}
		}
		return c
	}
	group := func(m string) []sast.ParentRef {
		return []sast.ParentRef{sast.ParentRefFromID(types.String(methodGroup(m).ID))}
	}
	w.Actions["read"] = sast.Action{}
	w.Actions["write"] = sast.Action{}
	methods := append(slices.Clone(stdMethods), "CONNECT") // CONNECT: Envoy's TCP filter
	for _, r := range s.routes {
		if r.Method != "*" && !slices.Contains(methods, r.Method) {
			methods = append(methods, r.Method)
		}
	}
	for _, m := range methods {
		w.Actions[types.String(m)] = sast.Action{Parents: group(m), AppliesTo: &sast.AppliesTo{
			Principals: principalTypes, Resources: []sast.EntityTypeRef{"Service"}, Context: context(nil)}}
	}
	for _, r := range s.routes {
		ms := []string{r.Method}
		if r.Method == "*" {
			ms = anyMethods
		}
		res := sast.EntityTypeRef("Service")
		if r.hasRes {
			res = sast.EntityTypeRef(r.resType)
		}
		for _, m := range ms {
			id := types.String(routeAction(m, r.Template).ID)
			if _, dup := w.Actions[id]; dup {
				continue
			}
			w.Actions[id] = sast.Action{
				Parents:   append(group(m), sast.ParentRefFromID(types.String(m))),
				AppliesTo: &sast.AppliesTo{Principals: principalTypes, Resources: []sast.EntityTypeRef{res}, Context: context(r)},
			}
		}
	}

	// The user's declarations replace Warden's.
	if u := s.userSchema; u != nil {
		if ct, ok := u.CommonTypes["TokenClaims"]; ok {
			rec, ok := ct.Type.(sast.RecordType)
			if !ok {
				return nil, fmt.Errorf("%s: type TokenClaims must be a record", s.userSchemaFile)
			}
			for k, a := range rec {
				if _, registered := token[k]; !registered {
					token[k] = a
				}
			}
		}
		for k, v := range u.Entities {
			w.Entities[k] = v
		}
		for k, v := range u.CommonTypes {
			w.CommonTypes[k] = v
		}
		for k, v := range u.Actions {
			w.Actions[k] = v
		}
		if w.Enums == nil && len(u.Enums) > 0 {
			w.Enums = sast.Enums{}
		}
		for k, v := range u.Enums {
			delete(w.Entities, k)
			w.Enums[k] = v
		}
		for p, un := range u.Namespaces {
			n := w.Namespaces[p]
			if n.Entities == nil {
				n.Entities = sast.Entities{}
			}
			for k, v := range un.Entities {
				n.Entities[k] = v
			}
			n.Annotations, n.Enums, n.Actions, n.CommonTypes = un.Annotations, un.Enums, un.Actions, un.CommonTypes
			w.Namespaces[p] = n
		}
	}
	w.CommonTypes["Token"] = sast.CommonType{Type: token}
	return schema.NewSchemaFromAST(w), nil
}

func cutLast(s, sep string) (before, after string, ok bool) {
	i := strings.LastIndex(s, sep)
	if i < 0 {
		return s, "", false
	}
	return s[:i], s[i+len(sep):], true
}

// ValidateModel validates every policy against ModelSchema: a misspelt or
// undeclared attribute, a type error, or an optional attribute read without
// a `has` guard is an error at file:line:col of the first access of that
// attribute in the policy (the policy's own position when none is found).
// This is what `warden policy validate` and `warden policy test` check; a
// running Warden loads policies without it.
func (s *Set) ValidateModel() []error {
	v, err := s.modelValidator()
	if err != nil {
		return []error{err}
	}
	return s.validatePolicies(v).Unwrap()
}

// modelValidator is a validator for ModelSchema.
func (s *Set) modelValidator() (*validate.Validator, error) {
	sc, err := s.ModelSchema()
	if err != nil {
		return nil, err
	}
	res, err := sc.Resolve()
	if err != nil {
		file := s.userSchemaFile
		if file == "" {
			file = "warden policy schema"
		}
		return nil, fmt.Errorf("%s: with Warden's model: %v", file, err)
	}
	if s.userSchema != nil {
		return validate.New(res), nil // strict, as Cedar's validator is by default
	}
	// Warden's model alone: permissive, so that a set of principals of
	// several types ([User::"a", Client::"b"].contains(principal), as
	// access-review suggests) validates. Attribute existence and the has
	// guards of optional attributes are checked as in strict mode.
	return validate.New(res, validate.WithPermissive()), nil
}

// validatePolicies validates every policy with v, each error located.
func (s *Set) validatePolicies(v *validate.Validator) fielderr.List {
	var errs fielderr.List
	for _, c := range s.policies {
		if err := v.Policy(string(c.id), c.ast); err != nil {
			// One message per problem: not one per action, nor one per
			// entity type an unconstrained principal or resource may be.
			var msgs []string
			types := map[string][]string{}
			for _, e := range fielderr.Flatten(err) {
				msg := strings.TrimPrefix(e.Error(), fmt.Sprintf("for policy `%s`, ", c.id))
				msg = forAction.ReplaceAllString(msg, "")
				msg = internalTypes.Replace(msg)
				key := msg
				var typ string
				if m := attrOnType.FindStringSubmatch(msg); m != nil {
					key, typ = m[1]+"\x00"+m[3], m[2]
				}
				if _, seen := types[key]; !seen {
					msgs = append(msgs, key)
				}
				if typ != "" && !slices.Contains(types[key], typ) {
					types[key] = append(types[key], typ)
				} else if _, ok := types[key]; !ok {
					types[key] = nil
				}
			}
			// Then messages that differ only in which of Warden's
			// principal types they name ("the types User and a are not
			// compatible", then Client, ...): once, naming them all.
			byShape := map[string][]string{}
			var shapes []string
			for _, key := range msgs {
				shape := key
				for _, p := range principalTypes {
					shape = principalWord(string(p)).ReplaceAllString(shape, "\x01")
				}
				if _, ok := byShape[shape]; !ok {
					shapes = append(shapes, shape)
				}
				byShape[shape] = append(byShape[shape], key)
			}
			msgs = msgs[:0]
			for _, shape := range shapes {
				keys := byShape[shape]
				if len(keys) > 1 && !strings.Contains(keys[0], "\x00") {
					var named []string
					for _, p := range principalTypes {
						if strings.Contains(strings.Join(keys, "\n"), string(p)) {
							named = append(named, string(p))
						}
					}
					msgs = append(msgs, keys[0]+" (and likewise for "+strings.Join(named[1:], ", ")+": the scope allows each of them as the principal; constrain it, as in `principal is "+named[0]+"`)")
					types[msgs[len(msgs)-1]] = nil
					continue
				}
				msgs = append(msgs, keys...)
			}
			for _, key := range msgs {
				msg := key
				if before, after, ok := strings.Cut(key, "\x00"); ok {
					ts := types[key]
					if len(ts) == 1 {
						msg = before + " on entity type `" + ts[0] + "`" + after
					} else {
						msg = before + " on entity types `" + strings.Join(ts, "`, `") + "`" + after +
							" (the scope allows each of them: constrain it, as in `principal is " + ts[0] + "`, or guard the access with `is`)"
					}
				}
				line, col := c.locate(msg)
				errs = append(errs, place{c.file, line, col}.errorf("policy %q: %s", c.id, msg))
			}
		}
	}
	return errs
}

// principalWord matches a principal type's name as a word.
func principalWord(name string) *regexp.Regexp {
	return principalWords[name]
}

var principalWords = func() map[string]*regexp.Regexp {
	m := map[string]*regexp.Regexp{}
	for _, p := range principalTypes {
		m[string(p)] = regexp.MustCompile(`\b` + string(p) + `\b`)
	}
	return m
}()

// internalTypes are the validator's names of types no schema writes.
var internalTypes = strings.NewReplacer("__cedar::internal::AnyEntity", "an entity", "__cedar::internal::OpenRecord{}", "a record", "__cedar::", "")

// attrOnType is a validator message naming an entity type.
var attrOnType = regexp.MustCompile("^(.*) on entity type `([^`]+)`(.*)$")

var forAction = regexp.MustCompile(` for Action::"(?:[^"\\]|\\.)*"`)

var attrInMsg = regexp.MustCompile("attribute `([^`]+)`")

// locate is the line and column of the first access in c's text of the attribute
// an error message names (its last path element, as `.name` or
// `["name"]`), else c's own position.
func (c *compiled) locate(msg string) (line, col int) {
	m := attrInMsg.FindStringSubmatch(msg)
	if c.text == "" {
		return c.line, c.col
	}
	if m == nil {
		return c.conditionPos()
	}
	name := m[1]
	if i := strings.LastIndexByte(name, '.'); i >= 0 {
		name = name[i+1:]
	}
	best := -1
	for _, pat := range []string{"." + name, `["` + name + `"]`} {
		for from := 0; from < len(c.text); {
			j := strings.Index(c.text[from:], pat)
			if j < 0 {
				break
			}
			j += from
			end := j + len(pat)
			if pat[0] == '.' && end < len(c.text) && isIdentByte(c.text[end]) {
				from = end
				continue
			}
			if best < 0 || j < best {
				best = j
			}
			break
		}
	}
	if best < 0 {
		return c.line, c.col
	}
	return c.posAt(best)
}

var conditionRE = regexp.MustCompile(`\b(?:permit|forbid)\s*\(|\b(?:when|unless)\s*\{\s*`)

// conditionPos is the line and column of the first condition of c (the start of
// its expression), where a type error the validator does not place more
// precisely is; c's own position when it has none.
func (c *compiled) conditionPos() (line, col int) {
	locs := conditionRE.FindAllStringIndex(c.text, -1)
	if len(locs) < 2 || !strings.HasSuffix(strings.TrimSpace(c.text[locs[0][0]:locs[0][1]]), "(") {
		return c.line, c.col
	}
	at := locs[1][1]
	return c.posAt(at)
}

// posAt is the line and column of byte offset off in c's text (columns
// count characters).
func (c *compiled) posAt(off int) (line, col int) {
	line, col = c.line, c.col
	for _, ch := range c.text[:off] {
		if ch == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
	}
	return line, col
}

func isIdentByte(b byte) bool {
	return b == '_' || b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9'
}

// RequestValidator checks Cedar requests (a `warden policy test` in the
// Cedar CLI's format) against ModelSchema: the action is declared, and the
// principal and resource are of types declared for it, so that a test of
// an action or type that cannot occur is an error, not a quiet pass. With
// the policy directory's own schema the context is checked too, as the
// Cedar CLI does with --schema; with Warden's model alone a test may give
// only the part of the context its policies read.
func (s *Set) RequestValidator() (func(types.Request) error, error) {
	sc, err := s.ModelSchema()
	if err != nil {
		return nil, err
	}
	res, err := sc.Resolve()
	if err != nil {
		return nil, err
	}
	if s.userSchema != nil {
		return validate.New(res).Request, nil
	}
	return func(req types.Request) error {
		a, ok := res.Actions[req.Action]
		if !ok {
			return fmt.Errorf("action %s is not declared: Warden's actions are its routes' (%s), the methods' (Action::\"GET\") and Action::\"read\" and \"write\" (see warden policy schema)", req.Action, `Action::"GET /orders/{id}"`)
		}
		for _, e := range []struct {
			role string
			t    types.EntityType
			of   []types.EntityType
		}{{"principal", req.Principal.Type, appliesTo(a, true)}, {"resource", req.Resource.Type, appliesTo(a, false)}} {
			if !slices.Contains(e.of, e.t) {
				return fmt.Errorf("%s type %s is not one %s applies to (%s)", e.role, e.t, req.Action, joinTypes(e.of))
			}
		}
		return nil
	}, nil
}

func appliesTo(a resolved.Action, principal bool) []types.EntityType {
	if a.AppliesTo == nil {
		return nil
	}
	if principal {
		return a.AppliesTo.Principals
	}
	return a.AppliesTo.Resources
}

func joinTypes(ts []types.EntityType) string {
	if len(ts) == 0 {
		return "none"
	}
	s := make([]string, len(ts))
	for i, t := range ts {
		s[i] = string(t)
	}
	slices.Sort(s)
	return strings.Join(s, ", ")
}
