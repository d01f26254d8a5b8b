package fielderr

import (
	"errors"
	"fmt"
	"io/fs"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestErrorRendering: each part is written when known and left out when
// not, as config, policy and Envoy problems have always read.
func TestErrorRendering(t *testing.T) {
	want := map[string]Error{
		"a.cedar:3:7: p: m":             {File: "a.cedar", Line: 3, Col: 7, Path: "p", Message: "m"},
		"w.yaml:3: server.grpc_addr: m": {File: "w.yaml", Line: 3, Col: 7, Path: "server.grpc_addr", Message: "m", LineOnly: true},
		"w.yaml:3: a.b: m":              {File: "w.yaml", Line: 3, Path: "a.b", Message: "m"}, // no column
		"w.yaml: a.b: m":                {File: "w.yaml", Col: 7, Path: "a.b", Message: "m"},  // no line
		"a.cedar:1:1: m":                {File: "a.cedar", Line: 1, Col: 1, Message: "m"},     // no path
		"routes[0].path: m":             {Path: "routes[0].path", Message: "m"},               // no file
		"m":                             {Message: "m"},
	}
	for s, e := range want {
		if got := e.Error(); got != s {
			t.Errorf("%+v: got %q, want %q", e, got, s)
		}
	}
}

// TestListIsJoin: a List reads as errors.Join of its problems, and
// errors.As finds it and each problem through any wrapping.
func TestListIsJoin(t *testing.T) {
	a := &Error{File: "f", Line: 1, Message: "one"}
	b := &Error{File: "f", Line: 2, Path: "x", Message: "two", Err: fs.ErrNotExist}
	l := List{a, b}
	if got, want := l.Error(), errors.Join(a, b).Error(); got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	wrapped := fmt.Errorf("load: %w", l)
	var got List
	if !errors.As(wrapped, &got) || len(got) != 2 || got[1] != b {
		t.Errorf("errors.As: %v", got)
	}
	var one *Error
	if !errors.As(wrapped, &one) || one != a {
		t.Errorf("errors.As *Error: %v", one)
	}
	if !errors.Is(wrapped, fs.ErrNotExist) {
		t.Error("errors.Is does not reach a problem's cause")
	}
	if (List{}).Err() != nil || List(nil).Err() != nil {
		t.Error("an empty List is not a nil error")
	}
}

type multi []error

func (m multi) Error() string      { return "multi" }
func (m multi) AllErrors() []error { return m }

// TestFlattenWithin: the leaves of joined errors and generated validators'
// multi-errors, each put under its section, plain errors kept as text.
func TestFlattenWithin(t *testing.T) {
	err := errors.Join(
		Errorf("routes[0].path", "bad %d", 1),
		multi{Errorf("", "whole section"), errors.New("plain: text")},
		List{Errorf("[2]", "indexed")},
	)
	var got []string
	for _, e := range Within("policy", err) {
		got = append(got, e.Path+"|"+e.Message)
	}
	want := []string{"policy.routes[0].path|bad 1", "policy|whole section", "policy|plain: text", "policy[2]|indexed"}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("Within (-want +got):\n%s", d)
	}
	if Flatten(nil) != nil {
		t.Error("Flatten(nil) is not nil")
	}
	// Within does not change the problems it was given.
	in := Errorf("a", "m")
	Within("s", in)
	if in.Path != "a" {
		t.Errorf("Within changed its input: %q", in.Path)
	}
}

// TestSortByLine: problems in line order, those without a line first,
// ties in the order found.
func TestSortByLine(t *testing.T) {
	l := List{{Line: 5, Message: "a"}, {Message: "b"}, {Line: 2, Message: "c"}, {Line: 5, Message: "d"}, {Message: "e"}}
	l.SortByLine()
	var got string
	for _, e := range l {
		got += e.Message
	}
	if got != "becad" {
		t.Errorf("got %s, want becad", got)
	}
}
