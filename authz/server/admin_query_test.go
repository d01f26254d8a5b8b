package server_test

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

	"github.com/wardenauthz/warden/authz/admin"
	"github.com/wardenauthz/warden/authz/config"
	"github.com/wardenauthz/warden/authz/decisionlog"
	adminv1 "github.com/wardenauthz/warden/proto/warden/admin/v1"
)

// TestAdminQueriesUnderLoad: eight concurrent QueryDecisions from one
// reader token (the QueryDecisions grant only) over a file sink holding
// 50,000 records while Checks run: one query per caller runs, the others
// are refused RESOURCE_EXHAUSTED at once; the one that runs reads its
// bound (20,000 records) and answers scan_bound_reached with a page token
// rather than "not found"; every Check is answered as without the queries.
// Before, every query read the whole window (issue F1: Checks fell from
// 70,266 to 112 in 10 s under eight such queries, which failed at 30 s).
func TestAdminQueriesUnderLoad(t *testing.T) {
	file := filepath.Join(t.TempDir(), "decisions.jsonl")
	var b []byte
	for i := range 50000 { // anonymous denials, an outsider's flood
		r := &decisionlog.Record{Time: fixedNow().Add(-time.Duration(50000-i) * time.Millisecond), DecisionID: fmt.Sprintf("%032x", i+1),
			Decision: "deny", Status: 401, Reason: "no_credentials", Policies: []string{}}
		line, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		b = append(append(b, line...), '\n')
	}
	if err := os.WriteFile(file, b, 0o600); err != nil {
		t.Fatal(err)
	}
	tokens := adminTokens(t)
	e := start(t, func(c *config.Config) {
		c.Admin.TokenFile = tokens
		c.DecisionLog.Sinks = []config.Sink{{Kind: "file", Path: file, MaxSizeMB: 100, MaxBackups: 1}}
	})
	reader := dialAdmin(t, e.admin, admin.ClientOptions{TokenFile: tokenFileOf(t, readerToken)})
	alice := e.token(t, "alice", "staff")
	missing := fmt.Sprintf("%032x", 1<<40)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	go0 := make(chan struct{})
	type answer struct {
		resp *adminv1.QueryDecisionsResponse
		err  error
	}
	answers := make(chan answer, 8)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-go0
			resp, err := reader.QueryDecisions(ctx, &adminv1.QueryDecisionsRequest{DecisionId: missing, PageSize: 1000})
			answers <- answer{resp, err}
		}()
	}
	queriesDone := make(chan struct{})
	go func() { wg.Wait(); close(queriesDone) }()
	close(go0)
	checks := 0
	for done := false; !done && checks < 500; checks++ {
		if r := e.reason(t, alice); r != "policy_allow" {
			t.Fatalf("Check %d during the queries: %s", checks, r)
		}
		select {
		case <-queriesDone:
			done = true
		default:
		}
	}
	<-queriesDone
	close(answers)
	ran, refused := 0, 0
	for a := range answers {
		switch {
		case status.Code(a.err) == codes.ResourceExhausted:
			refused++
		case a.err != nil:
			t.Errorf("query: %v", a.err)
		default:
			ran++
			if len(a.resp.Decisions) != 0 || !a.resp.ScanBoundReached || a.resp.NextPageToken == "" {
				t.Errorf("query over 50,000 records: %d decisions, scan_bound_reached %v, next %q: want the bound reported",
					len(a.resp.Decisions), a.resp.ScanBoundReached, a.resp.NextPageToken)
			}
		}
	}
	if ran == 0 || refused == 0 || ran+refused != 8 {
		t.Errorf("%d queries ran, %d refused: want one caller's queries bounded", ran, refused)
	}
	t.Logf("%d Checks during the queries; %d ran, %d refused", checks, ran, refused)

	// The bound's page token continues: the third call reads to the end.
	token := ""
	for calls := 1; ; calls++ {
		resp, err := reader.QueryDecisions(ctx, &adminv1.QueryDecisionsRequest{DecisionId: missing, PageToken: token})
		if err != nil {
			t.Fatal(err)
		}
		if !resp.ScanBoundReached {
			if calls != 3 || resp.NextPageToken != "" || len(resp.Decisions) != 0 {
				t.Errorf("call %d: %v", calls, resp)
			}
			break
		}
		if token = resp.NextPageToken; token == "" || calls > 5 {
			t.Fatalf("call %d: bound reached without a page token", calls)
		}
	}
}
