package policy_test

import (
	"encoding/json"
	"testing"

	"github.com/cedar-policy/cedar-go"

	"github.com/wardenauthz/warden/policy"
)

const evalPolicies = `
@id("owner") permit (principal in Role::"editor", action == Action::"edit", resource is Doc)
  when { resource has owner && principal has email && resource.owner == principal.email };
@id("admin") permit (principal in Role::"admin", action in Action::"write", resource);
@id("no-tmp") forbid (principal, action, resource) when { resource.tmp };
`

const evalEntities = `[
 {"uid": {"type": "Role", "id": "editor"}, "attrs": {}, "parents": []},
 {"uid": {"type": "Role", "id": "admin"}, "attrs": {}, "parents": []},
 {"uid": {"type": "User", "id": "ed"}, "attrs": {"email": "ed@x"}, "parents": [{"type": "Role", "id": "editor"}]},
 {"uid": {"type": "User", "id": "root"}, "attrs": {}, "parents": [{"type": "Role", "id": "admin"}]},
 {"uid": {"type": "Action", "id": "edit"}, "attrs": {}, "parents": []}
]`

func evalSet(t *testing.T, replayable bool) *policy.Set {
	t.Helper()
	s, err := policy.Load(policy.Source{FS: mapFS("p.cedar", evalPolicies, "entities.json", evalEntities), Dir: ".", Name: "p", Replayable: replayable}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func doc(owner string, tmp bool) policy.EvalEntity {
	return policy.EvalEntity{UID: cedar.NewEntityUID("Doc", "d1"), Attrs: cedar.NewRecord(cedar.RecordMap{"owner": cedar.String(owner), "tmp": cedar.Boolean(tmp)})}
}

// Evaluate: parents come from the set, stated attributes fill in what the
// set lacks but never replace what it holds, an erroring forbid denies,
// and an action the set does not define gets no HTTP method group.
func TestEvaluate(t *testing.T) {
	s := evalSet(t, false)
	ed := policy.EvalEntity{UID: cedar.NewEntityUID("User", "ed")}
	edit := cedar.NewEntityUID("Action", "edit")
	for _, c := range []struct {
		name string
		r    policy.EvalRequest
		want bool
		err  bool
	}{
		{"owner", policy.EvalRequest{Principal: ed, Action: edit, Resource: doc("ed@x", false)}, true, false},
		{"not owner", policy.EvalRequest{Principal: ed, Action: edit, Resource: doc("al@x", false)}, false, false},
		{"stated email does not replace the stored one", policy.EvalRequest{
			Principal: policy.EvalEntity{UID: ed.UID, Attrs: cedar.NewRecord(cedar.RecordMap{"email": cedar.String("al@x")})},
			Action:    edit, Resource: doc("al@x", false)}, false, false},
		{"unknown user's stated email gives no role", policy.EvalRequest{
			Principal: policy.EvalEntity{UID: cedar.NewEntityUID("User", "mallory"), Attrs: cedar.NewRecord(cedar.RecordMap{"email": cedar.String("ed@x")})},
			Action:    edit, Resource: doc("ed@x", false)}, false, false},
		{"forbid applies", policy.EvalRequest{Principal: ed, Action: edit, Resource: doc("ed@x", true)}, false, false},
		{"forbid errors (no tmp): deny", policy.EvalRequest{Principal: ed, Action: edit,
			Resource: policy.EvalEntity{UID: cedar.NewEntityUID("Doc", "d1"), Attrs: cedar.NewRecord(cedar.RecordMap{"owner": cedar.String("ed@x")})}}, false, true},
		// An undefined action is not put under Action::"write".
		{"undefined action", policy.EvalRequest{Principal: policy.EvalEntity{UID: cedar.NewEntityUID("User", "root")}, Action: cedar.NewEntityUID("Action", "nuke"), Resource: doc("x", false)}, false, false},
		{"a method action is in write", policy.EvalRequest{Principal: policy.EvalEntity{UID: cedar.NewEntityUID("User", "root")}, Action: cedar.NewEntityUID("Action", "DELETE"), Resource: doc("x", false)}, true, false},
	} {
		res := s.Evaluate(&c.r)
		if res.Allow != c.want || res.PolicyError != c.err {
			t.Errorf("%s: allow %v policy error %v (reasons %v, errors %v), want %v %v", c.name, res.Allow, res.PolicyError, res.Reasons, res.Errors, c.want, c.err)
		}
	}
}

// An evaluation's logged request, through JSON and back, replays to the
// same decision (warden replay and access-review read AuthZEN records),
// stated resource attributes included.
func TestEvaluateReplays(t *testing.T) {
	s := evalSet(t, true)
	ed := policy.EvalEntity{UID: cedar.NewEntityUID("User", "ed"), Attrs: cedar.NewRecord(cedar.RecordMap{"email": cedar.String("al@x"), "dept": cedar.String("r")})}
	edit := cedar.NewEntityUID("Action", "edit")
	for _, r := range []policy.EvalRequest{
		{Principal: ed, Action: edit, Resource: doc("ed@x", false)},
		{Principal: ed, Action: edit, Resource: doc("al@x", false)},
		{Principal: ed, Action: edit, Resource: doc("ed@x", true)},
		// An undefined action stays outside Action::"write" in replay too.
		{Principal: policy.EvalEntity{UID: cedar.NewEntityUID("User", "root")}, Action: cedar.NewEntityUID("Action", "nuke"), Resource: doc("x", false)},
		{Principal: policy.EvalEntity{UID: cedar.NewEntityUID("User", "root")}, Action: cedar.NewEntityUID("Action", "DELETE"), Resource: doc("x", false)},
	} {
		live := s.Evaluate(&r)
		if live.Logged == nil {
			t.Fatal("no logged request")
		}
		b, err := json.Marshal(live.Logged)
		if err != nil {
			t.Fatal(err)
		}
		var l policy.Logged
		if err := json.Unmarshal(b, &l); err != nil {
			t.Fatal(err)
		}
		again, err := s.Replay(&l)
		if err != nil {
			t.Fatal(err)
		}
		if again.Allow != live.Allow || len(again.Reasons) != len(live.Reasons) {
			t.Errorf("%s: replayed allow %v %v, live %v %v", b, again.Allow, again.Reasons, live.Allow, live.Reasons)
		}
	}
}
