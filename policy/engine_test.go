package policy

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestReloadKeepsLastGood: a broken file keeps the last good set serving;
// a fixed one is picked up; the directory is watched, not the files.
func TestReloadKeepsLastGood(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("a.cedar", `@id("a") permit(principal, action, resource);`)
	reloads := make(chan error, 16)
	e, err := NewEngine(Source{FS: os.DirFS(dir), Dir: ".", Name: dir}, nil, OnReload(func(err error, _ time.Duration) { reloads <- err }))
	if err != nil {
		t.Fatal(err)
	}
	if err := <-reloads; err != nil { // the first load is told too
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := e.Watch(ctx, dir, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	wait := func() error {
		t.Helper()
		select {
		case err := <-reloads:
			return err
		case <-time.After(5 * time.Second):
			t.Fatal("no reload")
			return nil
		}
	}
	first := e.Current()
	write("b.cedar", `@id("b") permit(principal action, resource);`)
	// The reload error names the broken file at its line and column.
	if err := wait(); err == nil || !strings.HasPrefix(err.Error(), filepath.Join(dir, "b.cedar")+":1:") {
		t.Fatalf("broken file: got %v, want a reload error at %s:1:", err, filepath.Join(dir, "b.cedar"))
	}
	if e.Current() != first || e.LastError() == nil {
		t.Error("broken reload replaced the serving set")
	}
	if !e.Current().Decide(&Request{Principal: Principal{Type: "User", ID: "x"}, Method: "GET", Path: "/"}).Allow {
		t.Error("last good set stopped serving")
	}
	write("b.cedar", `@id("b") forbid(principal, action, resource);`)
	if err := wait(); err != nil {
		t.Fatalf("fixed file: %v", err)
	}
	if e.Current().Len() != 2 || e.LastError() != nil {
		t.Errorf("after fix: %d policies, last error %v", e.Current().Len(), e.LastError())
	}
}

// TestWatchSubdirectories: a change in a subdirectory, also one made after
// the watch began, reloads the set.
func TestWatchSubdirectories(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("team/a.cedar", `@id("a") permit(principal, action, resource);`)
	reloads := make(chan error, 16)
	e, err := NewEngine(Source{FS: os.DirFS(dir), Dir: ".", Name: dir}, nil, OnReload(func(err error, _ time.Duration) { reloads <- err }))
	if err != nil {
		t.Fatal(err)
	}
	if err := <-reloads; err != nil { // the first load is told too
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := e.Watch(ctx, dir, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	waitFor := func(n int) {
		t.Helper()
		deadline := time.After(5 * time.Second)
		for e.Current().Len() != n {
			select {
			case <-reloads:
			case <-deadline:
				t.Fatalf("%d policies, want %d", e.Current().Len(), n)
			}
		}
	}
	write("team/b.cedar", `@id("b") permit(principal, action, resource);`)
	waitFor(2)
	write("new/c.cedar", `@id("c") permit(principal, action, resource);`)
	waitFor(3)
	write("new/d.cedar", `@id("d") permit(principal, action, resource);`) // in the directory made after the watch began
	waitFor(4)
}

// TestOnReloadSeesFirstLoad: the hook given at construction hears of the
// first load, a failed one too (a hook set afterwards could not).
func TestOnReloadSeesFirstLoad(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		wantErr    bool
	}{
		{"good", `@id("a") permit(principal, action, resource);`, false},
		{"broken", `@id("a") permit(principal action, resource);`, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "a.cedar"), []byte(tc.body), 0o644); err != nil {
				t.Fatal(err)
			}
			var got []error
			_, err := NewEngine(Source{FS: os.DirFS(dir), Dir: ".", Name: dir}, nil, OnReload(func(err error, took time.Duration) {
				if took < 0 {
					t.Errorf("took %s", took)
				}
				got = append(got, err)
			}))
			if (err != nil) != tc.wantErr {
				t.Fatalf("NewEngine: %v, want error %v", err, tc.wantErr)
			}
			if len(got) != 1 || (got[0] != nil) != tc.wantErr || (got[0] != nil && got[0].Error() != err.Error()) {
				t.Errorf("hook heard %v, want one call with the load's error %v", got, err)
			}
		})
	}
}
