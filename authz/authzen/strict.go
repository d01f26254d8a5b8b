package authzen

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// maxDepth bounds the nesting of a request body (objects and arrays).
const maxDepth = 32

// frame is an open object or array while checkIJSON walks a body.
type frame struct {
	obj    bool
	keys   map[string]bool
	base   string // the container's own path
	member string // the path of the value being read
	next   int    // an array's next index
	key    bool   // an object expects a key (or its end) next
}

// checkIJSON checks that b is one JSON object in the I-JSON profile the
// spec asks for (RFC 7493): UTF-8, no member name twice in an object, and
// (a bound of ours) nested at most maxDepth deep. Its errors say where.
// A fast scan accepts good bodies; a body it refuses is walked again by
// explain, which names the member at fault.
func checkIJSON(b []byte) error {
	if !utf8.Valid(b) {
		return errors.New("the body is not UTF-8")
	}
	if json.Valid(b) {
		sc := scanner{b: b}
		sc.ws()
		if sc.i < len(b) && b[sc.i] == '{' && sc.value(0) {
			return nil
		}
	}
	if err := explain(b); err != nil {
		return err
	}
	return errors.New("the body is not an I-JSON object") // the two scans disagree: refuse
}

// explain walks b token by token to name what is wrong with it.
func explain(b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var stack []*frame
	for n := 0; ; n++ {
		tok, err := dec.Token()
		if err == io.EOF {
			if n == 0 {
				return errors.New("the body is empty: want a JSON object")
			}
			if len(stack) > 0 {
				return errors.New("invalid JSON: the body ends early")
			}
			return nil
		}
		if err != nil {
			var se *json.SyntaxError
			if errors.As(err, &se) {
				return fmt.Errorf("invalid JSON at byte %d: %s", se.Offset, se.Error())
			}
			if errors.Is(err, io.ErrUnexpectedEOF) {
				return errors.New("invalid JSON: the body ends early")
			}
			return fmt.Errorf("invalid JSON: %v", err)
		}
		if n == 0 {
			if d, ok := tok.(json.Delim); !ok || d != '{' {
				return errors.New("the body must be a JSON object")
			}
		} else if len(stack) == 0 {
			return fmt.Errorf("invalid JSON at byte %d: data after the object", dec.InputOffset())
		}
		path := ""
		if len(stack) > 0 {
			top := stack[len(stack)-1]
			if d, ok := tok.(json.Delim); ok && (d == '}' || d == ']') {
				stack = stack[:len(stack)-1]
				continue
			}
			if top.obj && top.key {
				k := tok.(string)
				top.member = join(top.base, k)
				if top.keys[k] {
					return fmt.Errorf("%s: member %q appears twice", top.member, k)
				}
				top.keys[k], top.key = true, false
				continue
			}
			if top.obj {
				path, top.key = top.member, true
			} else {
				path = fmt.Sprintf("%s[%d]", top.base, top.next)
				top.next++
			}
		}
		if d, ok := tok.(json.Delim); ok {
			if len(stack) >= maxDepth {
				return fmt.Errorf("%s: nested more than %d deep", path, maxDepth)
			}
			f := &frame{obj: d == '{', base: path}
			if f.obj {
				f.keys, f.key = map[string]bool{}, true
			}
			stack = append(stack, f)
		}
	}
}

func join(base, k string) string {
	if base == "" {
		return k
	}
	return base + "." + k
}

// describe turns a decoding error of a checked body into a message naming
// the member at fault.
func describe(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		want := "a string"
		switch te.Type.Kind().String() {
		case "map", "struct", "ptr":
			want = "an object"
		case "slice":
			want = "an array"
		}
		if te.Field == "" {
			return "the body must be a JSON object"
		}
		return fmt.Sprintf("%s: must be %s, got %s", te.Field, want, te.Value)
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}

// scanner checks a valid JSON text for duplicate member names and depth,
// in one pass without decoding values.
type scanner struct {
	b []byte
	i int
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// value scans the value at s.i, opened at depth (containers around it);
// false when a member appears twice or containers nest too deep.
func (s *scanner) value(depth int) bool {
	switch s.b[s.i] {
	case '{':
		if depth >= maxDepth {
			return false
		}
		s.i++
		var keys [][]byte
		var big map[string]struct{}
		s.ws()
		if s.b[s.i] == '}' {
			s.i++
			return true
		}
		for {
			s.ws()
			k := s.key()
			if big != nil {
				if _, dup := big[string(k)]; dup {
					return false
				}
				big[string(k)] = struct{}{}
			} else {
				for _, o := range keys {
					if bytes.Equal(o, k) {
						return false
					}
				}
				keys = append(keys, k)
				if len(keys) > 16 {
					big = make(map[string]struct{}, 32)
					for _, o := range keys {
						big[string(o)] = struct{}{}
					}
				}
			}
			s.ws()
			s.i++ // ':'
			s.ws()
			if !s.value(depth + 1) {
				return false
			}
			s.ws()
			c := s.b[s.i]
			s.i++
			if c == '}' {
				return true
			}
		}
	case '[':
		if depth >= maxDepth {
			return false
		}
		s.i++
		s.ws()
		if s.b[s.i] == ']' {
			s.i++
			return true
		}
		for {
			s.ws()
			if !s.value(depth + 1) {
				return false
			}
			s.ws()
			c := s.b[s.i]
			s.i++
			if c == ']' {
				return true
			}
		}
	case '"':
		s.str()
		return true
	default:
		for s.i < len(s.b) {
			switch s.b[s.i] {
			case ',', ']', '}', ' ', '\t', '\n', '\r':
				return true
			}
			s.i++
		}
		return true
	}
}

// str skips the string at s.i, returning its raw contents and whether it
// has escapes.
func (s *scanner) str() (raw []byte, escaped bool) {
	s.i++ // '"'
	start := s.i
	for s.b[s.i] != '"' {
		if s.b[s.i] == '\\' {
			escaped = true
			s.i++
		}
		s.i++
	}
	raw = s.b[start:s.i]
	s.i++
	return raw, escaped
}

// key is the member name at s.i, unescaped.
func (s *scanner) key() []byte {
	start := s.i
	raw, escaped := s.str()
	if !escaped {
		return raw
	}
	var k string
	if err := json.Unmarshal(s.b[start:s.i], &k); err != nil {
		return raw
	}
	return []byte(k)
}
