package identity

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"testing"
)

// The token-stream checker this file keeps is the oracle for the fast
// scanner in preparse.go.

// checkDuplicates walks the JSON token stream and fails on a repeated key
// in any object (go-oidc and encoding/json silently keep the last one).
func checkDuplicatesTokens(b []byte) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	type frame struct {
		keys   map[string]struct{}
		object bool
		expect bool // next string token is a key
	}
	var stack []frame
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("invalid JSON")
		}
		if len(stack) > 32 {
			return fmt.Errorf("JSON nested too deeply")
		}
		top := len(stack) - 1
		switch t := tok.(type) {
		case json.Delim:
			switch t {
			case '{':
				if top >= 0 && stack[top].object {
					stack[top].expect = true
				}
				stack = append(stack, frame{keys: map[string]struct{}{}, object: true, expect: true})
			case '[':
				if top >= 0 && stack[top].object {
					stack[top].expect = true
				}
				stack = append(stack, frame{})
			case '}', ']':
				stack = stack[:top]
			}
		case string:
			if top >= 0 && stack[top].object && stack[top].expect {
				if _, dup := stack[top].keys[t]; dup {
					return fmt.Errorf("duplicate key %q", t)
				}
				stack[top].keys[t] = struct{}{}
				stack[top].expect = false
				continue
			}
			if top >= 0 && stack[top].object {
				stack[top].expect = true
			}
		default:
			if top >= 0 && stack[top].object {
				stack[top].expect = true
			}
		}
	}
}

func TestCheckDuplicates(t *testing.T) {
	for _, tc := range []struct {
		in  string
		dup bool
	}{
		{`{"a":1,"b":2}`, false},
		{`{"a":1,"a":2}`, true},
		{`{"a":1,"\u0061":2}`, true},
		{`{"x":{"a":1,"a":2}}`, true},
		{`{"x":[{"a":1},{"a":2}]}`, false},
		{`{"a":"{\"a\":1,\"a\":2}"}`, false},
		{`{"a":{},"b":[],"c":[1,[2,{"d":null}]]}`, false},
		{`[{"a":1,"a":1}]`, true},
	} {
		if got := checkDuplicates([]byte(tc.in)) != nil; got != tc.dup {
			t.Errorf("%s: duplicate %v, want %v", tc.in, got, tc.dup)
		}
	}
}

// FuzzCheckDuplicates: on valid JSON the fast scanner and the token-stream
// checker agree.
func FuzzCheckDuplicates(f *testing.F) {
	for _, s := range []string{`{"a":1,"\u0061":2}`, `{"x":[{"a":1},{"a":2}]}`, `{"a":"\"","a":1}`, `{"":1,"":2}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b := []byte(s)
		if !json.Valid(b) {
			return
		}
		fast, slow := checkDuplicates(b) == nil, checkDuplicatesTokens(b) == nil
		if fast != slow {
			t.Fatalf("%s: fast ok=%v, token-stream ok=%v", s, fast, slow)
		}
	})
}
