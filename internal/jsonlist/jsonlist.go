// Package jsonlist splits a JSON list into its elements, each with the line
// and column where it starts, so that errors about an element can name
// file:line:col.
package jsonlist

import (
	"bytes"
	"encoding/json"
	"errors"
)

// Element is one element of a list and where it starts (1-based).
type Element struct {
	Raw       json.RawMessage
	Line, Col int
}

// Error is a document that could not be split: a syntax error at Line:Col,
// or (NotList) valid JSON that is not a list.
type Error struct {
	Line, Col int
	NotList   bool
	Err       error
}

// Split decodes b as a JSON list. Positions are counted in one pass over b
// (from the start for each element, a large file would be quadratic:
// 100,000 entities took minutes).
func Split(b []byte) ([]Element, *Error) {
	var raws []json.RawMessage
	if err := json.Unmarshal(b, &raws); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			l, c := LineCol(b, int(se.Offset))
			return nil, &Error{Line: l, Col: c, Err: err}
		}
		return nil, &Error{Line: 1, Col: 1, NotList: true, Err: err}
	}
	out := make([]Element, len(raws))
	off := 0
	line, lineStart, counted := 1, 0, 0
	for i, raw := range raws {
		at := bytes.Index(b[off:], raw)
		if at < 0 { // not found verbatim: cannot happen for valid JSON
			out[i] = Element{Raw: raw, Line: 1, Col: 1}
			continue
		}
		at += off
		off = at + len(raw)
		for ; counted < at; counted++ {
			if b[counted] == '\n' {
				line, lineStart = line+1, counted+1
			}
		}
		out[i] = Element{Raw: raw, Line: line, Col: at - lineStart + 1}
	}
	return out, nil
}

// LineCol is the 1-based line and column of byte offset off in b.
func LineCol(b []byte, off int) (line, col int) {
	off = min(max(off, 0), len(b))
	line = 1 + bytes.Count(b[:off], []byte{'\n'})
	col = off - bytes.LastIndexByte(b[:off], '\n')
	return line, col
}
