package openapi_test

import (
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"go.yaml.in/yaml/v3"

	"github.com/wardenauthz/warden/policy"
	"github.com/wardenauthz/warden/policy/openapi"
)

func petstore(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/petstore.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func configs(res *openapi.Result) []policy.RouteConfig {
	out := make([]policy.RouteConfig, len(res.Routes))
	for i, r := range res.Routes {
		out[i] = r.RouteConfig
	}
	return out
}

// TestImportPetstore: a realistic document's operations become routes that
// load in Warden (literal segments ordered before parameters, HEAD before
// GET), with resources from the last parameter or x-warden-resource, the
// first server's path as base path; and a Check resolves each to the right
// action and resource.
func TestImportPetstore(t *testing.T) {
	res, err := openapi.Import("petstore.yaml", petstore(t), openapi.Options{Service: "pets"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range res.Routes {
		got = append(got, strings.TrimSpace(r.Method+" "+r.Path+" "+r.Resource))
	}
	want := []string{
		`GET /v1/categories/{id} Category::"{id}"`,
		`GET /v1/health`,
		`GET /v1/pets`,
		`POST /v1/pets`,
		`GET /v1/pets/mine`,
		`HEAD /v1/pets/{petId} Pet::"{petId}"`,
		`GET /v1/pets/{petId} Pet::"{petId}"`,
		`PUT /v1/pets/{petId} Pet::"{petId}"`,
		`DELETE /v1/pets/{petId} Pet::"{petId}"`,
		`GET /v1/pets/{petId}/photos/{photo_id} Photo::"{photo_id}"`,
		`GET /v1/stores/{storeId}/inventory Store::"{storeId}"`,
		`GET /v1/users/{username}/addresses/{addressId} Address::"{username}/{addressId}"`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("routes:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], `"/reports/{name}.csv"`) || !strings.Contains(res.Warnings[0], "whole segment") {
		t.Errorf("warnings: %q", res.Warnings)
	}
	if res.Routes[0].OperationID != "getCategory" || res.Routes[0].Service != "pets" {
		t.Errorf("first route: %+v", res.Routes[0])
	}

	// The order matters: as written in the document, /pets/{petId} would
	// shadow /pets/mine.
	rev := slices.Clone(configs(res))
	slices.Reverse(rev)
	if err := policy.CheckRoutes(rev); err == nil || !strings.Contains(err.Error(), "can never match") {
		t.Errorf("reversed routes load: %v", err)
	}

	fsys := fstest.MapFS{"p.cedar": {Data: []byte(`@id("all") permit (principal, action, resource);`)}}
	set, err := policy.Load(policy.Source{FS: fsys, Dir: ".", Name: "p"}, configs(res))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ method, path, action, resource string }{
		{"GET", "/v1/pets/mine", `Action::"GET /v1/pets/mine"`, `Service::"pets"`},
		{"GET", "/v1/pets/7", `Action::"GET /v1/pets/{petId}"`, `Pet::"7"`},
		{"HEAD", "/v1/pets/7", `Action::"HEAD /v1/pets/{petId}"`, `Pet::"7"`},
		{"DELETE", "/v1/pets/7", `Action::"DELETE /v1/pets/{petId}"`, `Pet::"7"`},
		{"GET", "/v1/pets/7/photos/p1", `Action::"GET /v1/pets/{petId}/photos/{photo_id}"`, `Photo::"p1"`},
		{"GET", "/v1/users/ann/addresses/home", `Action::"GET /v1/users/{username}/addresses/{addressId}"`, `Address::"ann/home"`},
		{"GET", "/v1/stores/s9/inventory?x=1", `Action::"GET /v1/stores/{storeId}/inventory"`, `Store::"s9"`},
	} {
		r := set.Decide(&policy.Request{Principal: policy.Principal{Type: "User", ID: "u"}, Method: tc.method, Path: tc.path, Host: "localhost:8080", Extensions: map[string]string{"service": "pets"}})
		if r.Action.String() != tc.action || r.Resource.String() != tc.resource || !r.Allow {
			t.Errorf("%s %s: %s %s allow=%v, want %s %s", tc.method, tc.path, r.Action, r.Resource, r.Allow, tc.action, tc.resource)
		}
	}

	// The schema fragment declares each route action in its method and
	// read or write group, and the resource types.
	sc, err := policy.RouteSchema(configs(res))
	if err != nil {
		t.Fatal(err)
	}
	b, err := sc.MarshalCedar()
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{`action "GET /v1/pets/{petId}" in [read, GET]`, `action "DELETE /v1/pets/{petId}" in [write, DELETE]`, "entity Pet in Service;", "entity Address in Service;"} {
		if !strings.Contains(string(b), w) {
			t.Errorf("schema lacks %q", w)
		}
	}
}

// TestImportOptionsAndJSON: JSON documents, --resource-type, --base-path
// and --host; documents that are not OpenAPI 3 are refused, saying why.
func TestImportOptionsAndJSON(t *testing.T) {
	var doc any
	if err := yaml.Unmarshal(petstore(t), &doc); err != nil {
		t.Fatal(err)
	}
	js, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	none := ""
	res, err := openapi.Import("petstore.json", js, openapi.Options{ResourceType: "Thing", BasePath: &none, Host: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res.Routes {
		if r.Host != "eu.petstore.example.com" || strings.HasPrefix(r.Path, "/v1") || r.Service != "" {
			t.Errorf("route %+v", r.RouteConfig)
		}
		if strings.Contains(r.Path, "{petId}") && r.Resource != `Thing::"{petId}"` && !strings.Contains(r.Path, "photos") {
			t.Errorf("resource type: %+v", r.RouteConfig)
		}
	}
	for _, tc := range []struct{ doc, want string }{
		{"swagger: '2.0'\npaths: {}\n", "Swagger 2.0 document"},
		{"openapi: 3.1.0\npaths: []\n", "paths: want a mapping"},
		{"kind: Deployment\n", "not an OpenAPI 3 document"},
		{"openapi: 3.0.0\npaths: {'/a/{x}.json': {get: {}}}\n", "no operations to import"},
		{"openapi: 3.0.0\npaths: {/a: {get: {}}}\nservers: [{url: 'http://h/%zz'}]\n", "servers[0].url"},
		{"{", "not YAML or JSON"},
	} {
		if _, err := openapi.Import("x.yaml", []byte(tc.doc), openapi.Options{}); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.doc, err, tc.want)
		}
	}
}

func TestResourceTypeNames(t *testing.T) {
	doc := `openapi: 3.0.0
paths:
  /orders/{id}: {get: {}}
  /categories/{id}: {get: {}}
  /addresses/{id}: {get: {}}
  /line-items/{id}: {get: {}}
  /status/{id}: {get: {}}
  /boxes/{id}: {get: {}}
  /{id}: {get: {}}
  /people/{person-id}: {get: {}}
`
	res, err := openapi.Import("x.yaml", []byte(doc), openapi.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range res.Routes {
		got = append(got, r.Resource)
	}
	want := []string{`Address::"{id}"`, `Box::"{id}"`, `Category::"{id}"`, `LineItem::"{id}"`, `Order::"{id}"`, `People::"{person_id}"`, `Status::"{id}"`, `Resource::"{id}"`}
	if !slices.Equal(got, want) {
		t.Errorf("got %q\nwant %q", got, want)
	}
}

// FuzzImport: any document either imports into routes that load (and a
// schema fragment) or is refused with an error naming it; never a panic.
func FuzzImport(f *testing.F) {
	b, err := os.ReadFile("testdata/petstore.yaml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte(`{"openapi": "3.1.0", "paths": {"/a/{b}/c": {"get": {}, "head": {}}, "/a/x/{c}": {"put": {"x-warden-resource": "T::\"{c}\""}}}}`))
	f.Fuzz(func(t *testing.T, doc []byte) {
		res, err := openapi.Import("doc.yaml", doc, openapi.Options{Service: "s"})
		if err != nil {
			if !strings.HasPrefix(err.Error(), "doc.yaml") {
				t.Fatalf("error does not name the document: %v", err)
			}
			return
		}
		if err := policy.CheckRoutes(configs(res)); err != nil {
			t.Fatal(err)
		}
		if _, err := policy.RouteSchema(configs(res)); err != nil {
			t.Fatal(err)
		}
	})
}
