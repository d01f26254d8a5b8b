package admin

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/wardenauthz/warden/authz/decisionlog"
	adminv1 "github.com/wardenauthz/warden/proto/warden/admin/v1"
)

// fileLog writes n decision records (the oldest first, one a millisecond
// up to now) into a file sink's file and returns its source and the ids.
func fileLog(t *testing.T, n int, now time.Time) (*decisionlog.FileSource, []string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "decisions.jsonl")
	var b []byte
	var ids []string
	for i := range n {
		r := &decisionlog.Record{Time: now.Add(-time.Duration(n-i) * time.Millisecond), DecisionID: fmt.Sprintf("%032x", i+1),
			Decision: "deny", Status: 401, Reason: "no_credentials", Policies: []string{}}
		line, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		b = append(append(b, line...), '\n')
		ids = append(ids, r.DecisionID)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return &decisionlog.FileSource{Path: path}, ids
}

// TestQueryDecisionsConcurrency: QueryDecisions computes at most
// MaxQueries at once and one per caller; a query past either is refused
// RESOURCE_EXHAUSTED at once, never queued (the old service ran every
// query: eight from one reader token starved the Checks, issue F1).
func TestQueryDecisionsConcurrency(t *testing.T) {
	now := time.Now()
	src, _ := fileLog(t, 100, now)
	entered, hold := make(chan string, 8), make(chan struct{})
	s := &Service{Logs: src, Now: func() time.Time { return now }, Sync: func(ctx context.Context) error {
		entered <- CallerOf(ctx)
		<-hold
		return nil
	}}
	query := func(who string) error {
		_, err := s.QueryDecisions(WithCaller(context.Background(), who), &adminv1.QueryDecisionsRequest{PageSize: 1})
		return err
	}
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for _, who := range []string{"token:a:1", "token:b:1"} {
		wg.Add(1)
		go func() { defer wg.Done(); errs <- query(who) }()
		<-entered // holds its slot (in Sync) until hold closes
	}
	for _, who := range []string{"token:a:1", "token:b:1", "token:c:1", ""} {
		if err := query(who); status.Code(err) != codes.ResourceExhausted {
			t.Errorf("%q, two queries under way: %v, want RESOURCE_EXHAUSTED", who, err)
		}
	}
	close(hold)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("held query: %v", err)
		}
	}
	// The slots are given back.
	go func() {
		for range entered {
		}
	}()
	for _, who := range []string{"token:a:1", "token:c:1"} {
		if err := query(who); err != nil {
			t.Errorf("%q after: %v", who, err)
		}
	}
	close(entered)

	// One caller may hold one query: a second caller still gets the other.
	s2 := &Service{Logs: src, Now: func() time.Time { return now }, MaxQueries: 3, MaxQueriesPerCaller: 2}
	s2.init()
	r1, ok1 := s2.queries.Take("x")
	r2, ok2 := s2.queries.Take("x")
	_, ok3 := s2.queries.Take("x")
	r4, ok4 := s2.queries.Take("y")
	_, ok5 := s2.queries.Take("z")
	if !ok1 || !ok2 || ok3 || !ok4 || ok5 {
		t.Errorf("slots: %v %v %v %v %v, want true true false true false", ok1, ok2, ok3, ok4, ok5)
	}
	r1()
	r2()
	r4()
	if len(s2.queries.by) != 0 || s2.queries.open != 0 {
		t.Errorf("slots not given back: %d open, %v", s2.queries.open, s2.queries.by)
	}
}

// TestQueryDecisionsScanBound: one QueryDecisions reads at most MaxScan
// records; a decision_id lookup past the bound answers no decisions with
// scan_bound_reached and a next_page_token that finds it (never a silent
// "not found"), and a page of one over a large log reads the newest
// records only.
func TestQueryDecisionsScanBound(t *testing.T) {
	now := time.Now()
	src, ids := fileLog(t, 5000, now)
	s := &Service{Logs: src, Now: func() time.Time { return now }, MaxScan: 1000}
	ctx := context.Background()

	resp, err := s.QueryDecisions(ctx, &adminv1.QueryDecisionsRequest{PageSize: 1})
	if err != nil || len(resp.Decisions) != 1 || resp.Decisions[0].DecisionId != ids[len(ids)-1] || resp.NextPageToken == "" || resp.ScanBoundReached {
		t.Fatalf("page of one: %v, %v", resp, err)
	}

	token, calls := "", 0
	for {
		calls++
		resp, err := s.QueryDecisions(ctx, &adminv1.QueryDecisionsRequest{DecisionId: ids[0], PageToken: token})
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.Decisions) == 1 {
			if resp.Decisions[0].DecisionId != ids[0] || resp.ScanBoundReached {
				t.Fatalf("found %v", resp)
			}
			break
		}
		if !resp.ScanBoundReached || resp.NextPageToken == "" {
			t.Fatalf("call %d: no decisions, scan_bound_reached %v, next %q: a silent not found", calls, resp.ScanBoundReached, resp.NextPageToken)
		}
		token = resp.NextPageToken
		if calls > 10 {
			t.Fatal("lookup does not end")
		}
	}
	if calls != 5 { // 5,000 records, 1,000 a call
		t.Errorf("found in call %d, want 5 (1,000 records read a call)", calls)
	}

	// A missing id, within the bound: an empty answer that says so.
	small := &Service{Logs: src, Now: func() time.Time { return now }}
	resp, err = small.QueryDecisions(ctx, &adminv1.QueryDecisionsRequest{DecisionId: fmt.Sprintf("%032x", 99999)})
	if err != nil || len(resp.Decisions) != 0 || resp.ScanBoundReached || resp.NextPageToken != "" {
		t.Errorf("missing id: %v, %v", resp, err)
	}
	if _, err := s.QueryDecisions(ctx, &adminv1.QueryDecisionsRequest{PageToken: "t:1:x"}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("foreign page token: %v", err)
	}
}

// TestQueryDecisionsLogBehind: a query whose Sync did not complete (a
// sink stalled past syncWait) answers what is written and says log_behind
// (the session-12 outside attack F3: it answered OK, silently without the
// decisions made just before it); one whose Sync completed does not.
func TestQueryDecisionsLogBehind(t *testing.T) {
	now := time.Now()
	src, _ := fileLog(t, 3, now)
	for _, stalled := range []bool{false, true} {
		s := &Service{Logs: src, Now: func() time.Time { return now }, Sync: func(ctx context.Context) error {
			if stalled {
				<-ctx.Done()
				return ctx.Err()
			}
			return nil
		}}
		resp, err := s.QueryDecisions(WithCaller(context.Background(), "reader"), &adminv1.QueryDecisionsRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.Decisions) != 3 || resp.LogBehind != stalled {
			t.Errorf("sink stalled %v: %d decisions, log_behind %v; want 3, %v", stalled, len(resp.Decisions), resp.LogBehind, stalled)
		}
	}
}
