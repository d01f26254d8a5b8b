package decisionlog

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"gopkg.in/natefinch/lumberjack.v2"
)

// boundedLog writes n records (every tenth written 3 s late) into path, in
// files of per records (the oldest first, named as lumberjack names
// backups); it returns them oldest written first.
func boundedLog(t *testing.T, path string, n, per int) []*Record {
	t.Helper()
	base := time.Now().Add(-time.Hour).UTC()
	var recs []*Record
	for i := range n {
		at := base.Add(time.Duration(i) * 10 * time.Millisecond)
		if i%10 == 9 {
			at = at.Add(-3 * time.Second)
		}
		d := Decision("allow")
		if i%3 == 0 {
			d = "deny"
		}
		recs = append(recs, &Record{Time: at, DecisionID: fmt.Sprintf("%032x", i+1), Decision: d, Policies: []string{}})
	}
	ext := filepath.Ext(path)
	for i := 0; i < n; i += per {
		var b []byte
		for _, r := range recs[i:min(i+per, n)] {
			var err error
			if b, err = appendJSON(b, r); err != nil {
				t.Fatal(err)
			}
		}
		name := path
		if i+per < n {
			name = fmt.Sprintf("%s-2026-06-02T14-%02d-00.000%s", path[:len(path)-len(ext)], i/per, ext)
		}
		if err := os.WriteFile(name, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return recs
}

// TestFileQueryBounded: the file source's bounded query pages through every
// matching record exactly once across its files (records written late
// included), reads a page of one without reading the window, and stops at
// its record bound with what it found, a cursor that continues, and
// capped set: a record past the bound is found on a following page, never
// answered "not found" (the old Query read the whole window every call).
func TestFileQueryBounded(t *testing.T) {
	path := filepath.Join(t.TempDir(), "decisions.jsonl")
	recs := boundedLog(t, path, 3000, 700)
	src := &FileSource{Path: path}
	ctx := context.Background()

	for _, f := range []Filter{{}, {Decision: "deny"}} {
		want := 0
		for _, r := range recs {
			if f.Match(r) {
				want++
			}
		}
		seen := map[string]bool{}
		cursor := ""
		for pages := 0; ; pages++ {
			page, next, _, capped, err := src.QueryBounded(ctx, f, 7, cursor, 0)
			if err != nil {
				t.Fatal(err)
			}
			if capped {
				t.Fatal("capped without a bound")
			}
			for i, r := range page {
				if seen[r.DecisionID] {
					t.Fatalf("%s twice", r.DecisionID)
				}
				seen[r.DecisionID] = true
				if i > 0 && cursorOf(page[i-1]).older(cursorOf(r)) {
					t.Fatalf("page not newest first at %d", i)
				}
			}
			if next == "" {
				break
			}
			if pages > want {
				t.Fatal("paging does not end")
			}
			cursor = next
		}
		if len(seen) != want {
			t.Errorf("%+v: %d records, want %d", f, len(seen), want)
		}
	}

	// A page of one reads two records (one more to know there is a next).
	page, next, read, capped, err := src.QueryBounded(ctx, Filter{}, 1, "", 0)
	if err != nil || len(page) != 1 || page[0].DecisionID != recs[len(recs)-1].DecisionID || next == "" || capped || read != 2 {
		t.Errorf("page of one: %d records, next %q, read %d, capped %v, %v", len(page), next, read, capped, err)
	}

	// A decision id names one record: its lookup stops at it (the newest
	// here: one record read), with no next page.
	page, next, read, capped, err = src.QueryBounded(ctx, Filter{DecisionID: recs[len(recs)-1].DecisionID}, 100, "", 400)
	if err != nil || len(page) != 1 || next != "" || capped || read != 1 {
		t.Errorf("newest by id: %d records, next %q, read %d, capped %v, %v", len(page), next, read, capped, err)
	}

	// The oldest record, looked up by id with a bound of 400 records: each
	// call reads 400, reports capped with nothing found, and continues.
	f := Filter{DecisionID: recs[0].DecisionID}
	cursor, calls := "", 0
	for {
		calls++
		page, next, read, capped, err := src.QueryBounded(ctx, f, 10, cursor, 400)
		if err != nil {
			t.Fatal(err)
		}
		if read > 400 {
			t.Fatalf("read %d records past the bound of 400", read)
		}
		if len(page) == 1 {
			if page[0].DecisionID != f.DecisionID {
				t.Fatalf("found %s", page[0].DecisionID)
			}
			break
		}
		if !capped || next == "" || read != 400 {
			t.Fatalf("call %d: nothing found, capped %v, next %q, read %d: a silent not found", calls, capped, next, read)
		}
		cursor = next
		if calls > 10 {
			t.Fatal("lookup does not end")
		}
	}
	if calls != 8 { // 3000 records, 400 a call
		t.Errorf("found in call %d, want 8", calls)
	}

	// A query whose time is up reads nothing more.
	done, cancel := context.WithCancel(ctx)
	cancel()
	if _, _, read, _, err := src.QueryBounded(done, Filter{}, 10, "", 0); err == nil || read != 0 {
		t.Errorf("ended context: read %d, %v", read, err)
	}
	for _, c := range []string{"t:1:x", "p:zz:1", "p:0123456789abcdef:-1", "s:1-1"} {
		if _, _, _, _, err := src.QueryBounded(ctx, Filter{}, 10, c, 0); err != ErrBadCursor {
			t.Errorf("cursor %q: %v", c, err)
		}
	}
}

// TestFileQueryRotationDuringQuery: a record written before a query is in
// its answer although the sink rotates while the query opens the files
// (lumberjack renames the file at Path into a backup). The old code listed
// the backups, then opened Path: a rotation between the two hid the
// renamed file from the query (OK, zero records: issue F2).
func TestFileQueryRotationDuringQuery(t *testing.T) {
	path := filepath.Join(t.TempDir(), "decisions.jsonl")
	lj := &lumberjack.Logger{Filename: path, MaxSize: 1, MaxBackups: 100}
	defer lj.Close()
	n := 0
	write := func() *Record {
		n++
		r := &Record{Time: time.Now().UTC(), DecisionID: fmt.Sprintf("%032x", n), Decision: "allow", Policies: []string{}}
		b, err := appendJSON(nil, r)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := lj.Write(b); err != nil {
			t.Fatal(err)
		}
		return r
	}
	write()
	if err := lj.Rotate(); err != nil { // one backup already
		t.Fatal(err)
	}
	src := &FileSource{Path: path}
	for _, bounded := range []bool{true, false} {
		for range 3 {
			last := write()
			src.opened = func() {
				if err := lj.Rotate(); err != nil {
					t.Error(err)
				}
				write() // after the rotation, into the new file
			}
			f := Filter{DecisionID: last.DecisionID, Since: time.Now().Add(-time.Hour)}
			var got []*Record
			var err error
			if bounded {
				got, _, _, _, err = src.QueryBounded(context.Background(), f, 10, "", 1000)
			} else {
				got, _, err = src.Query(context.Background(), f, 10, "")
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 1 {
				t.Fatalf("bounded %v: %s written before the query, rotated during it: %d records", bounded, last.DecisionID, len(got))
			}
		}
	}
	// No record twice across the rotations (backups renamed within one
	// millisecond replace each other: lumberjack's names, not the query).
	src.opened = nil
	got, _, _, _, err := src.QueryBounded(context.Background(), Filter{}, 1000, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, r := range got {
		if seen[r.DecisionID] {
			t.Errorf("%s twice", r.DecisionID)
		}
		seen[r.DecisionID] = true
	}
}
