package policy

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/wardenauthz/warden/internal/fielderr"
)

// TestLoadErrorsAreValues: Load's problems are fielderr.Errors that
// errors.As finds, each with the file, line and column it names (a parse
// error, an annotation, an unknown action, an entity) or the key path of
// a route.
func TestLoadErrorsAreValues(t *testing.T) {
	_, err := load(t, map[string]string{
		"a.cedar": "@id(\"a\")\npermit(principal, action, resource);\n\n  @id(\"b\") @status(\"200\") forbid(principal, action, resource);\n" +
			"@id(\"c\") permit(principal, action == Action::\"GTE\", resource);\n",
		"b.cedar": "@id(\"d\")\npermit(principal action, resource);\n",
		"entities.json": "[\n  {\"uid\": {\"type\": \"User\", \"id\": \"a\"}, \"attrs\": {}, \"parents\": []},\n" +
			"    {\"uid\": {\"type\": \"User\", \"id\": \"a\"}, \"attrs\": {}, \"parents\": []}\n]",
	}, RouteConfig{Method: "GET", Path: "/ok"}, RouteConfig{Method: "GET", Path: "orders"})
	var list fielderr.List
	if !errors.As(err, &list) {
		t.Fatalf("errors.As found no fielderr.List in %T: %v", err, err)
	}
	var got []fielderr.Error
	for _, e := range list {
		got = append(got, *e)
	}
	want := []fielderr.Error{
		{Path: "routes[1].path", Message: `"orders" must start with /`},
		{File: "policies/a.cedar", Line: 4, Col: 3, Message: `@status("200"): must be a 4xx HTTP status`},
		{File: "policies/b.cedar", Line: 2, Col: 18, Message: `got "action", want ","`},
		{File: "policies/entities.json", Line: 3, Col: 5, Message: `entity User::"a" defined twice (first at policies/entities.json:2:3)`},
		{File: "policies/a.cedar", Line: 5, Col: 1, Message: `policy "c": unknown action Action::"GTE" (not a route action, a method, read, write, or in entities.json)`},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("problems (-want +got):\n%s", d)
	}
}

// TestValidateModelErrorsAreValues: a model validation problem is a
// fielderr.Error at the line and column of the attribute it is about.
func TestValidateModelErrorsAreValues(t *testing.T) {
	s, err := load(t, map[string]string{"a.cedar": "@id(\"a\")\npermit(principal, action, resource) when {\n  principal.nosuch == 1\n};\n"})
	if err != nil {
		t.Fatal(err)
	}
	errs := s.ValidateModel()
	if len(errs) == 0 {
		t.Fatal("no problem found")
	}
	for _, err := range errs {
		var e *fielderr.Error
		if !errors.As(err, &e) {
			t.Fatalf("%T is not a *fielderr.Error: %v", err, err)
		}
		if e.File != "policies/a.cedar" || e.Line != 3 || e.Col != 12 || e.Path != "" {
			t.Errorf("got %+v, want policies/a.cedar at 3:12", *e)
		}
	}
}

// TestSchemaErrorsAreValues: a schema.cedarschema that does not parse is a
// fielderr.Error at the line and column cedar-go names.
func TestSchemaErrorsAreValues(t *testing.T) {
	_, err := load(t, map[string]string{
		"a.cedar":            `@id("a") permit(principal, action, resource);`,
		"schema.cedarschema": "entity User;\nentity {",
	})
	var list fielderr.List
	if !errors.As(err, &list) || len(list) != 1 {
		t.Fatalf("want one fielderr.Error, got %T: %v", err, err)
	}
	if got, want := *list[0], (fielderr.Error{File: "policies/schema.cedarschema", Line: 2, Col: 8, Message: `expected identifier, got "{"`}); got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
}
