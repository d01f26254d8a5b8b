// Package fielderr is the error of one field of an input file as a value:
// its file, line, column, key path and message. Config validation, policy
// loading and the Envoy checker build these instead of strings, so that
// callers locate, sort and report problems without parsing messages back
// (errors.As(err, &list) gets them).
package fielderr

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Error is a problem with one field of an input.
type Error struct {
	File string // as named to the user; "" when not yet known
	// Line and Col are 1-based; 0 when unknown.
	Line, Col int
	// Path is the key path of the field ("server.grpc.max_streams",
	// "routes[0].path"); "" when the problem has none.
	Path    string
	Message string
	// Err is the error Message was written from (a file's read error),
	// for errors.Is; nil when there is none.
	Err error
	// LineOnly renders the position as file:line although Col is known:
	// warden.yaml and Envoy YAML problems have always been shown so.
	LineOnly bool
}

// Errorf is the error of the field at path, not yet located in a file.
func Errorf(path, format string, args ...any) *Error {
	return &Error{Path: path, Message: fmt.Sprintf(format, args...)}
}

// Error is "file:line:col: path: message", each part left out when
// unknown (and col when LineOnly).
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		b.WriteByte(':')
		b.WriteString(strconv.Itoa(e.Line))
		if e.Col > 0 && !e.LineOnly {
			b.WriteByte(':')
			b.WriteString(strconv.Itoa(e.Col))
		}
	}
	for _, s := range []string{e.Path, e.Message} {
		if s == "" {
			continue
		}
		if b.Len() > 0 {
			b.WriteString(": ")
		}
		b.WriteString(s)
	}
	return b.String()
}

// Unwrap is e.Err.
func (e *Error) Unwrap() error { return e.Err }

// List is every problem found in one go. Its Error is its errors' joined
// by newlines, as errors.Join writes them.
type List []*Error

func (l List) Error() string {
	s := make([]string, len(l))
	for i, e := range l {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n")
}

// Unwrap lets errors.Is and errors.As see each problem.
func (l List) Unwrap() []error {
	out := make([]error, len(l))
	for i, e := range l {
		out[i] = e
	}
	return out
}

// Err is l as an error, nil when l is empty.
func (l List) Err() error {
	if len(l) == 0 {
		return nil
	}
	return l
}

// SortByLine orders l by line (problems without one first), keeping the
// order of problems on the same line.
func (l List) SortByLine() {
	slices.SortStableFunc(l, func(a, b *Error) int { return cmp.Compare(a.Line, b.Line) })
}

// Flatten lists the leaves of err: the errors joined in it (errors.Join,
// List, and generated validators' AllErrors), depth first; nil for nil.
func Flatten(err error) []error {
	switch e := err.(type) {
	case nil:
		return nil
	case interface{ Unwrap() []error }:
		var out []error
		for _, x := range e.Unwrap() {
			out = append(out, Flatten(x)...)
		}
		return out
	case interface{ AllErrors() []error }:
		var out []error
		for _, x := range e.AllErrors() {
			out = append(out, Flatten(x)...)
		}
		return out
	}
	return []error{err}
}

// From is err's problems: the *Error leaves of err as they are, any other
// leaf as an Error of its text alone (which it renders unchanged).
func From(err error) List {
	var out List
	for _, x := range Flatten(err) {
		fe, ok := x.(*Error)
		if !ok {
			fe = &Error{Message: x.Error(), Err: x}
		}
		out = append(out, fe)
	}
	return out
}

// Within is err's problems (From) as fields of section: each path is put
// under it ("policy" and "routes[0].path" make "policy.routes[0].path";
// a problem without a path is one of section itself).
func Within(section string, err error) List {
	out := From(err)
	for i, e := range out {
		c := *e
		c.Path = Join(section, e.Path)
		out[i] = &c
	}
	return out
}

// Join is the key path of field under path ("a" and "b" make "a.b", "a"
// and "[0]" make "a[0]").
func Join(path, field string) string {
	switch {
	case path == "":
		return field
	case field == "":
		return path
	case field[0] == '[':
		return path + field
	}
	return path + "." + field
}
