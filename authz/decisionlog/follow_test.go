package decisionlog

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// follower runs FileSource.Follow on path and hands over what it delivers.
type follower struct {
	recs    chan *Record
	skipped chan int64
	done    chan error
}

func startFollow(t *testing.T, src *FileSource) *follower {
	t.Helper()
	fl := &follower{recs: make(chan *Record, 100), skipped: make(chan int64, 100), done: make(chan error, 1)}
	ready := make(chan struct{})
	src.followed = func() { close(ready) }
	src.OnSkip = func(n int64, _ int) { fl.skipped <- n }
	ctx, cancel := context.WithCancel(context.Background())
	go func() { fl.done <- src.Follow(ctx, Filter{}, func(r *Record) { fl.recs <- r }) }()
	t.Cleanup(func() {
		cancel()
		if err := <-fl.done; err != context.Canceled {
			t.Errorf("Follow = %v, want context.Canceled", err)
		}
	})
	select {
	case <-ready:
	case err := <-fl.done:
		t.Fatalf("Follow = %v", err)
	}
	return fl
}

// next is the next record delivered; the bound only ends a broken test,
// it measures nothing.
func (fl *follower) next(t *testing.T) *Record {
	t.Helper()
	select {
	case r := <-fl.recs:
		return r
	case err := <-fl.done:
		t.Fatalf("Follow = %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("no record delivered")
	}
	return nil
}

func recordLine(t *testing.T, id string) []byte {
	t.Helper()
	b, err := json.Marshal(&Record{Time: time.Date(2026, 11, 29, 5, 0, 0, 0, time.UTC), DecisionID: id, Decision: "allow"})
	if err != nil {
		t.Fatal(err)
	}
	return append(b, '\n')
}

func appendTo(t *testing.T, path string, parts ...[]byte) {
	t.Helper()
	fh, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	for _, p := range parts {
		if _, err := fh.Write(p); err != nil {
			t.Fatal(err)
		}
	}
}

// TestFollowFile: records appended after Follow starts are delivered (the
// ones before are not), a line over the bound is skipped with a warning
// while the records after it still come, and a rotated or truncated file
// is followed into its successor.
func TestFollowFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "decisions.jsonl")
	appendTo(t, path, recordLine(t, "old"))
	fl := startFollow(t, &FileSource{Path: path})

	appendTo(t, path, recordLine(t, "a"))
	if r := fl.next(t); r.DecisionID != "a" {
		t.Fatalf("got %q, want a (the record written before Follow is not followed)", r.DecisionID)
	}

	// A line over the default bound (4 MiB; the old reader's scanner gave
	// up on it and read the same bytes again forever), written in two
	// parts, then a record.
	long := bytes.Repeat([]byte("x"), DefaultMaxLineBytes+1<<20)
	appendTo(t, path, long[:len(long)/2])
	appendTo(t, path, long[len(long)/2:], []byte("\n"), recordLine(t, "b"))
	if r := fl.next(t); r.DecisionID != "b" {
		t.Fatalf("got %q, want b", r.DecisionID)
	}
	select {
	case n := <-fl.skipped:
		if n != int64(len(long)) {
			t.Errorf("skipped a line of %d bytes, want %d", n, len(long))
		}
	default:
		t.Error("the long line was skipped without a warning")
	}

	// Rotation as lumberjack does it: a last record, rename, a new file.
	appendTo(t, path, recordLine(t, "c"))
	if err := os.Rename(path, strings.TrimSuffix(path, ".jsonl")+"-2026-11-29T05-00-00.000.jsonl"); err != nil {
		t.Fatal(err)
	}
	appendTo(t, path, recordLine(t, "d-longer-than-e"))
	for _, want := range []string{"c", "d-longer-than-e"} {
		if r := fl.next(t); r.DecisionID != want {
			t.Fatalf("got %q, want %s", r.DecisionID, want)
		}
	}

	// Truncation (copytruncate): read again from the start. (As with
	// tail -F, a file truncated and grown past where Follow was before
	// Follow looks cannot be told from one appended to.)
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	appendTo(t, path, recordLine(t, "e"))
	if r := fl.next(t); r.DecisionID != "e" {
		t.Fatalf("got %q, want e", r.DecisionID)
	}
	select {
	case r := <-fl.recs:
		t.Errorf("unexpected record %q", r.DecisionID)
	default:
	}
}

// TestLineReader: however the input is cut into reads, the reader gives
// the lines within the bound, in order, and reports each longer one once,
// with its size; a partial last line waits.
func TestLineReader(t *testing.T) {
	const max = 8
	input := "short\n\nexactly8\nnine-long\n" + strings.Repeat("y", 40) + "\nok\npartial"
	wantLines := []string{"short", "", "exactly8", "ok"}
	wantSkips := []int64{9, 40}
	for size := 1; size <= len(input); size++ {
		var lines []string
		var skips []int64
		lr := &lineReader{max: max, chunk: make([]byte, size), onSkip: func(n int64) { skips = append(skips, n) }}
		r := &trickle{s: input, n: size}
		if err := lr.readFrom(context.Background(), r, func(b []byte) { lines = append(lines, string(b)) }); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(lines, wantLines) || !slices.Equal(skips, wantSkips) {
			t.Errorf("reads of %d: lines %q, skips %v; want %q, %v", size, lines, skips, wantLines, wantSkips)
		}
		if string(lr.buf) != "partial" {
			t.Errorf("reads of %d: pending %q, want partial", size, lr.buf)
		}
		if cap(lr.buf) > 2*max+size {
			t.Errorf("reads of %d: buffer grew to %d", size, cap(lr.buf))
		}
	}
}

// trickle reads at most n bytes at a time.
type trickle struct {
	s string
	n int
}

func (r *trickle) Read(p []byte) (int, error) {
	if r.s == "" {
		return 0, io.EOF
	}
	k := copy(p[:min(len(p), r.n)], r.s)
	r.s = r.s[k:]
	return k, nil
}

// FuzzLineReader: the bounded reader gives what splitting the whole input
// at its newlines gives, however it is cut into reads: the lines within
// the bound, a skip (with the size) for each longer one, and the
// unfinished last line pending.
func FuzzLineReader(f *testing.F) {
	f.Add([]byte("a\nbb\n\nccc"), uint8(1), uint8(2))
	f.Add([]byte(strings.Repeat("x", 300)+"\ny\n"), uint8(7), uint8(255))
	f.Fuzz(func(t *testing.T, in []byte, chunk, max uint8) {
		c, m := int(chunk%64)+1, int(max)
		var wantLines []string
		var wantSkips []int64
		parts := strings.Split(string(in), "\n")
		for _, p := range parts[:len(parts)-1] {
			if len(p) > m {
				wantSkips = append(wantSkips, int64(len(p)))
			} else {
				wantLines = append(wantLines, p)
			}
		}
		var lines []string
		var skips []int64
		lr := &lineReader{max: m, chunk: make([]byte, c), onSkip: func(n int64) { skips = append(skips, n) }}
		if err := lr.readFrom(context.Background(), &trickle{s: string(in), n: c}, func(b []byte) { lines = append(lines, string(b)) }); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(lines, wantLines) || !slices.Equal(skips, wantSkips) {
			t.Fatalf("lines %q, skips %v; want %q, %v", lines, skips, wantLines, wantSkips)
		}
		if len(lr.buf) > m {
			t.Fatalf("holds %d bytes of a line, over the bound %d", len(lr.buf), m)
		}
		last := parts[len(parts)-1]
		if pending := string(lr.buf); len(last) <= m && pending != last || len(last) > m && (!lr.skipping || lr.skipN != int64(len(last))) {
			t.Fatalf("pending %q (skipping %v, %d bytes), want the last line %q", pending, lr.skipping, lr.skipN, last)
		}
	})
}
