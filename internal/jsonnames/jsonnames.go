// Package jsonnames refuses JSON that encoding/json would read into a Go
// struct differently from a reader that matches member names exactly (as
// JSON, RFC 8259, and every other JSON library do): encoding/json takes
// "SUBJECT", "Id", "\u0049d" or "\u017fub" (long s) for the field tagged
// subject, id or sub. A PEP, a log, a WAF or an identity provider reading
// names exactly sees no such member, so Warden would decide about, or
// trust, something nobody else saw.
package jsonnames

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
)

// Error is a member whose name matches field Want of the target struct
// only without case. Path is the member's key path ("subject.ID").
type Error struct {
	Path, Got, Want string
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s: member names are matched exactly: want %q", e.Path, e.Want)
}

var unmarshaler = reflect.TypeFor[json.Unmarshaler]()

// Exact checks b against t, the type encoding/json will decode b into (a
// struct, or pointers, slices, arrays and maps of them), and returns an
// *Error for the first member whose name encoding/json would match to a
// field of a struct without case but not exactly. Names that match no
// field are left to the decoder (which ignores them); the keys of maps are
// the caller's own, exact. Types that decode themselves (json.Unmarshaler)
// are theirs to check. JSON that does not fit t is left to the decoder,
// which reports it. path prefixes the key paths of errors.
func Exact(b []byte, t reflect.Type, path string) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(unmarshaler) {
		return nil
	}
	switch t.Kind() {
	case reflect.Struct:
		var m map[string]json.RawMessage
		if json.Unmarshal(b, &m) != nil {
			return nil
		}
		fields := make(map[string]reflect.Type, t.NumField())
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "-" && f.Tag.Get("json") == "-" {
				continue
			}
			if name == "" {
				name = f.Name // encoding/json's name for an untagged field
			}
			fields[name] = f.Type
		}
		for k, raw := range m {
			ft, ok := fields[k]
			if !ok {
				for name := range fields {
					if strings.EqualFold(name, k) {
						return &Error{Path: join(path, k), Got: k, Want: name}
					}
				}
				continue
			}
			if err := Exact(raw, ft, join(path, k)); err != nil {
				return err
			}
		}
	case reflect.Slice, reflect.Array:
		if t.Elem() == reflect.TypeFor[json.RawMessage]() || t.Elem().Kind() == reflect.Uint8 {
			return nil
		}
		var items []json.RawMessage
		if json.Unmarshal(b, &items) != nil {
			return nil
		}
		for i, it := range items {
			if err := Exact(it, t.Elem(), fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
	case reflect.Map:
		var m map[string]json.RawMessage
		if json.Unmarshal(b, &m) != nil {
			return nil
		}
		for k, raw := range m {
			if err := Exact(raw, t.Elem(), join(path, k)); err != nil {
				return err
			}
		}
	}
	return nil
}

func join(base, k string) string {
	if base == "" {
		return k
	}
	return base + "." + k
}
