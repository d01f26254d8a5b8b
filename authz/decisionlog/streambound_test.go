package decisionlog_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wardenauthz/warden/authz/decisionlog"
	"github.com/wardenauthz/warden/ratelimit/redistest"
)

// TestStreamQueryBounded: the Redis stream source's bounded query reads a
// page of one as two entries, stops a decision_id lookup at its record
// bound with capped set and a cursor that continues (the old Query read
// the whole window for it: 7.4 s at 227,000 records, issue F1), and pages
// through every match once.
func TestStreamQueryBounded(t *testing.T) {
	srv := redistest.Start(t)
	c := redis.NewClient(&redis.Options{Network: "unix", Addr: srv.Addr})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	now := time.Now().UTC()
	const n = 2500
	p := c.Pipeline()
	for i := range n {
		b := fmt.Sprintf(`{"time":%q,"decision_id":"%032x","decision":"deny","status":401,"reason":"no_credentials"}`,
			now.Add(-time.Duration(n-i)*time.Millisecond).Format(time.RFC3339Nano), i+1)
		p.XAdd(ctx, &redis.XAddArgs{Stream: "decisions", Values: []any{decisionlog.StreamField, b}})
	}
	if _, err := p.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	src := &decisionlog.StreamSource{Client: c, Stream: "decisions"}
	since := now.Add(-time.Hour)

	recs, next, read, capped, err := src.QueryBounded(ctx, decisionlog.Filter{Since: since}, 1, "", 1000)
	if err != nil || len(recs) != 1 || recs[0].DecisionID != fmt.Sprintf("%032x", n) || next == "" || capped || read != 2 {
		t.Fatalf("page of one: %d records, next %q, read %d, capped %v, %v", len(recs), next, read, capped, err)
	}

	// A decision id names one record: its lookup stops at it.
	recs, next, read, capped, err = src.QueryBounded(ctx, decisionlog.Filter{Since: since, DecisionID: fmt.Sprintf("%032x", n-5)}, 100, "", 1000)
	if err != nil || len(recs) != 1 || next != "" || capped || read > 14 {
		t.Errorf("recent by id: %d records, next %q, read %d, capped %v, %v", len(recs), next, read, capped, err)
	}

	f := decisionlog.Filter{Since: since, DecisionID: fmt.Sprintf("%032x", 1)}
	cursor := ""
	for calls := 1; ; calls++ {
		recs, next, read, capped, err := src.QueryBounded(ctx, f, 100, cursor, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if read > 1000 {
			t.Fatalf("read %d past the bound of 1000", read)
		}
		if len(recs) == 1 {
			if calls != 3 || capped || next != "" {
				t.Errorf("found in call %d, capped %v, next %q; want call 3", calls, capped, next)
			}
			break
		}
		if !capped || next == "" || read != 1000 {
			t.Fatalf("call %d: nothing found, capped %v, next %q, read %d: a silent not found", calls, capped, next, read)
		}
		if cursor = next; calls > 5 {
			t.Fatal("lookup does not end")
		}
	}

	seen := map[string]bool{}
	cursor = ""
	for pages := 0; ; pages++ {
		recs, next, _, _, err := src.QueryBounded(ctx, decisionlog.Filter{Since: since}, 300, cursor, 700)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			if seen[r.DecisionID] {
				t.Fatalf("%s twice", r.DecisionID)
			}
			seen[r.DecisionID] = true
		}
		if cursor = next; cursor == "" || pages > 20 {
			break
		}
	}
	if len(seen) != n {
		t.Errorf("paged through %d records, want %d", len(seen), n)
	}
}
