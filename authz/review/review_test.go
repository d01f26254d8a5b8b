package review

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/wardenauthz/warden/authz/decisionlog"
	"github.com/wardenauthz/warden/policy"
)

// The generated month: routes, policies, users and what each user does.
var routes = []policy.RouteConfig{
	{Method: "GET", Path: "/orders"},
	{Method: "GET", Path: "/orders/{id}", Resource: `Order::"{id}"`},
	{Method: "POST", Path: "/orders"},
	{Method: "DELETE", Path: "/orders/{id}", Resource: `Order::"{id}"`},
	{Method: "GET", Path: "/reports/{id}", Resource: `Report::"{id}"`},
}

const policies = `
@id("staff-read")
permit (principal in Group::"corp|staff", action in Action::"read", resource);

@id("staff-create")
permit (principal in Group::"corp|staff", action == Action::"POST /orders", resource);

@id("admin-all")
permit (principal in Group::"corp|admins", action, resource);

@id("own-reports")
permit (principal, action == Action::"GET /reports/{id}", resource)
when { context has token && context.token.sub == "carol" };

@id("legacy")
permit (principal in Group::"corp|legacy", action, resource);

@id("delete-needs-mfa")
forbid (principal, action == Action::"DELETE /orders/{id}", resource)
unless { context has token && context.token has acr && context.token.acr == "mfa" };
`

type user struct {
	sub    string
	groups []string
	acr    string
}

var users = map[string]user{
	"alice":   {"alice", []string{"corp|staff"}, ""},
	"bob":     {"bob", []string{"corp|staff"}, ""},
	"carol":   {"carol", []string{"corp|staff"}, ""},
	"dave":    {"dave", []string{"corp|admins"}, "mfa"},
	"erin":    {"erin", []string{"corp|admins", "corp|staff"}, ""},
	"mallory": {"mallory", nil, ""},
}

// month is who does what, each once a day for 30 days.
var month = []struct{ who, method, path string }{
	{"alice", "GET", "/orders/1"}, {"alice", "GET", "/orders"},
	{"bob", "GET", "/orders/2"}, {"bob", "POST", "/orders"},
	{"carol", "GET", "/reports/7"},
	{"dave", "DELETE", "/orders/3"},
	{"erin", "GET", "/orders"},
	{"mallory", "GET", "/orders"}, // denied every day
}

// paths gives a request for each action, to ask the suggested set about it.
var paths = map[string][2]string{
	`Action::"GET /orders"`: {"GET", "/orders"}, `Action::"GET /orders/{id}"`: {"GET", "/orders/9"},
	`Action::"POST /orders"`: {"POST", "/orders"}, `Action::"DELETE /orders/{id}"`: {"DELETE", "/orders/9"},
	`Action::"GET /reports/{id}"`: {"GET", "/reports/9"},
	`Action::"GET"`:               {"GET", "/x"}, `Action::"HEAD"`: {"HEAD", "/x"}, `Action::"OPTIONS"`: {"OPTIONS", "/x"},
	`Action::"POST"`: {"POST", "/x"}, `Action::"PUT"`: {"PUT", "/x"}, `Action::"PATCH"`: {"PATCH", "/x"}, `Action::"DELETE"`: {"DELETE", "/x"},
}

func loadSet(t testing.TB, src string) *policy.Set {
	t.Helper()
	s, err := policy.Load(policy.Source{FS: fstest.MapFS{"p/p.cedar": {Data: []byte(src)}}, Dir: "p", Name: "policies", Replayable: true}, routes)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func request(u user, method, path string, at time.Time) *policy.Request {
	r := &policy.Request{Principal: policy.Principal{Type: "User", ID: "corp|" + u.sub, Groups: u.groups},
		Method: method, Path: path, Host: "api.example.com", Time: at, Extensions: map[string]string{"service": "orders"}}
	r.Token = &policy.Token{Iss: "https://idp", Sub: u.sub, Acr: u.acr, Groups: u.groups}
	return r
}

// generate writes a month of replayable records of set to a file sink and
// returns it with each record's decision id by what was done (who, method, path).
func generate(t testing.TB, set *policy.Set, days int, extra func(i int) []policy.Request) (string, map[string][]string) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "decisions.jsonl")
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := bufio.NewWriterSize(f, 1<<20)
	ids := map[string][]string{}
	start := time.Now().Add(-time.Duration(days) * 24 * time.Hour)
	n := 0
	for d := range days {
		for i, use := range month {
			at := start.Add(time.Duration(d)*24*time.Hour + time.Duration(i)*time.Minute)
			res := set.Decide(request(users[use.who], use.method, use.path, at))
			rec := decisionlog.Record{Time: at, DecisionID: fmt.Sprintf("d%06d", n), Decision: "deny", Status: 403, Reason: decisionlog.ReasonPolicyDeny,
				Policies: res.Reasons, Principal: res.Principal.String(), Action: res.Action.String(), Resource: res.Resource.String(), Cedar: res.Logged}
			if res.Allow {
				rec.Decision, rec.Status, rec.Reason = "allow", 200, decisionlog.ReasonPolicyAllow
			}
			if rec.Policies == nil {
				rec.Policies = []string{}
			}
			key := use.who + " " + use.method + " " + use.path
			ids[key] = append(ids[key], rec.DecisionID)
			n++
			b, err := json.Marshal(rec)
			if err != nil {
				t.Fatal(err)
			}
			w.Write(append(b, '\n'))
		}
		// A refusal before the policies: counted, not replayable.
		b, _ := json.Marshal(decisionlog.Record{Time: start.Add(time.Duration(d) * 24 * time.Hour), DecisionID: fmt.Sprintf("x%06d", d), Decision: "deny", Status: 401, Reason: decisionlog.ReasonTokenInvalid, Policies: []string{}})
		w.Write(append(b, '\n'))
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	return file, ids
}

// TestAccessReviewKnownMonth: on a generated month with known usage, the
// review reports exactly the unused grants and unused policies, and its
// suggested set is valid, allows every logged allow again and none of the
// unused grants.
func TestAccessReviewKnownMonth(t *testing.T) {
	set := loadSet(t, policies)
	file, _ := generate(t, set, 30, nil)
	src := &decisionlog.FileSource{Path: file}
	rep, err := Review(context.Background(), src, time.Now().Add(-31*24*time.Hour), set, Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Records != 30*(len(month)+1) || rep.Replayable != 30*len(month) {
		t.Errorf("records %d, replayable %d", rep.Records, rep.Replayable)
	}
	read := []string{`Action::"GET"`, `Action::"GET /orders"`, `Action::"GET /orders/{id}"`, `Action::"GET /reports/{id}"`, `Action::"HEAD"`, `Action::"OPTIONS"`}
	all := slices.Sorted(func(yield func(string) bool) {
		for a := range paths {
			if !yield(a) {
				return
			}
		}
	})
	without := func(set []string, used ...string) []string {
		var out []string
		for _, a := range set {
			if !slices.Contains(used, a) {
				out = append(out, a)
			}
		}
		return out
	}
	staff := append(slices.Clone(read), `Action::"POST /orders"`)
	slices.Sort(staff)
	want := map[string]struct{ granted, unused []string }{
		`User::"corp|alice"`:   {staff, without(staff, `Action::"GET /orders/{id}"`, `Action::"GET /orders"`)},
		`User::"corp|bob"`:     {staff, without(staff, `Action::"GET /orders/{id}"`, `Action::"POST /orders"`)},
		`User::"corp|carol"`:   {staff, without(staff, `Action::"GET /reports/{id}"`)},
		`User::"corp|dave"`:    {all, without(all, `Action::"DELETE /orders/{id}"`)},
		`User::"corp|erin"`:    {all, without(all, `Action::"GET /orders"`)},
		`User::"corp|mallory"`: {[]string{`Action::"GET /reports/{id}"`}, []string{`Action::"GET /reports/{id}"`}}, // own-reports' scope is everyone
	}
	if len(rep.Principals) != len(want) {
		t.Fatalf("%d principals reviewed, want %d", len(rep.Principals), len(want))
	}
	for _, p := range rep.Principals {
		w := want[p.Principal]
		if !slices.Equal(sortedStrings(p.Granted), w.granted) {
			t.Errorf("%s granted:\n got %v\nwant %v", p.Principal, sortedStrings(p.Granted), w.granted)
		}
		if !slices.Equal(sortedStrings(p.Unused), sortedStrings(w.unused)) {
			t.Errorf("%s unused:\n got %v\nwant %v", p.Principal, sortedStrings(p.Unused), sortedStrings(w.unused))
		}
	}
	if !slices.Equal(rep.UnusedPolicies, []string{"legacy"}) {
		t.Errorf("unused policies: %v, want [legacy]", rep.UnusedPolicies)
	}
	staffSeen := false
	for _, g := range rep.Groups {
		if g.Group == `Group::"corp|staff"` {
			staffSeen = true
			if !slices.Equal(g.Policies, []string{"staff-read", "staff-create"}) || !slices.Equal(sortedStrings(g.Unused), []string{`Action::"GET"`, `Action::"HEAD"`, `Action::"OPTIONS"`}) {
				t.Errorf("staff group: %+v", g)
			}
		}
	}
	if !staffSeen {
		t.Error("no review of Group::\"corp|staff\"")
	}

	// The suggested set.
	text, err := rep.Suggest(set)
	if err != nil {
		t.Fatal(err)
	}
	sug, err := policy.Load(policy.Source{FS: fstest.MapFS{"s/suggested.cedar": {Data: []byte(text)}}, Dir: "s", Name: "suggested"}, routes)
	if err != nil {
		t.Fatalf("suggested set does not load: %v\n%s", err, text)
	}
	again, err := Replay(context.Background(), src, time.Now().Add(-31*24*time.Hour), sug, 100)
	if err != nil {
		t.Fatal(err)
	}
	if again.Counts[NewlyDenied] != 0 || again.Counts[NewlyAllowed] != 0 {
		t.Errorf("the suggested set changes logged decisions: %+v\n%s", again.Counts, text)
	}
	for _, p := range rep.Principals {
		u := users[strings.TrimSuffix(strings.TrimPrefix(p.Principal, `User::"corp|`), `"`)]
		for _, a := range p.Unused {
			mp := paths[a]
			if res := sug.Decide(request(u, mp[0], mp[1], time.Now())); res.Allow {
				t.Errorf("the suggested set allows %s the unused %s (by %v)\n%s", p.Principal, a, res.Reasons, text)
			}
		}
	}
	t.Logf("suggested:\n%s", text)
}

// TestReplayFindsExactlyTheFlips: a seeded policy change flips exactly the
// records it should, and an unchanged set flips none.
func TestReplayFindsExactlyTheFlips(t *testing.T) {
	set := loadSet(t, policies)
	file, ids := generate(t, set, 30, nil)
	src := &decisionlog.FileSource{Path: file}
	since := time.Now().Add(-31 * 24 * time.Hour)
	same, err := Replay(context.Background(), src, since, set, 10)
	if err != nil {
		t.Fatal(err)
	}
	if same.Changed() || same.Replayed != 30*len(month) || same.NotReplayable != 30 {
		t.Fatalf("unchanged set: %+v", same)
	}
	// staff may no longer list orders; mallory may.
	cand := strings.Replace(policies, `permit (principal in Group::"corp|staff", action in Action::"read", resource);`,
		`permit (principal in Group::"corp|staff", action in [Action::"GET /orders/{id}", Action::"GET /reports/{id}"], resource);
@id("mallory-lists")
permit (principal == User::"corp|mallory", action == Action::"GET /orders", resource);`, 1)
	rep, err := Replay(context.Background(), src, since, loadSet(t, cand), 1000)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]string{}
	for _, c := range rep.Changes {
		got[c.Kind] = append(got[c.Kind], c.DecisionID)
	}
	want := map[string][]string{
		NewlyDenied:    ids["alice GET /orders"],
		NewlyAllowed:   ids["mallory GET /orders"],
		ReasonsChanged: ids["erin GET /orders"], // admin-all still allows: only the reasons change
	}
	for k, w := range want {
		if !slices.Equal(sortedStrings(got[k]), sortedStrings(w)) {
			t.Errorf("%s:\n got %v\nwant %v", k, got[k], w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("change kinds: %v", got)
	}
}

func sortedStrings(ss []string) []string {
	out := slices.Clone(ss)
	slices.Sort(out)
	return out
}
