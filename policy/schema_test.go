package policy_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/wardenauthz/warden/examples/quickstart"
	"github.com/wardenauthz/warden/policy"
)

// TestModelSchemaQuickStart: the quick start's policies validate against
// Warden's model, and the model declares every route action with its
// method and read/write parents and the route's resource type.
func TestModelSchemaQuickStart(t *testing.T) {
	s, err := policy.Load(policy.Source{FS: quickstart.FS, Dir: "policies", Name: "quickstart"}, quickRoutes)
	if err != nil {
		t.Fatal(err)
	}
	if errs := s.ValidateModel(); len(errs) > 0 {
		t.Fatalf("the quick start does not validate against the model: %v", errs)
	}
	sc, err := s.ModelSchema()
	if err != nil {
		t.Fatal(err)
	}
	b, err := sc.MarshalCedar()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`action "DELETE /orders/{id}" in [write, DELETE]`, "entity Order in Service", "action GET in read", "source: {", "path_params: {\n\t\t\tid: String", "token?: Token", "host: String,"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("schema lacks %q:\n%s", want, b)
		}
	}
}

func validateModel(t *testing.T, files map[string]string) error {
	t.Helper()
	kv := []string{}
	for k, v := range files {
		kv = append(kv, "p/"+k, v)
	}
	s, err := policy.Load(policy.Source{FS: mapFS(kv...), Dir: "p", Name: "p"}, quickRoutes)
	if err != nil {
		return err // with a schema.cedarschema, Load validates against the merged model
	}
	return errors.Join(s.ValidateModel()...)
}

// TestModelSchemaCatches: an unguarded optional access (the forbid),
// a misspelt attribute, an undeclared header are errors at the access's
// file:line:col; a has guard, or the user's declaration, makes them valid.
func TestModelSchemaCatches(t *testing.T) {
	for _, tc := range []struct{ name, src, schema, want string }{
		{"unguarded optional (the issue's)", "@id(\"mfa\")\nforbid (principal, action, resource)\n  unless { context.token.acr == \"mfa\" };",
			"", "p/p.cedar:3:19: policy \"mfa\": unable to guarantee safety of access to optional attribute `token`"},
		{"guarded token, unguarded acr", "@id(\"mfa\")\nforbid (principal, action, resource)\n  unless { context has token &&\n context.token.acr == \"mfa\" };",
			"", "p/p.cedar:4:15: policy \"mfa\": unable to guarantee safety of access to optional attribute `token.acr`"},
		{"misspelt", "@id(\"m\") permit (principal, action, resource) when { context.request.methd == \"GET\" };", "", "p/p.cedar:1:69: policy \"m\": attribute `methd`"},
		{"undeclared header", `@id("h") permit (principal, action, resource) when { context.request.headers["x-tenant"] == "a" };`, "", "p/p.cedar:1:77: policy \"h\": attribute `x-tenant`"},
		{"path param of a route-less action", `@id("h") permit (principal, action == Action::"GET", resource) when { context.path_params.id == "1" };`, "", "attribute `path_params`"},
		{"guarded", `@id("ok") forbid (principal, action, resource) unless { context has token && context.token has acr && context.token.acr == "mfa" };`, "", ""},
		{"always sent", `@id("ok") permit (principal, action, resource) when { context.request.method == "GET" && context.request.host == "h" && context.source.ip.isLoopback() && context.now > datetime("2020-01-01") };`, "", ""},
		{"path param of its route", `@id("ok") permit (principal, action == Action::"GET /orders/{id}", resource) when { context.path_params.id == "1" };`, "", ""},
		{"declared header", `@id("ok") permit (principal, action, resource) when { context.request.headers has "x-tenant" && context.request.headers["x-tenant"] == "a" };`,
			`type Headers = {"x-tenant"?: String};`, ""},
		{"declared claim", `@id("ok") permit (principal, action, resource) when { context has token && context.token has tenant && context.token.tenant == "a" };`,
			`type TokenClaims = {"tenant"?: String};`, ""},
		{"sender-constrained credential", `@id("ok") forbid (principal, action == Action::"DELETE", resource) unless { context has credential && ["dpop", "mtls_bound"].contains(context.credential.kind) && context has token && context.token has cnf && (context.token.cnf has jkt || context.token.cnf has "x5t#S256") };`, "", ""},
		{"unguarded credential", `@id("c") permit (principal, action, resource) when { context.credential.kind == "dpop" };`, "", "attribute `credential`"},
		{"misspelt cnf member", `@id("c") permit (principal, action, resource) when { context has token && context.token has cnf && context.token.cnf.jwk == "x" };`, "", "attribute `jwk`"},
		{"declared resource attribute", `@id("ok") permit (principal, action, resource is Order) when { resource.owner == principal };`,
			`entity Group in Group; entity User in Group; entity Order in Service {owner: User}; entity Service;`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			files := map[string]string{"p.cedar": tc.src}
			if tc.schema != "" {
				files[policy.SchemaFile] = tc.schema
			}
			err := validateModel(t, files)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("want valid, got %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
}
