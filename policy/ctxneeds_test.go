package policy

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/wardenauthz/warden/internal/token"
)

func TestContextNeeds(t *testing.T) {
	for _, tc := range []struct {
		cond    string
		top     []string // members wanted
		request []string // request members wanted
		all     bool
	}{
		{cond: "", top: nil},
		{cond: `when { context.token.acr == "mfa" }`, top: []string{"token"}},
		{cond: `when { context["token"]["groups"].contains("a") }`, top: []string{"token"}},
		{cond: `when { context has source && context.source.ip.isLoopback() }`, top: []string{"source"}},
		{cond: `when { context.request.headers has "x-a" }`, request: []string{"headers"}},
		{cond: `when { context.request.method == "GET" && context.request.query == {} }`, request: []string{"method", "query"}},
		{cond: `when { context.request == {"method": "GET"} }`, request: []string{"method", "path", "headers", "query", "host"}},
		{cond: `when { context has request }`, request: []string{"method", "headers"}},
		{cond: `unless { context == {} }`, all: true},
		{cond: `when { {"c": context}.c.now == context.now }`, all: true},
		{cond: `when { (if true then context else context).now == 1 }`, all: true},
		{cond: `when { principal.context.request == 1 }`}, // an attribute named context is not the context
		{cond: `when { {"Var": "context"} == {} }`},
	} {
		t.Run(tc.cond, func(t *testing.T) {
			s, err := load(t, map[string]string{"p.cedar": `@id("p") permit(principal, action, resource) ` + tc.cond + ";"})
			if err != nil {
				t.Fatal(err)
			}
			n := s.needs
			if n.all != tc.all {
				t.Errorf("all: got %v, want %v", n.all, tc.all)
			}
			for _, k := range []string{"request", "path_params", "source", "now", "token", "workload", "extensions", "route"} {
				if want := tc.all || slices.Contains(tc.top, k); k != "request" && n.wantTop(k) != want {
					t.Errorf("top %s: got %v, want %v", k, n.wantTop(k), want)
				}
			}
			for _, k := range tc.request {
				if !n.wantReq(k) {
					t.Errorf("request.%s left out", k)
				}
			}
			if len(tc.request) == 0 && !tc.all && n.wantRequest() {
				t.Errorf("request built though no policy reads it")
			}
		})
	}
}

// TestContextLeftOutNeverChangesDecisions: on generated policy sets that
// read the context in every way Cedar allows, deciding on the context the
// set needs gives the same answer as deciding on the whole context.
func TestContextLeftOutNeverChangesDecisions(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	conds := []string{
		`when { context.request.method == "GET" }`,
		`when { context.request.headers["x-n"] == "1" }`,
		`when { context.request.headers has "x-n" }`,
		`unless { context.request has query }`,
		`when { context.request.query.x.contains("1") }`,
		`when { context.path_params.id == "1" }`,
		`when { context has token }`,
		`unless { context has workload }`,
		`when { context.source.ip.isLoopback() }`,
		`when { context has extensions && context.extensions.service == "svc" }`,
		`when { context.route.template == "/a/{id}" }`,
		`when { context.now.toDate() == datetime("2023-11-14") }`,
		`when { context.request == {"method": "GET", "path": "/b", "host": "svc.example"} }`,
		`when { context == {"request": {"method": "GET", "path": "/b", "host": "svc.example"}} }`,
		`unless { context.request.id like "*" }`,
	}
	for i := range 200 {
		var b strings.Builder
		b.WriteString(genPolicies(r, 1+r.IntN(10)))
		for j := range 1 + r.IntN(4) {
			fmt.Fprintf(&b, "@id(\"c%d\")\npermit(principal, action, resource) %s;\n", j, conds[r.IntN(len(conds))])
		}
		if r.IntN(3) == 0 { // Warden enforces it from context.token and context.now
			b.WriteString("@id(\"age\")\n@step_up_max_age(\"60\")\nforbid(principal, action, resource) when { context.request.method == \"PROPFIND\" };\n")
		}
		src := b.String()
		s, err := load(t, map[string]string{"p.cedar": src, EntitiesFile: propEntities}, propRoutes...)
		if err != nil {
			t.Fatalf("set %d: %v\n%s", i, err, src)
		}
		whole := *s
		whole.needs = fullContext
		for range 40 {
			req := genRequest(r)
			if r.IntN(2) == 0 {
				req.SourceIP = netip.MustParseAddr([]string{"127.0.0.1", "10.0.0.1"}[r.IntN(2)])
			}
			if r.IntN(2) == 0 {
				req.Extensions = map[string]string{"service": "svc"}
			}
			if r.IntN(3) == 0 {
				req.Workload = &Workload{ID: "spiffe://td/x", TrustDomain: "td"}
			}
			if r.IntN(2) == 0 {
				req.Path = "/b"
			}
			if req.Token != nil && r.IntN(2) == 0 {
				req.Token = &token.View{Iss: req.Token.Iss, Sub: req.Token.Sub, AuthTime: time.Unix(req.Time.Unix()-int64(r.IntN(120)), 0)}
			}
			got, want := s.Decide(req), whole.Decide(req)
			if d := cmp.Diff(want, got, cmp.Comparer(func(a, b Result) bool {
				return a.Allow == b.Allow && slices.Equal(a.Reasons, b.Reasons) && slices.Equal(a.Errors, b.Errors) &&
					a.Status == b.Status && cmp.Equal(a.StepUp, b.StepUp)
			})); d != "" {
				t.Fatalf("set %d, request %+v: whole context vs needed (-whole +needed):\n%s\npolicies:\n%s", i, req, d, src)
			}
		}
	}
}
