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

// genMaxAgeForbids writes n @step_up_max_age forbids whose scopes cover
// every index path (staleAuth skips the forbids the index leaves out).
func genMaxAgeForbids(r *rand.Rand, n int) string {
	principals := []string{"principal", `principal == User::"u1"`, `principal in Group::"g%d"`, "principal is User",
		"principal is Client", `principal is User in Group::"g%d"`}
	actions := []string{"action", `action == Action::"GET /a/{id}"`, `action in Action::"read"`, `action in Action::"write"`,
		`action in [Action::"GET", Action::"POST /a"]`, `action == Action::"PATCH"`}
	resources := []string{"resource", `resource in Service::"svc"`, "resource is Item", `resource == Item::"1"`}
	pick := func(ss []string) string {
		s := ss[r.IntN(len(ss))]
		if strings.Contains(s, "%d") {
			s = fmt.Sprintf(s, r.IntN(5))
		}
		return s
	}
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "@id(\"age%d\")\n@step_up_max_age(\"%d\")\n", i, 30*(1+r.IntN(4)))
		if r.IntN(2) == 0 {
			b.WriteString("@step_up_acr(\"mfa\")\n")
		}
		fmt.Fprintf(&b, "forbid (%s, %s, %s) when { context.request.method == \"PROPFIND\" };\n", pick(principals), pick(actions), pick(resources))
	}
	return b.String()
}

// TestStaleAuthIndexedEqualsFullScan: the @step_up_max_age answer of an
// indexed decision (which evaluates only the forbids among the index's
// candidates) equals the full scan's, which evaluates every forbid's scope.
func TestStaleAuthIndexedEqualsFullScan(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	stepped := 0
	for i := range 120 {
		src := genPolicies(r, 1+r.IntN(20)) + genMaxAgeForbids(r, 1+r.IntN(4))
		s, err := load(t, map[string]string{"p.cedar": src, EntitiesFile: propEntities}, propRoutes...)
		if err != nil {
			t.Fatalf("set %d: %v\n%s", i, err, src)
		}
		for range 40 {
			req := genRequest(r)
			if r.IntN(4) != 0 {
				req.Token = &token.View{Iss: "i", Sub: req.Principal.ID}
				if r.IntN(3) != 0 {
					req.Token.AuthTime = time.Unix(req.Time.Unix()-int64(r.IntN(150)), 0)
				}
			}
			full, idx := s.decide(req, false), s.decide(req, true)
			if d := cmp.Diff(full, idx, cmp.Comparer(func(a, b Result) bool {
				return a.Allow == b.Allow && slices.Equal(a.Reasons, b.Reasons) && slices.Equal(a.Errors, b.Errors) &&
					a.Status == b.Status && cmp.Equal(a.StepUp, b.StepUp)
			})); d != "" {
				t.Fatalf("set %d, request %+v: full scan vs index (-full +index):\n%s\npolicies:\n%s", i, req, d, src)
			}
			if full.StepUp != nil && full.StepUp.MaxAge >= 0 {
				stepped++
			}
		}
	}
	if stepped == 0 {
		t.Fatal("no request was ever sent to step up for its age: the generator tests nothing")
	}
}
