package policy

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/cedar-policy/cedar-go"
)

// The shapes of entities.json the Cedar CLI reads and Warden refused (every
// failure of Cedar's integration corpus through warden policy test): with
// a schema, an entity-typed attribute written as Cedar text or {"type",
// "id"} is a reference; an extension call of several arguments is a value.
func TestEntitiesReadAsCedarCLI(t *testing.T) {
	schema := `entity Group;
entity User in [Group] { manager: User, peers: Set<User>, meta: {boss: User}, since: datetime, addr: ipaddr };
entity Doc { owner: User, viewers: Set<User>, until: datetime };
action view appliesTo { principal: User, resource: Doc };
`
	ents := `[
  {"uid": {"type": "User", "id": "alice"}, "parents": [], "attrs": {
     "manager": "User::\"bob\"", "peers": [{"type": "User", "id": "carol"}, "User::\"dan\""],
     "meta": {"boss": {"type": "User", "id": "bob"}},
     "since": {"fn": "datetime", "arg": "2024-01-01"},
     "addr": {"__extn": {"fn": "ip", "args": ["10.0.0.1"]}}}},
  {"uid": {"type": "Doc", "id": "d"}, "parents": [], "attrs": {
     "owner": {"type": "User", "id": "alice"}, "viewers": [{"__entity": {"type": "User", "id": "bob"}}],
     "until": {"__extn": {"fn": "offset", "args": [{"__extn": {"fn": "datetime", "arg": "2024-01-01"}}, {"__extn": {"fn": "duration", "arg": "2d"}}]}}}}
]`
	pol := `@id("owner") permit(principal, action == Action::"view", resource) when {
  resource.owner == principal && principal.manager == User::"bob" && principal.meta.boss == User::"bob" &&
  principal.peers.contains(User::"dan") && resource.viewers.contains(User::"bob") &&
  resource.until == datetime("2024-01-03") && principal.since == datetime("2024-01-01") && principal.addr == ip("10.0.0.1")
};`
	s, err := load(t, map[string]string{"a.cedar": pol, SchemaFile: schema, EntitiesFile: ents})
	if err != nil {
		t.Fatal(err)
	}
	alice, doc := cedar.NewEntityUID("User", "alice"), cedar.NewEntityUID("Doc", "d")
	res := s.Authorize(nil, cedar.Request{Principal: alice, Action: cedar.NewEntityUID("Action", "view"), Resource: doc, Context: cedar.NewRecord(nil)})
	if !res.Allow || len(res.Errors) > 0 {
		t.Fatalf("want allow by owner, got %+v", res)
	}
	// A Cedar CLI test's entities are read with the same schema.
	more, err := s.ParseEntities("t.json", []byte(`[{"uid": {"type": "Doc", "id": "e"}, "parents": [], "attrs": {"owner": "User::\"zed\"", "viewers": [], "until": "2024-01-01"}}]`))
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := more[cedar.NewEntityUID("Doc", "e")].Attributes.Get("owner"); v != cedar.NewEntityUID("User", "zed") {
		t.Errorf("owner: %v", v)
	}

	// Without a schema, a multi-argument call still loads; {"type","id"}
	// stays a record, as in Cedar.
	s, err = load(t, map[string]string{"a.cedar": `@id("a") permit(principal, action, resource) when { resource.until == datetime("2024-01-01T00:00:00.500Z") && resource.r.id == "x" };`,
		EntitiesFile: `[{"uid": {"type": "Doc", "id": "d"}, "parents": [], "attrs": {"r": {"type": "T", "id": "x"},
		  "until": {"__extn": {"fn": "offset", "args": [{"__extn": {"fn": "datetime", "arg": "2024-01-01"}}, {"__extn": {"fn": "duration", "arg": "500ms"}}]}}}}]`})
	if err != nil {
		t.Fatal(err)
	}
	if res := s.Authorize(nil, cedar.Request{Principal: alice, Action: cedar.NewEntityUID("Action", "GET"), Resource: doc, Context: cedar.NewRecord(nil)}); !res.Allow {
		t.Errorf("want allow, got %+v", res)
	}
}

// Every entity problem is named by file:line:col, uid and attribute, each
// once, all at once.
func TestEntityErrorsLocated(t *testing.T) {
	schema := `entity User { level: Long, boss?: User };`
	ents := `[
  {"uid": {"type": "User", "id": "a"}, "parents": [], "attrs": {"level": "high"}},
  {"uid": {"type": "User", "id": "b"}, "parents": [], "attrs": {"level": 1, "boss": "User::bob"}},
  {"uid": {"type": "User", "id": "c"}, "parents": [], "attrs": {"level": 1,
     "x": {"__extn": {"fn": "offset", "args": [{"__extn": {"fn": "datetime", "arg": "2024-01-01"}}]}}}},
  {"uid": {"type": "User", "id": "d"}, "parents": [], "attrs": {"level": {"__extn": {"fn": "ip", "arg": "nope"}}}}
]`
	_, err := load(t, map[string]string{"a.cedar": `@id("a") permit(principal, action, resource);`, SchemaFile: schema, EntitiesFile: ents})
	if err == nil {
		t.Fatal("want errors")
	}
	got := err.Error()
	for _, want := range []string{
		`policies/entities.json:2:3: entity User::"a": attribute "level": expected Long, got String`,
		`policies/entities.json:3:3: entity User::"b": attribute "boss": "User::bob": want an entity of type User`,
		`policies/entities.json:4:3: entity User::"c": attribute "x": offset takes 2 arguments, got 1`,
		`policies/entities.json:6:3: entity User::"d": attribute "level":`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in:\n%s", want, got)
		}
	}
	if strings.Contains(got, "deserialization") || strings.Count(got, `User::"a"`) != 1 {
		t.Errorf("vague or repeated:\n%s", got)
	}
}

// A validation problem is reported once, not once per entity type an
// unconstrained principal may be (nor per action).
func TestValidationProblemOnce(t *testing.T) {
	_, err := load(t, map[string]string{"a.cedar": "@id(\"a\")\npermit(principal, action, resource) when {\n  principal.level > 1\n};\n",
		SchemaFile: `entity User { level: Long };`})
	if err == nil {
		t.Fatal("want an error")
	}
	got := err.Error()
	if strings.Count(got, "\n") != 0 || !strings.Contains(got, "policies/a.cedar:3:12: policy \"a\": attribute `level` on entity types `Client`, `Workload`, `Anonymous`, `ApiKey` not found") {
		t.Errorf("got:\n%s", got)
	}
}

// A type error that holds for each of Warden's principal types is one
// message, naming them.
func TestTypeErrorOnce(t *testing.T) {
	_, err := load(t, map[string]string{"a.cedar": "@id(\"a\")\npermit(principal, action, resource) when {\n  principal in [a::\"\", principal]\n};\n",
		SchemaFile: "entity a;\naction \"action\" appliesTo { principal: [a], resource: [a], context: {} };"})
	if err == nil {
		t.Fatal("want an error")
	}
	got := err.Error()
	if strings.Count(got, "\n") != 0 || !strings.Contains(got, `the types User and a are not compatible (and likewise for Client, Workload, Anonymous`) {
		t.Errorf("got:\n%s", got)
	}
}

// A type error the validator does not place is at the start of the
// policy's condition, not at its @id.
func TestTypeErrorAtCondition(t *testing.T) {
	_, err := load(t, map[string]string{"a.cedar": "@id(\"a\")\npermit(principal is User, action == Action::\"view\", resource)\nwhen {\n    principal.level.x\n};\n",
		SchemaFile: "entity User { level: Long };\naction \"view\" appliesTo { principal: [User], resource: [User], context: {} };"})
	if err == nil || err.Error() != `policies/a.cedar:4:5: policy "a": unexpected type: expected an entity, or a record but saw Long` {
		t.Errorf("got %v", err)
	}
}

// FuzzEntities: any entities.json loads or is refused with located errors,
// never a panic; without a schema and without multi-argument calls it
// reads exactly what cedar-go reads (entity by entity); with a schema,
// what loads conforms to it.
func FuzzEntities(f *testing.F) {
	f.Add(`[{"uid": {"type": "User", "id": "a"}, "parents": [{"type": "Group", "id": "g"}], "attrs": {"n": 1, "s": [1, "x"], "r": {"a": true}}}]`)
	f.Add(`[{"uid": {"type": "User", "id": "a"}, "parents": [], "attrs": {"boss": "User::\"b\"", "t": {"__extn": {"fn": "offset", "args": [{"__extn": {"fn": "datetime", "arg": "2024-01-01"}}, {"__extn": {"fn": "duration", "arg": "1d"}}]}}}}]`)
	f.Add(`[{"uid": {"type": "User", "id": "a"}, "parents": [], "attrs": {"boss": {"type": "User", "id": "b"}, "ip": {"fn": "ip", "arg": "10.0.0.1"}}, "tags": {"x": "y"}}]`)
	f.Add(`[{"uid": {"__entity": {"type": "User", "id": "a"}}, "parents": [], "attrs": {"t": {"__extn": {"fn": "toDate", "args": [{"__extn": {"fn": "datetime", "arg": "1969-12-31T23:59:59Z"}}]}}}}]`)
	sc := "entity Group; entity User in [Group] { boss?: User, t?: datetime, ip?: ipaddr, n?: Long, s?: Set<__cedar::String>, r?: {a: Bool} } tags String;"
	schemaSet, err := load(f, map[string]string{"a.cedar": `@id("a") permit(principal, action, resource);`, SchemaFile: sc})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, src string) {
		if len(src) > 4096 {
			return
		}
		b := []byte(src)
		got, err := parseEntities("e.json", b)
		if err != nil && !strings.HasPrefix(err.Error(), "e.json:") {
			t.Fatalf("error without a place: %v", err)
		}
		if err == nil && !strings.Contains(src, `"args"`) {
			var raws []json.RawMessage
			if json.Unmarshal(b, &raws) != nil {
				t.Fatalf("loaded what is not a list")
			}
			for _, raw := range raws {
				var e cedar.Entity
				if err := json.Unmarshal(raw, &e); err != nil {
					t.Fatalf("loaded an entity cedar-go refuses (%v): %s", err, raw)
				}
				if g, ok := got[e.UID]; !ok || !g.Equal(e) {
					t.Fatalf("entity %s: got %v, cedar-go reads %v", e.UID, g, e)
				}
			}
		}
		// With a schema: no panic, errors located; what loads conforms.
		ents, err := schemaSet.ParseEntities("e.json", b)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "e.json:") {
				t.Fatalf("error without a place: %v", err)
			}
			return
		}
		v, verr := schemaSet.modelValidator()
		if verr != nil {
			t.Fatal(verr)
		}
		for _, e := range ents {
			if e.UID.Type == "User" || e.UID.Type == "Group" {
				_ = v.Entity(e) // may not conform (validated at load); must not panic
			}
		}
	})
}

// TestEntitiesStrictJSON: what cedar-go's reader refuses, Warden refuses
// too, at the entity: a member name given twice (encoding/json would keep
// the last) and invalid UTF-8 (it would become U+FFFD).
func TestEntitiesStrictJSON(t *testing.T) {
	for src, want := range map[string]string{
		"[\n {\"uid\": {\"type\": \"User\", \"id\": \"a\"}, \"parents\": [], \"attrs\": {\"admin\": false, \"admin\": true}}\n]": `e.json:2:2: entity 1: duplicate object member name "admin"`,
		"[\n {\"uid\": {\"type\": \"User\", \"id\": \"a\xb2\"}, \"parents\": [], \"attrs\": {}}\n]":                              `e.json:2:2: entity 1: invalid UTF-8`,
	} {
		_, err := parseEntities("e.json", []byte(src))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: got %v, want %q", src, err, want)
		}
	}
}
