package authzen_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/wardenauthz/warden/authz/authzen"
)

type searchAnswer struct {
	Page struct {
		NextToken *string `json:"next_token"`
		Count     int     `json:"count"`
	} `json:"page"`
	Results []struct {
		Type string `json:"type"`
		ID   string `json:"id"`
		Name string `json:"name"`
	} `json:"results"`
}

func search(t *testing.T, p *pdp, path string, q map[string]any) searchAnswer {
	t.Helper()
	status, b := p.post(t, pepToken, path, q)
	var a searchAnswer
	if status != http.StatusOK || json.Unmarshal(b, &a) != nil || a.Page.NextToken == nil {
		t.Fatalf("%s: HTTP %d %s", path, status, b)
	}
	return a
}

// searchAll pages through a search with limit, returning every result.
func searchAll(t *testing.T, p *pdp, path string, q map[string]any, limit int) (ids []string, pages int) {
	t.Helper()
	q["page"] = map[string]any{"limit": limit}
	for pages = 1; pages < 100; pages++ {
		a := search(t, p, path, q)
		if len(a.Results) > limit || a.Page.Count != len(a.Results) {
			t.Fatalf("page of %d results, count %d, limit %d", len(a.Results), a.Page.Count, limit)
		}
		for _, r := range a.Results {
			ids = append(ids, r.Type+":"+r.ID+r.Name)
		}
		if *a.Page.NextToken == "" {
			return ids, pages
		}
		q["page"] = map[string]any{"limit": limit, "token": *a.Page.NextToken}
	}
	t.Fatal("no last page")
	return nil, 0
}

// The Search APIs list the entities (and actions) Warden knows for which
// the evaluation permits, page by page; each result evaluates to a permit.
func TestAuthZENSearch(t *testing.T) {
	p := startPDP(t, exampleConfig)
	// Who may update Rick's todo? Rick (evil genius, both his ids).
	subj := map[string]any{
		"subject":  map[string]any{"type": "user"},
		"action":   map[string]any{"name": "can_update_todo"},
		"resource": map[string]any{"type": "todo", "id": "t", "properties": map[string]any{"ownerID": "rick@the-citadel.com"}},
	}
	all, _ := searchAll(t, p, authzen.PathSearchSubject, subj, 50)
	want := []string{"user:" + rick, "user:rick@the-citadel.com"}
	slices.Sort(all)
	slices.Sort(want)
	if !slices.Equal(all, want) {
		t.Errorf("subject search: %v, want %v", all, want)
	}
	// Who may create todos: editors and admins (Rick, Morty, Summer, by
	// both ids each); one per page gives the same set.
	create := map[string]any{"subject": map[string]any{"type": "user"}, "action": map[string]any{"name": "can_create_todo"}, "resource": map[string]any{"type": "todo", "id": "t"}}
	full, _ := searchAll(t, p, authzen.PathSearchSubject, create, 50)
	paged, pages := searchAll(t, p, authzen.PathSearchSubject, create, 1)
	if len(full) != 6 || !slices.Equal(full, paged) || pages < 6 {
		t.Errorf("create: %v; paged by 1 (%d pages): %v", full, pages, paged)
	}
	for _, id := range full {
		ev := map[string]any{"subject": map[string]any{"type": "user", "id": strings.TrimPrefix(id, "user:")}, "action": create["action"], "resource": create["resource"]}
		if _, b := p.post(t, pepToken, authzen.PathEvaluation, ev); string(b) != `{"decision":true}`+"\n" {
			t.Errorf("search result %s evaluates to %s", id, b)
		}
	}
	// Which routes may Beth GET (gateway scenario)?
	routes, _ := searchAll(t, p, authzen.PathSearchResource, map[string]any{
		"subject": map[string]any{"type": "identity", "id": beth}, "action": map[string]any{"name": "GET"}, "resource": map[string]any{"type": "route"},
	}, 10)
	if !slices.Equal(routes, []string{"route:/todos", "route:/users/{userId}"}) {
		t.Errorf("resource search: %v", routes)
	}
	// What may Morty do to his own todo?
	acts, _ := searchAll(t, p, authzen.PathSearchAction, map[string]any{
		"subject": map[string]any{"type": "user", "id": morty}, "resource": map[string]any{"type": "todo", "id": "t", "properties": map[string]any{"ownerID": "morty@the-citadel.com"}},
	}, 10)
	if !slices.Equal(acts, []string{":can_create_todo", ":can_delete_todo", ":can_read_todos", ":can_update_todo"}) {
		t.Errorf("action search: %v", acts)
	}
	// A token is good only for the query it came from.
	create["page"] = map[string]any{"limit": 1}
	a := search(t, p, authzen.PathSearchSubject, create)
	create["action"] = map[string]any{"name": "can_read_todos"}
	create["page"] = map[string]any{"limit": 1, "token": *a.Page.NextToken}
	if status, b := p.post(t, pepToken, authzen.PathSearchSubject, create); status != http.StatusBadRequest || !strings.Contains(string(b), "page.token: the query changed") {
		t.Errorf("token of another query: HTTP %d %s", status, b)
	}
	create["page"] = map[string]any{"limit": 1, "token": "garbage"}
	if status, _ := p.post(t, pepToken, authzen.PathSearchSubject, create); status != http.StatusBadRequest {
		t.Errorf("garbage token: HTTP %d", status)
	}
	create["page"] = map[string]any{"limit": -1}
	if status, _ := p.post(t, pepToken, authzen.PathSearchSubject, create); status != http.StatusBadRequest {
		t.Errorf("negative limit: HTTP %d", status)
	}
	// The searched member's type is required.
	if status, b := p.post(t, pepToken, authzen.PathSearchSubject, map[string]any{"action": create["action"], "resource": create["resource"]}); status != http.StatusBadRequest || !strings.Contains(string(b), "subject: missing") {
		t.Errorf("no subject: HTTP %d %s", status, b)
	}
}
