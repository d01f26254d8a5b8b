package policy

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/wardenauthz/warden/internal/token"
)

// TestReplayDecidesAlike: on generated sets and requests, a decision's
// logged Cedar request, through JSON and back, is decided by Replay exactly
// as the live decision was (decision, reasons, errors, @status, step-up).
func TestReplayDecidesAlike(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	conds := []string{
		`when { context.request.headers["x-n"] == "1" }`,
		`when { context.path_params.id == "1" }`,
		`when { context has token && context.token.acr == "mfa" }`,
		`when { context.source.ip.isLoopback() }`,
		`when { context.now.toDate() == datetime("2023-11-14") }`,
		`when { principal has trust_domain && principal.trust_domain == "td" }`,
		`when { resource in Service::"svc" }`,
	}
	for i := range 100 {
		var b strings.Builder
		b.WriteString(genPolicies(r, 1+r.IntN(10)))
		for j := range 1 + r.IntN(4) {
			fmt.Fprintf(&b, "@id(\"c%d\")\npermit(principal, action, resource) %s;\n", j, conds[r.IntN(len(conds))])
		}
		fmt.Fprintf(&b, "@id(\"mfa\") @step_up_acr(\"mfa\") forbid(principal, action == Action::\"DELETE /a/{id}\", resource) unless { context has token && context.token has acr && context.token.acr == \"mfa\" };\n")
		files := map[string]string{"p.cedar": b.String(), EntitiesFile: propEntities}
		m := mapFSOf()
		for k, v := range files {
			m["p/"+k] = mapFSOf(k, v)[k]
		}
		s, err := Load(Source{FS: m, Dir: "p", Name: "policies", Replayable: true, AllowUnrouted: true}, propRoutes)
		if err != nil {
			t.Fatal(err)
		}
		for range 30 {
			req := genRequest(r)
			if r.IntN(2) == 0 {
				req.SourceIP = netip.MustParseAddr("127.0.0.1")
			}
			if r.IntN(3) == 0 {
				req.Principal = Principal{Type: "Workload", ID: "spiffe://td/x"}
				req.Workload = &Workload{ID: "spiffe://td/x", TrustDomain: "td"}
			}
			if r.IntN(3) == 0 {
				req.Token = &token.View{Iss: "i", Sub: "s", Acr: []string{"", "mfa"}[r.IntN(2)], Groups: []string{"g"}}
			}
			live := s.Decide(req)
			if live.Logged == nil {
				t.Fatal("no logged request from a replayable set")
			}
			j, err := json.Marshal(live.Logged)
			if err != nil {
				t.Fatal(err)
			}
			var back Logged
			if err := json.Unmarshal(j, &back); err != nil {
				t.Fatalf("%v\n%s", err, j)
			}
			again, err := s.Replay(&back)
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(live, again, cmp.Comparer(func(a, b Result) bool {
				return a.Allow == b.Allow && slices.Equal(a.Reasons, b.Reasons) && slices.Equal(a.Errors, b.Errors) &&
					a.Status == b.Status && cmp.Equal(a.StepUp, b.StepUp)
			})); d != "" {
				t.Fatalf("set %d: replay differs (-live +replay):\n%s\nlogged: %s", i, d, j)
			}
			if (live.Allow) != (back.Decision == "allow") {
				t.Fatalf("logged decision %q for allow=%v", back.Decision, live.Allow)
			}
		}
	}
}

// TestLoggedContextRedacted: headers and query parameters that look like
// credentials leave only as Redacted; the rest as they were.
func TestLoggedContextRedacted(t *testing.T) {
	s, err := Load(Source{FS: mapFSOf("p/p.cedar", `@id("a") permit(principal, action, resource);`), Dir: "p", Name: "p", Replayable: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	res := s.Decide(&Request{Principal: Principal{Type: "Anonymous", ID: "anonymous"}, Method: "GET", Host: "h",
		Path: "/x?access_token=s3cret-q&code=c0de&page=2&code=c0de2&assertion=s3cret-a",
		Headers: []Header{{"x-api-key", "s3cret-h"}, {"x-session-id", "s3cret-s"}, {"x-country-code", "fr"}, {"accept", "text/plain"},
			{"x-jwt-assertion", "s3cret-j"}, {"dpop", "s3cret-d"}, {"x-amzn-oidc-data", "s3cret-o"}}})
	j, err := json.Marshal(res.Logged)
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"s3cret", "c0de"} {
		if strings.Contains(string(j), secret) {
			t.Errorf("%s in %s", secret, j)
		}
	}
	for _, kept := range []string{`"x-country-code":"fr"`, `"accept":"text/plain"`, `"page":["2"]`, `"x-api-key":"[REDACTED]"`} {
		if !strings.Contains(string(j), kept) {
			t.Errorf("%s not in %s", kept, j)
		}
	}
}
