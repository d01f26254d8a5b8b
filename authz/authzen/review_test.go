package authzen_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wardenauthz/warden/authz/authzen"
	"github.com/wardenauthz/warden/authz/review"
	"github.com/wardenauthz/warden/policy"
)

// AuthZEN records are replayable: warden replay re-decides them as they
// were decided (stated resource properties included), and reports the
// change a candidate policy set makes; access-review counts their use.
func TestAuthZENRecordsReplayAndReview(t *testing.T) {
	p := startPDP(t, exampleConfig)
	for _, owner := range []string{"morty@the-citadel.com", "rick@the-citadel.com", "morty@the-citadel.com"} {
		if status, b := p.post(t, pepToken, authzen.PathEvaluation, mortyUpdates(owner)); status != 200 {
			t.Fatalf("HTTP %d %s", status, b)
		}
	}
	if n := len(p.recordsOf(t)); n != 3 {
		t.Fatalf("%d records", n)
	}
	ctx := context.Background()
	since := time.Now().Add(-time.Hour)
	same, err := policy.Load(policy.Source{FS: os.DirFS("../../examples/authzen/policies"), Dir: ".", Name: "policies"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := review.Replay(ctx, p.svc.Logs, since, same, 10)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Replayed != 3 || rep.Changed() {
		t.Errorf("replay against the same policies: %+v", rep)
	}
	// A candidate without the owner rule denies Morty's updates.
	dir := t.TempDir()
	for _, f := range []string{"gateway.cedar", "entities.json", "schema.cedarschema", "todo.cedar"} {
		b, err := os.ReadFile(filepath.Join("../../examples/authzen/policies", f))
		if err != nil {
			t.Fatal(err)
		}
		if f == "todo.cedar" {
			b = []byte(strings.Replace(string(b), "resource.ownerID == principal.email", "resource.ownerID == principal.email && false", 1))
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cand, err := policy.Load(policy.Source{FS: os.DirFS(dir), Dir: ".", Name: "candidate"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	rep, err = review.Replay(ctx, p.svc.Logs, since, cand, 10)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Counts[review.NewlyDenied] != 2 || rep.Counts[review.NewlyAllowed] != 0 {
		t.Errorf("replay against the candidate: %+v", rep.Counts)
	}
	rv, err := review.Review(ctx, p.svc.Logs, since, same, review.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, pr := range rv.Principals {
		if pr.Principal == `User::"`+morty+`"` {
			found = len(pr.Used) == 1 && pr.Used[0].Action == `Action::"can_update_todo"` && pr.Used[0].Count == 2
		}
	}
	if rv.Replayable != 3 || !found {
		t.Errorf("access review: %+v", rv)
	}
}
