package policy

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/wardenauthz/warden/internal/token"
)

// genPolicies writes n random policies whose scopes and conditions cover
// every index path: all/==/in/is/is-in principals, all/==/in/in-set
// actions, conditions that are true, false or raise errors.
func genPolicies(r *rand.Rand, n int) string {
	principals := []string{
		"principal", `principal == User::"u%d"`, `principal in Group::"g%d"`, "principal is User",
		"principal is Client", `principal is User in Group::"g%d"`, `principal == Group::"g%d"`,
		`principal in User::"u%d"`,
	}
	actions := []string{
		"action", `action == Action::"GET /a/{id}"`, `action == Action::"GET"`, `action in Action::"read"`,
		`action in Action::"write"`, `action in [Action::"GET", Action::"DELETE /a/{id}"]`, `action == Action::"POST /a"`,
		`action in Action::"DELETE"`, `action in [Action::"read", Action::"read"]`,
	}
	resources := []string{"resource", `resource in Service::"svc"`, "resource is Item", `resource == Item::"1"`}
	conds := []string{
		"", `when { context.request.method == "GET" }`, `when { context.nope == 1 }`,
		`when { principal.age > 3 }`, `unless { context has token }`,
		`when { context.request.headers["x-n"] == "1" }`, `when { context.path_params.id == "1" }`,
	}
	pick := func(ss []string) string {
		s := ss[r.IntN(len(ss))]
		if strings.Contains(s, "%d") {
			s = fmt.Sprintf(s, r.IntN(5))
		}
		return s
	}
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "@id(\"p%d\")\n", i)
		effect := "permit"
		if r.IntN(10) < 3 {
			effect = "forbid"
			switch r.IntN(4) {
			case 0:
				b.WriteString("@step_up_acr(\"mfa\")\n")
			case 1:
				b.WriteString("@status(\"404\")\n")
			}
		}
		fmt.Fprintf(&b, "%s (%s, %s, %s) %s;\n", effect, pick(principals), pick(actions), pick(resources), pick(conds))
	}
	return b.String()
}

const propEntities = `[
 {"uid": {"type": "Group", "id": "g0"}, "parents": [{"type": "Group", "id": "g1"}], "attrs": {}},
 {"uid": {"type": "Group", "id": "g2"}, "parents": [{"type": "Group", "id": "g3"}], "attrs": {}},
 {"uid": {"type": "Group", "id": "g3"}, "parents": [{"type": "Group", "id": "g4"}], "attrs": {}},
 {"uid": {"type": "User", "id": "u1"}, "parents": [{"type": "Group", "id": "g2"}], "attrs": {"age": 7}}
]`

var propRoutes = []RouteConfig{
	{Service: "svc", Method: "GET", Path: "/a/{id}", Resource: `Item::"{id}"`},
	{Service: "svc", Method: "POST", Path: "/a"},
	{Service: "svc", Method: "DELETE", Path: "/a/{id}", Resource: `Item::"{id}"`},
}

func genRequest(r *rand.Rand) *Request {
	types := []string{"User", "User", "User", "Client", "Workload", "Anonymous"}
	req := &Request{
		Principal: Principal{Type: types[r.IntN(len(types))], ID: fmt.Sprintf("u%d", r.IntN(5))},
		Method:    []string{"GET", "POST", "DELETE", "PATCH", "PROPFIND"}[r.IntN(5)],
		Path:      []string{"/a/1", "/a/2", "/a", "/b", "/a/1?x=1"}[r.IntN(5)],
		Host:      "svc.example:8080",
		Time:      time.Unix(1_700_000_000, 0),
	}
	for i := range 5 {
		if r.IntN(3) == 0 {
			req.Principal.Groups = append(req.Principal.Groups, fmt.Sprintf("g%d", i))
		}
	}
	if r.IntN(2) == 0 {
		req.Headers = []Header{{Name: "x-n", Value: fmt.Sprint(r.IntN(2))}}
	}
	if r.IntN(3) == 0 {
		req.Token = &token.View{Iss: "i", Sub: req.Principal.ID}
	}
	return req
}

// TestIndexEqualsFullScan: on generated policy sets the index gives the same
// decision, reasons, errors and step-up answer as evaluating every policy.
func TestIndexEqualsFullScan(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	sets, reqs := 150, 60
	if testing.Short() {
		sets = 30
	}
	differ := 0
	for i := range sets {
		src := genPolicies(r, 1+r.IntN(60))
		s, err := load(t, map[string]string{"p.cedar": src, EntitiesFile: propEntities}, propRoutes...)
		if err != nil {
			t.Fatalf("set %d: %v\n%s", i, err, src)
		}
		for range reqs {
			req := genRequest(r)
			full := s.decide(req, false)
			idx := s.decide(req, true)
			if d := cmp.Diff(full, idx, cmp.Comparer(func(a, b Result) bool {
				return a.Allow == b.Allow && slices.Equal(a.Reasons, b.Reasons) && slices.Equal(a.Errors, b.Errors) &&
					a.Status == b.Status && cmp.Equal(a.StepUp, b.StepUp)
			})); d != "" {
				t.Fatalf("set %d, request %+v: full scan vs index (-full +index):\n%s\npolicies:\n%s", i, req, d, src)
			}
			if full.Allow {
				differ++
			}
		}
	}
	if differ == 0 {
		t.Fatal("no request was ever allowed: the generator tests nothing")
	}
}

// TestIndexSkipsUnrelated: the index really narrows the candidates.
func TestIndexSkipsUnrelated(t *testing.T) {
	var b strings.Builder
	for i := range 1000 {
		fmt.Fprintf(&b, "@id(\"p%d\") permit(principal == User::\"u%d\", action == Action::\"GET /a/{id}\", resource);\n", i, i)
	}
	s, err := load(t, map[string]string{"p.cedar": b.String()}, propRoutes...)
	if err != nil {
		t.Fatal(err)
	}
	m := s.mapRequest(&Request{Principal: Principal{Type: "User", ID: "u7"}, Method: "GET", Path: "/a/1"})
	c := s.index.candidates(nil, m.actions, m.req.Principal.Type, m.principals)
	if len(c) != 1 {
		t.Errorf("candidates: got %d, want 1", len(c))
	}
}
