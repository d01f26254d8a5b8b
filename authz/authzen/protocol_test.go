package authzen_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/wardenauthz/warden/authz/authzen"
)

// Bad JSON and missing or mistyped members get HTTP 400 with a message
// naming the member; nothing is evaluated.
func TestAuthZENBadRequests(t *testing.T) {
	p := startPDP(t, exampleConfig)
	sub := `"subject":{"type":"user","id":"` + morty + `"}`
	act := `"action":{"name":"can_read_todos"}`
	res := `"resource":{"type":"todo","id":"t1"}`
	for _, c := range []struct {
		name, path, body, want string
	}{
		{"syntax", authzen.PathEvaluation, `{"subject":{"type":"user",}}`, "invalid JSON at byte 26"},
		{"truncated", authzen.PathEvaluation, `{"subject":{"type":"user"`, "invalid JSON"},
		{"empty", authzen.PathEvaluation, ``, "the body is empty"},
		{"array", authzen.PathEvaluation, `[{}]`, "the body must be a JSON object"},
		{"string", authzen.PathEvaluation, `"x"`, "the body must be a JSON object"},
		{"trailing", authzen.PathEvaluation, `{` + sub + `,` + act + `,` + res + `} {}`, "data after the object"},
		{"not UTF-8", authzen.PathEvaluation, "{\"subject\":{\"type\":\"user\",\"id\":\"\xff\"}}", "not UTF-8"},
		{"duplicate member", authzen.PathEvaluation, `{"subject":{"type":"user","id":"a","id":"b"},` + act + `,` + res + `}`, `subject.id: member "id" appears twice`},
		{"duplicate top-level", authzen.PathEvaluation, `{` + sub + `,` + sub + `,` + act + `,` + res + `}`, `subject: member "subject" appears twice`},
		{"no subject", authzen.PathEvaluation, `{` + act + `,` + res + `}`, "subject: missing"},
		{"null subject", authzen.PathEvaluation, `{"subject":null,` + act + `,` + res + `}`, "subject: missing"},
		{"no subject.id", authzen.PathEvaluation, `{"subject":{"type":"user"},` + act + `,` + res + `}`, "subject.id: missing"},
		{"no subject.type", authzen.PathEvaluation, `{"subject":{"id":"x"},` + act + `,` + res + `}`, "subject.type: missing"},
		{"no action", authzen.PathEvaluation, `{` + sub + `,` + res + `}`, "action: missing"},
		{"no action.name", authzen.PathEvaluation, `{` + sub + `,"action":{},` + res + `}`, "action.name: missing"},
		{"no resource", authzen.PathEvaluation, `{` + sub + `,` + act + `}`, "resource: missing"},
		{"no resource.id", authzen.PathEvaluation, `{` + sub + `,` + act + `,"resource":{"type":"todo"}}`, "resource.id: missing"},
		{"numeric id", authzen.PathEvaluation, `{"subject":{"type":"user","id":7},` + act + `,` + res + `}`, "subject.id: must be a string, got number"},
		{"subject a string", authzen.PathEvaluation, `{"subject":"x",` + act + `,` + res + `}`, "subject: must be an object, got string"},
		{"properties an array", authzen.PathEvaluation, `{"subject":{"type":"user","id":"x","properties":[]},` + act + `,` + res + `}`, "subject.properties: must be an object, got array"},
		{"context a string", authzen.PathEvaluation, `{` + sub + `,` + act + `,` + res + `,"context":"x"}`, "context: must be an object, got string"},
		{"empty type", authzen.PathEvaluation, `{"subject":{"type":"","id":"x"},` + act + `,` + res + `}`, "subject.type: must not be empty"},
		{"unmapped type", authzen.PathEvaluation, `{"subject":{"type":"group","id":"x"},` + act + `,` + res + `}`, `subject.type: "group" is not a type of authzen.types`},
		{"batch item missing", authzen.PathEvaluations, `{` + sub + `,` + act + `,"evaluations":[{` + res + `},{}]}`, "evaluations[1].resource: missing (an object with type and id) (nor given at the top level)"},
		{"batch item mistyped", authzen.PathEvaluations, `{` + sub + `,` + act + `,"evaluations":[{"resource":{"type":"todo","id":1}}]}`, "evaluations[0].resource.id: must be a string, got number"},
		{"batch item not an object", authzen.PathEvaluations, `{` + sub + `,` + act + `,"evaluations":[7]}`, "evaluations[0]: must be an object"},
		{"evaluations not an array", authzen.PathEvaluations, `{` + sub + `,` + act + `,"evaluations":{}}`, "evaluations: must be an array, got object"},
		{"bad semantic", authzen.PathEvaluations, `{` + sub + `,` + act + `,"options":{"evaluations_semantic":"first"},"evaluations":[{` + res + `}]}`, "options.evaluations_semantic: must be execute_all, deny_on_first_deny or permit_on_first_permit"},
		{"no evaluations, incomplete", authzen.PathEvaluations, `{` + sub + `,` + act + `}`, "resource: missing"},
	} {
		status, b := p.post(t, pepToken, c.path, c.body)
		if status != http.StatusBadRequest || !strings.Contains(string(b), c.want) {
			t.Errorf("%s: HTTP %d %q, want 400 with %q", c.name, status, b, c.want)
		}
	}
	// A body that is not declared JSON is refused.
	req, _ := http.NewRequest(http.MethodPost, p.base+authzen.PathEvaluation, strings.NewReader(`{}`))
	req.Header.Set("Authorization", "Bearer "+pepToken)
	req.Header.Set("Content-Type", "text/plain")
	if status, _ := do(t, req); status != http.StatusUnsupportedMediaType {
		t.Errorf("text/plain: HTTP %d, want 415", status)
	}
	if recs := p.recordsOf(t); len(recs) != 0 {
		t.Errorf("bad requests logged %d decisions", len(recs))
	}
}

func decisions(t *testing.T, b []byte) []bool {
	t.Helper()
	var r struct {
		Evaluations []struct {
			Decision *bool `json:"decision"`
		} `json:"evaluations"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	var out []bool
	for _, e := range r.Evaluations {
		if e.Decision == nil {
			t.Fatalf("%s: an evaluation without a decision", b)
		}
		out = append(out, *e.Decision)
	}
	return out
}

// All three evaluations_semantic values, defaults and their overrides.
func TestAuthZENEvaluationsSemantics(t *testing.T) {
	p := startPDP(t, exampleConfig)
	todo := func(owner string) map[string]any {
		return map[string]any{"resource": map[string]any{"type": "todo", "id": "t-" + owner, "properties": map[string]any{"ownerID": owner}}}
	}
	// Morty updates: his own (permit), Rick's (deny), his own (permit).
	evs := []any{todo("morty@the-citadel.com"), todo("rick@the-citadel.com"), todo("morty@the-citadel.com")}
	batch := func(semantic string) map[string]any {
		b := map[string]any{"subject": map[string]any{"type": "user", "id": morty}, "action": map[string]any{"name": "can_update_todo"}, "evaluations": evs}
		if semantic != "" {
			b["options"] = map[string]any{"evaluations_semantic": semantic, "another_option": "ignored"}
		}
		return b
	}
	for _, c := range []struct {
		semantic string
		want     string
	}{
		{"", "[true false true]"},
		{authzen.ExecuteAll, "[true false true]"},
		{authzen.DenyOnFirstDeny, "[true false]"},
		{authzen.PermitOnFirstPermit, "[true]"},
	} {
		status, b := p.post(t, pepToken, authzen.PathEvaluations, batch(c.semantic))
		if got := strings.Join(strings.Fields(strings.Trim(strings.ReplaceAll(jsonBools(t, status, b), ",", " "), "")), " "); got != c.want {
			t.Errorf("%q: %s, want %s", c.semantic, got, c.want)
		}
	}
	// Items override the defaults: here the subject (Rick may update any).
	b := batch(authzen.ExecuteAll)
	b["evaluations"] = []any{todo("rick@the-citadel.com"), map[string]any{"subject": map[string]any{"type": "user", "id": rick}, "resource": todo("rick@the-citadel.com")["resource"]}}
	if _, body := p.post(t, pepToken, authzen.PathEvaluations, b); jsonBools(t, 200, body) != "[false true]" {
		t.Errorf("override: %s", body)
	}
	// Without evaluations, /evaluations is the single evaluation.
	single := mortyUpdates("morty@the-citadel.com")
	if status, body := p.post(t, pepToken, authzen.PathEvaluations, single); status != 200 || string(body) != `{"decision":true}`+"\n" {
		t.Errorf("no evaluations: HTTP %d %s", status, body)
	}
	// Permit on first permit where none permits: every item, all denies.
	b = batch(authzen.PermitOnFirstPermit)
	b["evaluations"] = []any{todo("rick@the-citadel.com"), todo("beth@the-smiths.com")}
	if _, body := p.post(t, pepToken, authzen.PathEvaluations, b); jsonBools(t, 200, body) != "[false false]" {
		t.Errorf("no permit: %s", body)
	}
	// A type not mapped in one item is that item's error (decision false
	// with the error in its context), not the batch's.
	b = batch(authzen.ExecuteAll)
	b["evaluations"] = []any{map[string]any{"resource": map[string]any{"type": "folder", "id": "f"}}, todo("morty@the-citadel.com")}
	_, body := p.post(t, pepToken, authzen.PathEvaluations, b)
	if !strings.Contains(string(body), `{"decision":false,"context":{"error":{"message":"evaluations[0].resource.type: \"folder\" is not a type of authzen.types","status":400}}},{"decision":true}`) {
		t.Errorf("item error: %s", body)
	}
}

func jsonBools(t *testing.T, status int, b []byte) string {
	t.Helper()
	if status != http.StatusOK {
		t.Fatalf("HTTP %d %s", status, b)
	}
	ds := decisions(t, b)
	s, _ := json.Marshal(ds)
	return strings.ReplaceAll(string(s), ",", " ")
}

// A caller granted Explain gets the deciding policy ids and, on a deny,
// the reason, keyed by status as in the spec's examples; never policy
// text. Other callers get the bare decision.
func TestAuthZENDecisionContext(t *testing.T) {
	p := startPDP(t, exampleConfig)
	status, b := p.post(t, operatorToken, authzen.PathEvaluation, mortyUpdates("morty@the-citadel.com"))
	var got authzen.Decision
	if status != 200 || json.Unmarshal(b, &got) != nil || !got.Decision {
		t.Fatalf("HTTP %d %s", status, b)
	}
	if ps, _ := got.Context["policies"].([]any); len(ps) != 1 || ps[0] != "todo-owner-update-delete" || got.Context["decision_id"] == "" {
		t.Errorf("allow context %v", got.Context)
	}
	_, b = p.post(t, operatorToken, authzen.PathEvaluation, mortyUpdates("rick@the-citadel.com"))
	if !strings.Contains(string(b), `"reason":"policy_deny"`) || !strings.Contains(string(b), `"reason_admin":{"403":"no policy permits the request"}`) {
		t.Errorf("deny context %s", b)
	}
	for _, leak := range []string{"permit (", "principal in", "ownerID ==", "when {", "todo.cedar"} {
		if strings.Contains(string(b), leak) {
			t.Errorf("the answer %s holds policy text %q", b, leak)
		}
	}
	if _, b = p.post(t, pepToken, authzen.PathEvaluation, mortyUpdates("rick@the-citadel.com")); string(b) != `{"decision":false}`+"\n" {
		t.Errorf("PEP without Explain got %s", b)
	}
	// X-Request-ID comes back, and is in the record.
	j, _ := json.Marshal(mortyUpdates("morty@the-citadel.com"))
	req, _ := http.NewRequest(http.MethodPost, p.base+authzen.PathEvaluation, strings.NewReader(string(j)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+pepToken)
	req.Header.Set("X-Request-ID", "bfe9eb29-ab87-4ca3-be83-a1d5d8305716")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get("X-Request-ID") != "bfe9eb29-ab87-4ca3-be83-a1d5d8305716" {
		t.Errorf("X-Request-ID %q", resp.Header.Get("X-Request-ID"))
	}
	recs := p.recordsOf(t)
	if len(recs) != 4 || recs[3].Request.RequestID != "bfe9eb29-ab87-4ca3-be83-a1d5d8305716" || recs[1].Reason != "policy_deny" || recs[1].Status != 403 {
		t.Errorf("records %+v", recs)
	}
}

// The caller states properties, not facts Warden holds: a subject's
// stored attributes (entities.json) win over its stated properties, and
// properties add no parents.
func TestAuthZENPropertiesCannotOverrideStoredFacts(t *testing.T) {
	p := startPDP(t, exampleConfig)
	// Morty claims Rick's email to update Rick's todo.
	req := mortyUpdates("rick@the-citadel.com")
	req["subject"] = map[string]any{"type": "user", "id": morty, "properties": map[string]any{"email": "rick@the-citadel.com"}}
	if _, b := p.post(t, pepToken, authzen.PathEvaluation, req); string(b) != `{"decision":false}`+"\n" {
		t.Errorf("stated email over the stored one: %s", b)
	}
	// Beth (viewer) claims roles and parents to create a todo.
	create := map[string]any{
		"subject":  map[string]any{"type": "user", "id": beth, "properties": map[string]any{"roles": []any{"admin"}, "parents": []any{map[string]any{"type": "Role", "id": "admin"}}}},
		"action":   map[string]any{"name": "can_create_todo"},
		"resource": map[string]any{"type": "todo", "id": "x"},
	}
	if _, b := p.post(t, pepToken, authzen.PathEvaluation, create); string(b) != `{"decision":false}`+"\n" {
		t.Errorf("stated roles: %s", b)
	}
	// An unknown user with Rick's email is no one: unknown subjects have
	// no roles.
	req = mortyUpdates("rick@the-citadel.com")
	req["subject"] = map[string]any{"type": "user", "id": "mallory", "properties": map[string]any{"email": "rick@the-citadel.com"}}
	if _, b := p.post(t, pepToken, authzen.PathEvaluation, req); string(b) != `{"decision":false}`+"\n" {
		t.Errorf("unknown subject: %s", b)
	}
	// The action type cannot be chosen: a resource or subject of type
	// Action is refused.
	p2 := startPDP(t, exampleConfig, func(c *configT) { c.AuthZEN.Types = nil })
	req = mortyUpdates("morty@the-citadel.com")
	req["subject"] = map[string]any{"type": "Action", "id": "x"}
	if status, b := p2.post(t, pepToken, authzen.PathEvaluation, req); status != http.StatusBadRequest {
		t.Errorf("subject of type Action: HTTP %d %s", status, b)
	}
	// Without authzen.types, types are Cedar's: "User" works, "user" is
	// another type no policy names.
	req = mortyUpdates("morty@the-citadel.com")
	req["subject"] = map[string]any{"type": "User", "id": morty}
	req["resource"] = map[string]any{"type": "Todo", "id": "t", "properties": map[string]any{"ownerID": "morty@the-citadel.com"}}
	if _, b := p2.post(t, pepToken, authzen.PathEvaluation, req); string(b) != `{"decision":true}`+"\n" {
		t.Errorf("identity mapping: %s", b)
	}
}

// The metadata names every endpoint under the PDP's URL; it needs no
// credentials, as discovery does not.
func TestAuthZENMetadata(t *testing.T) {
	p := startPDP(t, exampleConfig)
	req, _ := http.NewRequest(http.MethodGet, p.base+authzen.PathMetadata, nil)
	status, b := do(t, req)
	var m map[string]string
	if status != 200 || json.Unmarshal(b, &m) != nil {
		t.Fatalf("HTTP %d %s", status, b)
	}
	if m["policy_decision_point"] != p.base || m["access_evaluation_endpoint"] != p.base+"/access/v1/evaluation" ||
		m["access_evaluations_endpoint"] != p.base+"/access/v1/evaluations" || m["search_subject_endpoint"] != p.base+"/access/v1/search/subject" ||
		m["search_resource_endpoint"] != p.base+"/access/v1/search/resource" || m["search_action_endpoint"] != p.base+"/access/v1/search/action" {
		t.Errorf("metadata %v", m)
	}
	p2 := startPDP(t, exampleConfig, func(c *configT) { c.AuthZEN.PDP = "https://pdp.example.com" })
	req, _ = http.NewRequest(http.MethodGet, p2.base+authzen.PathMetadata, nil)
	req.Host = "evil.example"
	if _, b := do(t, req); !strings.Contains(string(b), `"access_evaluation_endpoint":"https://pdp.example.com/access/v1/evaluation"`) || strings.Contains(string(b), "evil") {
		t.Errorf("configured PDP: %s", b)
	}
	// Evaluation endpoints answer POST only.
	req, _ = http.NewRequest(http.MethodGet, p.base+authzen.PathEvaluation, nil)
	if status, _ := do(t, req); status != http.StatusMethodNotAllowed {
		t.Errorf("GET evaluation: HTTP %d", status)
	}
}

// TestAuthZENMemberNamesOneWay: a member named again in other letter case
// (SUBJECT, ID, \u0049d) is refused. encoding/json matches names without
// case, the last one winning, so Warden would decide for Rick what a PEP
// reading names exactly sent for Beth.
func TestAuthZENMemberNamesOneWay(t *testing.T) {
	p := startPDP(t, exampleConfig)
	const act = `"action":{"name":"can_delete_todo"},"resource":{"type":"todo","id":"1"}`
	if _, b := p.post(t, pepToken, authzen.PathEvaluation, `{"subject":{"type":"user","id":"`+beth+`"},`+act+`}`); string(b) != `{"decision":false}`+"\n" {
		t.Fatalf("beth deletes: %s", b)
	}
	for _, body := range []string{
		`{"subject":{"type":"user","id":"` + beth + `"},"SUBJECT":{"type":"user","id":"rick@the-citadel.com"},` + act + `}`,
		`{"subject":{"type":"user","id":"` + beth + `","ID":"rick@the-citadel.com"},` + act + `}`,
		`{"subject":{"type":"user","id":"` + beth + `","\u0049d":"rick@the-citadel.com"},` + act + `}`,
	} {
		if status, b := p.post(t, pepToken, authzen.PathEvaluation, body); status != http.StatusBadRequest || !strings.Contains(string(b), "member names are matched exactly") {
			t.Errorf("%s: HTTP %d %s", body, status, b)
		}
	}
	// One member in other case: the PEP sees no subject here and means the
	// top-level one; the decoder would read Rick.
	for _, c := range []struct{ path, body string }{
		{authzen.PathEvaluations, `{"subject":{"type":"user","id":"` + beth + `"},` + act + `,"evaluations":[{"Subject":{"type":"user","id":"rick@the-citadel.com"}}]}`},
		{authzen.PathEvaluations, `{"subject":{"type":"user","id":"` + beth + `"},` + act + `,"evaluations":[{"Subject":{"type":"user","id":"rick@the-citadel.com"},"subject":{"type":"user","id":"` + beth + `"}}]}`},
		{authzen.PathEvaluation, `{"Subject":{"type":"user","id":"rick@the-citadel.com"},` + act + `}`},
		{authzen.PathEvaluation, `{"subject":{"type":"user","Id":"rick@the-citadel.com"},` + act + `}`},
		{authzen.PathEvaluation, `{"subject":{"type":"user","id":"rick@the-citadel.com"},"action":{"NAME":"can_delete_todo"},"resource":{"type":"todo","id":"1"}}`},
	} {
		if status, b := p.post(t, pepToken, c.path, c.body); status != http.StatusBadRequest {
			t.Errorf("%s: HTTP %d %s", c.body, status, b)
		}
	}
	// Members of properties and context are the caller's own, exact.
	ok := `{"subject":{"type":"user","id":"` + beth + `","properties":{"ID":"x","Id":"y"}},` + act + `,"context":{"Subject":1}}`
	if status, b := p.post(t, pepToken, authzen.PathEvaluation, ok); status != http.StatusOK || string(b) != `{"decision":false}`+"\n" {
		t.Errorf("free-form members: HTTP %d %s", status, b)
	}
}
