package policy

import (
	"strings"
	"testing/fstest"

	"github.com/cedar-policy/cedar-go/types"
	"github.com/cedar-policy/cedar-go/x/exp/schema"
	sast "github.com/cedar-policy/cedar-go/x/exp/schema/ast"
)

// CheckRoutes reports what Load would refuse in a route table (bad
// templates, shadowed routes), all at once.
func CheckRoutes(cfgs []RouteConfig) error {
	_, err := compileRoutes(cfgs)
	return err
}

// RouteSchema is the part of Warden's model (ModelSchema) that routes
// declare: each route action, in its Action::"<METHOD>" and read or write
// group, with the context Warden builds for it, and each route's resource
// type (in Service). It is a fragment: the types it refers to (User,
// Headers, Token, ...) are the rest of the model.
func RouteSchema(cfgs []RouteConfig) (*schema.Schema, error) {
	// Load wants a policy; this one (never served) grants nothing.
	none := fstest.MapFS{"none.cedar": {Data: []byte(`@id("none") permit (principal, action, resource) when { false };`)}}
	s, err := Load(Source{FS: none, Dir: ".", Name: "routes"}, cfgs)
	if err != nil {
		return nil, err
	}
	full, err := s.ModelSchema()
	if err != nil {
		return nil, err
	}
	a := full.AST()
	out := &sast.Schema{Entities: sast.Entities{}, Actions: sast.Actions{}, Namespaces: sast.Namespaces{}}
	for _, r := range s.routes {
		if !r.hasRes {
			continue
		}
		typ := string(r.resType)
		if ns, name, ok := cutLast(typ, "::"); ok {
			n := out.Namespaces[types.Path(ns)]
			if n.Entities == nil {
				n.Entities = sast.Entities{}
			}
			n.Entities[sast.Ident(name)] = a.Namespaces[types.Path(ns)].Entities[sast.Ident(name)]
			out.Namespaces[types.Path(ns)] = n
			continue
		}
		out.Entities[sast.Ident(typ)] = a.Entities[sast.Ident(typ)]
	}
	for id, act := range a.Actions {
		if strings.Contains(string(id), " ") { // a route action: "GET /orders/{id}"
			out.Actions[id] = act
		}
	}
	return schema.NewSchemaFromAST(out), nil
}
