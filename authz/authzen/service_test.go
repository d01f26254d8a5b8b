package authzen_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/wardenauthz/warden/authz/authzen"
)

// todoService stands in for a service of the mesh: it keeps todos and
// their owners, and before changing one asks Warden over AuthZEN whether
// the caller (already authenticated upstream, its id in x-user) may. It
// fails closed: any answer but a 200 with decision true is a 403.
func todoService(t *testing.T, pdpURL string) *httptest.Server {
	owners := map[string]string{"42": "morty@the-citadel.com", "43": "rick@the-citadel.com"}
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := strings.TrimPrefix(r.URL.Path, "/todos/")
		owner, ok := owners[id]
		if !ok {
			http.NotFound(w, r)
			return
		}
		q, _ := json.Marshal(map[string]any{
			"subject":  map[string]any{"type": "user", "id": r.Header.Get("x-user")},
			"action":   map[string]any{"name": map[string]string{"PUT": "can_update_todo", "DELETE": "can_delete_todo"}[r.Method]},
			"resource": map[string]any{"type": "todo", "id": id, "properties": map[string]any{"ownerID": owner}},
		})
		req, _ := http.NewRequestWithContext(r.Context(), http.MethodPost, pdpURL+authzen.PathEvaluation, bytes.NewReader(q))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+pepToken)
		req.Header.Set("X-Request-ID", r.Header.Get("X-Request-ID"))
		resp, err := client.Do(req)
		var d authzen.Decision
		if err != nil || resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&d) != nil || !d.Decision {
			if resp != nil {
				resp.Body.Close()
			}
			http.Error(w, "forbidden", http.StatusForbidden)
			return
		}
		resp.Body.Close()
		w.WriteHeader(http.StatusNoContent)
	}))
}

// A service asks Warden for an object-level decision (may Morty update
// todo 42? 43?) and Warden logs and counts it like a Check.
func TestServiceAsksForObjectLevelDecision(t *testing.T) {
	p := startPDP(t, exampleConfig)
	svc := todoService(t, p.base)
	defer svc.Close()
	for _, c := range []struct {
		user, method, todo string
		want               int
	}{
		{morty, "PUT", "42", http.StatusNoContent},
		{morty, "PUT", "43", http.StatusForbidden},
		{morty, "DELETE", "43", http.StatusForbidden},
		{rick, "PUT", "42", http.StatusNoContent},    // evil genius
		{rick, "DELETE", "42", http.StatusNoContent}, // admin
		{beth, "PUT", "42", http.StatusForbidden},
		{"nobody", "PUT", "42", http.StatusForbidden},
	} {
		req, _ := http.NewRequest(c.method, svc.URL+"/todos/"+c.todo, nil)
		req.Header.Set("x-user", c.user)
		req.Header.Set("X-Request-ID", "svc-"+c.method+"-"+c.todo)
		if status, b := do(t, req); status != c.want {
			t.Errorf("%s %s /todos/%s: HTTP %d %s, want %d", c.user[:6], c.method, c.todo, status, b, c.want)
		}
	}
	// The same metrics as Checks count the decisions.
	counts := map[string]float64{}
	mfs, err := p.svc.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "warden_decisions_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "decision" {
					counts[l.GetValue()] += m.GetCounter().GetValue()
				}
			}
		}
	}
	if counts["allow"] != 3 || counts["deny"] != 4 {
		t.Errorf("warden_decisions_total %v, want 3 allows and 4 denies", counts)
	}
	recs := p.recordsOf(t)
	if len(recs) != 7 || recs[1].Request.RequestID != "svc-PUT-43" || recs[1].Decision != "deny" || recs[1].Resource != `Todo::"43"` {
		t.Errorf("records %+v", recs)
	}
}
