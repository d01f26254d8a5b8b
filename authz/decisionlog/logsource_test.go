package decisionlog

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestPaging: the file and memory sources page newest first through every
// matching record exactly once, including records with equal times.
func TestPaging(t *testing.T) {
	base := time.Date(2026, 6, 2, 14, 0, 0, 0, time.UTC)
	var recs []*Record
	for i := range 250 {
		d := "allow"
		if i%3 == 0 {
			d = "deny"
		}
		// Runs of five records share a time; every tenth is written late.
		at := base.Add(time.Duration(i/5) * time.Second)
		if i%10 == 9 {
			at = at.Add(-3 * time.Second)
		}
		recs = append(recs, &Record{Time: at, DecisionID: fmt.Sprintf("d%03d", i), Decision: Decision(d), Policies: []string{}})
	}
	path := filepath.Join(t.TempDir(), "decisions.jsonl")
	var lines []byte
	ring := NewRing(1000, 0)
	for _, r := range recs {
		var err error
		if lines, err = appendJSON(lines, r); err != nil {
			t.Fatal(err)
		}
		ring.Add(r)
	}
	if err := os.WriteFile(path, lines, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, src := range []LogSource{&FileSource{Path: path}, ring} {
		for _, f := range []Filter{{}, {Decision: "deny"}} {
			want := 0
			for _, r := range recs {
				if f.Match(r) {
					want++
				}
			}
			seen := map[string]bool{}
			var prev *Record
			cursor := ""
			for {
				page, next, err := src.Query(context.Background(), f, 7, cursor)
				if err != nil {
					t.Fatal(err)
				}
				for _, r := range page {
					if seen[r.DecisionID] {
						t.Fatalf("%s: %s twice", src.Kind(), r.DecisionID)
					}
					seen[r.DecisionID] = true
					if prev != nil && cursorOf(prev).older(cursorOf(r)) {
						t.Fatalf("%s: %s after %s: not newest first", src.Kind(), r.DecisionID, prev.DecisionID)
					}
					prev = r
				}
				if next == "" {
					break
				}
				cursor = next
			}
			if len(seen) != want {
				t.Errorf("%s %+v: %d records, want %d", src.Kind(), f, len(seen), want)
			}
		}
		if _, _, err := src.Query(context.Background(), Filter{}, 5, "s:1-1"); err != ErrBadCursor {
			t.Errorf("%s: foreign cursor: %v", src.Kind(), err)
		}
	}
	// A ring keeps only the newest n.
	small := NewRing(10, 0)
	for _, r := range recs {
		small.Add(r)
	}
	got, _, _ := small.Query(context.Background(), Filter{}, 100, "")
	if len(got) != 10 {
		t.Errorf("ring of 10 returned %d", len(got))
	}
}
