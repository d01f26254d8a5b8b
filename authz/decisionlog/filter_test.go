package decisionlog

import (
	"fmt"
	"go/ast"
	"go/parser"
	gotoken "go/token"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestFilterCheck: every malformed value is an error naming the form it
// wants, all at once; entity references are compared in canonical form.
func TestFilterCheck(t *testing.T) {
	now := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	f, err := Filter{
		Principal: "alice", Resource: `Resource::"unclosed`, Action: `User::"x"`, Decision: "Deny",
		Reason: "denied", DecisionID: "xyz", Status: 42, Policy: "a\nb", Node: "n\x00",
		Since: now, Until: now.Add(-time.Hour),
	}.Check()
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{
		`principal: "alice": want a Cedar entity reference, e.g. User::"corp|alice"`,
		`resource: "Resource::\"unclosed": want a Cedar entity reference`,
		`action: "User::\"x\"": want an Action entity`,
		`decision: "Deny": want allow or deny`,
		`reason: "denied": want one of anonymous_deny, policy_allow, policy_deny,`,
		`decision_id: "xyz": want the 32 hex digits`,
		`status: 42: want an HTTP status`,
		`policy: "a\nb"`, `node: "n\x00"`,
		`until: 2026-11-28T09:00:00Z is not after since`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("want %q in:\n%v", want, err)
		}
	}
	if n := strings.Count(err.Error(), "\n") + 1; n != 10 {
		t.Errorf("%d problems, want 10:\n%v", n, err)
	}

	f, err = Filter{Principal: `User::"corp\u{7c}alice"`, DecisionID: "ABCDEF0123456789ABCDEF0123456789", Reason: ReasonPolicyDeny}.Check()
	if err != nil {
		t.Fatal(err)
	}
	if f.Principal != `User::"corp|alice"` || f.DecisionID != "abcdef0123456789abcdef0123456789" {
		t.Errorf("not canonical: %+v", f)
	}
}

func TestFilterMatch(t *testing.T) {
	at := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	r := &Record{Time: at, DecisionID: "0123456789abcdef0123456789abcdef", Decision: "deny", Status: 403, Reason: ReasonPolicyDeny,
		Principal: `User::"corp|alice"`, Action: `Action::"DELETE /orders/{id}"`, Resource: `Resource::"orders-api:/orders/42"`,
		Policies: []string{"orders-delete-needs-mfa", "other"}, Node: "warden-1"}
	for _, tc := range []struct {
		f    Filter
		want bool
	}{
		{Filter{}, true},
		{Filter{DecisionID: r.DecisionID}, true},
		{Filter{DecisionID: "fedcba9876543210fedcba9876543210"}, false},
		{Filter{Reason: ReasonPolicyDeny}, true},
		{Filter{Reason: ReasonTokenInvalid}, false},
		{Filter{Policy: "other"}, true},
		{Filter{Policy: "orders"}, false}, // exact ids, not substrings
		{Filter{Resource: r.Resource}, true},
		{Filter{Resource: `Resource::"orders-api:/orders/4"`}, false},
		{Filter{Node: "warden-1"}, true},
		{Filter{Node: "warden-2"}, false},
		{Filter{Since: at, Until: at.Add(time.Second)}, true},
		{Filter{Until: at}, false}, // until is exclusive
		{Filter{Since: at.Add(time.Nanosecond)}, false},
		{Filter{Principal: r.Principal, Decision: "deny", Status: 403, Action: r.Action}, true},
		{Filter{Principal: r.Principal, Decision: "allow"}, false},
	} {
		if got := tc.f.Match(r); got != tc.want {
			t.Errorf("%+v: got %v, want %v", tc.f, got, tc.want)
		}
	}
}

// TestReasonsComplete: every Reason constant of the package is in Reasons,
// so that `warden logs --reason` accepts each reason a record can hold.
func TestReasonsComplete(t *testing.T) {
	fset := gotoken.NewFileSet()
	names, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, name := range names {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(node ast.Node) bool {
			vs, ok := node.(*ast.ValueSpec)
			if !ok || vs.Type == nil || fmt.Sprint(vs.Type) != "Reason" {
				return true
			}
			for _, v := range vs.Values {
				lit, ok := v.(*ast.BasicLit)
				if !ok {
					continue
				}
				n++
				r, _ := strconv.Unquote(lit.Value)
				if !slices.Contains(Reasons, Reason(r)) {
					t.Errorf("reason %s is not in Reasons", lit.Value)
				}
			}
			return true
		})
	}
	if n != len(Reasons) {
		t.Errorf("%d Reason constants, %d in Reasons", n, len(Reasons))
	}
}
