package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"sort"
	"strings"

	"github.com/cedar-policy/cedar-go"
	"github.com/cedar-policy/cedar-go/types"
	"github.com/cedar-policy/cedar-go/x/exp/schema/resolved"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/wardenauthz/warden/internal/fielderr"
	"github.com/wardenauthz/warden/internal/jsonlist"
)

// entityReader reads entities.json as the Cedar CLI does: with a schema,
// an attribute (or tag) the schema types as an entity is an entity
// reference however it is written (User::"alice" as Cedar text, {"type":
// ..., "id": ...}, or {"__entity": ...}), and an extension value the
// schema expects may be written without "__extn"; with or without one,
// an extension call of several arguments ({"__extn": {"fn": "offset",
// "args": [...]}}) is evaluated. Every error names file:line:col, the
// entity's uid and the attribute.
type entityReader struct {
	schema *resolved.Schema // nil: none
	// convert caches, per entity type, whether its attributes or tags
	// need rewriting before cedar-go reads them.
	convert map[types.EntityType]bool
}

// parseEntitiesWith reads a list of entities; pos gives each entity's
// file:line:col, in file order.
func parseEntitiesWith(file string, b []byte, rs *resolved.Schema) (cedar.EntityMap, []entityPos, error) {
	out := cedar.EntityMap{}
	pos, err := parseEntitiesInto(file, b, rs, func(e cedar.Entity) { out[e.UID] = e })
	if err != nil && pos == nil && len(out) == 0 {
		out = nil // not a list
	}
	return out, pos, err
}

// parseEntitiesInto reads a list of entities, giving each one read to add;
// pos gives each entity's file:line:col, in file order. Nothing is added
// when the list itself cannot be read. The list is streamed: no copy of b
// or of its elements is made.
func parseEntitiesInto(file string, b []byte, rs *resolved.Schema, add func(cedar.Entity)) ([]entityPos, error) {
	r := &entityReader{schema: rs, convert: map[types.EntityType]bool{}}
	var errs fielderr.List
	first := map[cedar.EntityUID]place{}
	pos := []entityPos{}
	i := 0
	one := func(raw []byte, line, col int) {
		i++
		at := place{file, line, col}
		if err := strictJSON(raw); err != nil {
			errs = append(errs, at.errorf("entity %d: %v", i, err))
			return
		}
		e, ees := r.entity(raw)
		if len(ees) > 0 {
			for _, err := range ees {
				if e.UID.Type == "" {
					errs = append(errs, at.errorf("entity %d: %v", i, err))
				} else {
					errs = append(errs, at.errorf("entity %s: %v", e.UID, err))
				}
			}
			return
		}
		if prev, dup := first[e.UID]; dup {
			errs = append(errs, at.errorf("entity %s defined twice (first at %s)", e.UID, prev))
			return
		}
		first[e.UID] = at
		add(e)
		pos = append(pos, entityPos{e.UID, at})
	}
	if !streamList(b, one) {
		// Not a well-formed list to jsontext: encoding/json, as before,
		// says where (and reads the list if it disagrees).
		els, lerr := jsonlist.Split(b)
		if lerr != nil {
			if lerr.NotList {
				return nil, place{file, 1, 1}.errorf("must be a JSON list of entities: %v", lerr.Err)
			}
			return nil, place{file, lerr.Line, lerr.Col}.errorf("%v", lerr.Err)
		}
		for _, el := range els {
			one(el.Raw, el.Line, el.Col)
		}
	}
	return pos, errs.Err()
}

// streamList calls f with each element of the JSON list b and the line
// and column where it starts. It first checks that b is one well-formed
// list (duplicate names and invalid UTF-8 are left to strictJSON, per
// element); when it is not, it calls f for none and reports false.
func streamList(b []byte, f func(raw []byte, line, col int)) bool {
	newDec := func() *jsontext.Decoder {
		return jsontext.NewDecoder(bytes.NewReader(b), jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true))
	}
	dec := newDec()
	if tok, err := dec.ReadToken(); err != nil || tok.Kind() != '[' {
		return false
	}
	for {
		k := dec.PeekKind()
		if k == ']' {
			break
		}
		if k == 0 || dec.SkipValue() != nil {
			return false
		}
	}
	if _, err := dec.ReadToken(); err != nil {
		return false
	}
	if _, err := dec.ReadToken(); err != io.EOF {
		return false
	}
	dec = newDec()
	_, _ = dec.ReadToken()
	line, lineStart, counted := 1, 0, 0
	for dec.PeekKind() != ']' {
		v, err := dec.ReadValue()
		if err != nil { // cannot happen (checked above); the caller reads b again
			return false
		}
		at := int(dec.InputOffset()) - len(v)
		for ; counted < at; counted++ {
			if b[counted] == '\n' {
				line, lineStart = line+1, counted+1
			}
		}
		f(v, line, at-lineStart+1)
	}
	return true
}

// strictJSON refuses what cedar-go's JSON reader refuses and
// encoding/json lets through: invalid UTF-8 (no silent U+FFFD in an id or
// attribute name) and a member name given twice (no "last one wins").
func strictJSON(raw []byte) error {
	v := jsontext.Value(bytes.Clone(raw))
	if err := v.Format(); err != nil { // strict: no duplicate names, no invalid UTF-8
		return errors.New(strings.TrimPrefix(err.Error(), "jsontext: "))
	}
	return nil
}

// entityPos is where an entity is defined.
type entityPos struct {
	uid cedar.EntityUID
	at  place
}

// place is a position in a file.
type place struct {
	file      string
	line, col int
}

func (p place) String() string { return fmt.Sprintf("%s:%d:%d", p.file, p.line, p.col) }

// errorf is a problem at p.
func (p place) errorf(format string, args ...any) *fielderr.Error {
	return &fielderr.Error{File: p.file, Line: p.line, Col: p.col, Message: fmt.Sprintf(format, args...)}
}

// entity decodes one entity; on error the uid is set when it could be read.
func (r *entityReader) entity(raw json.RawMessage) (cedar.Entity, []error) {
	var e cedar.Entity
	fast := !bytes.Contains(raw, []byte(`"args"`))
	if fast && r.schema != nil {
		// Only entity types with entity or extension typed attributes
		// need the schema's reading; the uid is read first to know.
		var probe struct {
			UID cedar.EntityUID `json:"uid"`
		}
		if json.Unmarshal(raw, &probe) == nil {
			fast = !r.needsConvert(probe.UID.Type)
		} else {
			fast = false
		}
	}
	if fast {
		if err := json.Unmarshal(raw, &e); err == nil {
			return e, nil
		}
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		return e, []error{errors.New(`want an object {"uid": ..., "attrs": {...}, "parents": [...]}`)}
	}
	uidRaw, ok := m["uid"]
	if !ok || isNull(uidRaw) {
		return e, []error{errors.New(`"uid" is missing or null`)}
	}
	if err := e.UID.UnmarshalJSON(uidRaw); err != nil {
		return e, []error{fmt.Errorf(`uid: want {"type": ..., "id": ...}, got %s`, excerpt(uidRaw))}
	}
	var shape resolved.RecordType
	var tagType resolved.IsType
	if r.schema != nil {
		if se, ok := r.schema.Entities[e.UID.Type]; ok {
			shape, tagType = se.Shape, se.Tags
		}
	}
	var errs []error
	rewrite := func(key, what string, typeOf func(string) resolved.IsType) {
		v, ok := m[key]
		if !ok || isNull(v) {
			return
		}
		var vals map[string]json.RawMessage
		if err := json.Unmarshal(v, &vals); err != nil {
			errs = append(errs, fmt.Errorf("%q: want an object", key))
			return
		}
		names := make([]string, 0, len(vals))
		for k := range vals {
			names = append(names, k)
		}
		sort.Strings(names)
		for _, k := range names {
			nv, err := r.value(vals[k], typeOf(k), 0)
			if err == nil {
				_, err = decodeValue(nv)
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("%s %q: %v", what, k, plainCedarError(err)))
				continue
			}
			vals[k] = nv
		}
		m[key], _ = json.Marshal(vals)
	}
	rewrite("attrs", "attribute", func(k string) resolved.IsType {
		if a, ok := shape[types.String(k)]; ok {
			return a.Type
		}
		return nil
	})
	rewrite("tags", "tag", func(string) resolved.IsType { return tagType })
	if p, ok := m["parents"]; ok && !isNull(p) {
		var ps []json.RawMessage
		if err := json.Unmarshal(p, &ps); err != nil {
			errs = append(errs, errors.New(`"parents": want a list of entity uids`))
		}
		for i, pr := range ps {
			var u cedar.EntityUID
			if err := u.UnmarshalJSON(pr); err != nil {
				errs = append(errs, fmt.Errorf(`parents[%d]: want {"type": ..., "id": ...}, got %s`, i, excerpt(pr)))
			}
		}
	}
	if len(errs) > 0 {
		return e, errs
	}
	b, _ := json.Marshal(m)
	uid := e.UID
	if err := json.Unmarshal(b, &e); err != nil {
		e.UID = uid
		return e, []error{plainCedarError(err)}
	}
	return e, nil
}

// needsConvert reports whether entity type t has attributes or tags whose
// reading depends on the schema (entity or extension typed).
func (r *entityReader) needsConvert(t types.EntityType) bool {
	if v, ok := r.convert[t]; ok {
		return v
	}
	se, ok := r.schema.Entities[t]
	v := ok && (schemaTyped(se.Shape, 0) || schemaTyped(se.Tags, 0))
	r.convert[t] = v
	return v
}

func schemaTyped(t resolved.IsType, depth int) bool {
	if depth > 32 {
		return true
	}
	switch t := t.(type) {
	case resolved.EntityType, resolved.ExtensionType:
		return true
	case resolved.SetType:
		return schemaTyped(t.Element, depth+1)
	case resolved.RecordType:
		for _, a := range t {
			if schemaTyped(a.Type, depth+1) {
				return true
			}
		}
	}
	return false
}

// maxValueDepth bounds the nesting of a value (sets and records).
const maxValueDepth = 64

// value rewrites one JSON value as typ (nil: untyped) wants it read.
func (r *entityReader) value(raw json.RawMessage, typ resolved.IsType, depth int) (json.RawMessage, error) {
	if depth > maxValueDepth {
		return nil, errors.New("nested too deeply")
	}
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return raw, nil
	}
	switch t := typ.(type) {
	case resolved.EntityType:
		return entityRef(raw, types.EntityType(t))
	case resolved.SetType:
		if raw[0] != '[' {
			return raw, nil // the validator says what is wrong
		}
		var els []json.RawMessage
		if err := json.Unmarshal(raw, &els); err != nil {
			return nil, err
		}
		for i, el := range els {
			nv, err := r.value(el, t.Element, depth+1)
			if err != nil {
				return nil, fmt.Errorf("element %d: %w", i, err)
			}
			els[i] = nv
		}
		return json.Marshal(els)
	case resolved.RecordType:
		if raw[0] != '{' {
			return raw, nil
		}
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(raw, &fields); err != nil {
			return nil, err
		}
		if _, esc := fields["__entity"]; esc {
			return raw, nil
		}
		if _, esc := fields["__extn"]; esc {
			return r.value(raw, nil, depth+1)
		}
		for k, v := range fields {
			var ft resolved.IsType
			if a, ok := t[types.String(k)]; ok {
				ft = a.Type
			}
			nv, err := r.value(v, ft, depth+1)
			if err != nil {
				return nil, fmt.Errorf("attribute %q: %w", k, err)
			}
			fields[k] = nv
		}
		return json.Marshal(fields)
	case resolved.ExtensionType:
		// {"fn": ..., "arg": ...} without "__extn": implicit with a schema.
		if raw[0] == '{' {
			var fields map[string]json.RawMessage
			if json.Unmarshal(raw, &fields) == nil {
				if _, ok := fields["__extn"]; !ok {
					if _, ok := fields["fn"]; ok {
						raw, _ = json.Marshal(map[string]json.RawMessage{"__extn": raw})
					}
				}
			}
		}
	}
	// Untyped: only multi-argument extension calls need rewriting.
	if !bytes.Contains(raw, []byte(`"args"`)) {
		return raw, nil
	}
	switch raw[0] {
	case '[':
		var els []json.RawMessage
		if err := json.Unmarshal(raw, &els); err != nil {
			return nil, err
		}
		for i, el := range els {
			nv, err := r.value(el, nil, depth+1)
			if err != nil {
				return nil, fmt.Errorf("element %d: %w", i, err)
			}
			els[i] = nv
		}
		return json.Marshal(els)
	case '{':
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(raw, &fields); err != nil {
			return nil, err
		}
		if x, ok := fields["__extn"]; ok && len(fields) == 1 {
			return r.extnCall(x, depth+1)
		}
		for k, v := range fields {
			nv, err := r.value(v, nil, depth+1)
			if err != nil {
				return nil, fmt.Errorf("attribute %q: %w", k, err)
			}
			fields[k] = nv
		}
		return json.Marshal(fields)
	}
	return raw, nil
}

// entityRef reads an entity reference written as Cedar text, {"type":
// ..., "id": ...} or {"__entity": ...}, as {"__entity": ...}.
func entityRef(raw json.RawMessage, want types.EntityType) (json.RawMessage, error) {
	var uid cedar.EntityUID
	var s string
	switch {
	case json.Unmarshal(raw, &s) == nil:
		if err := uid.UnmarshalCedar([]byte(s)); err != nil {
			return nil, fmt.Errorf(`%q: want an entity of type %s, written as %s::"id", {"type": ..., "id": ...} or {"__entity": {...}}`, s, want, want)
		}
	case raw[0] == '{' && uid.UnmarshalJSON(raw) == nil:
	default:
		return raw, nil // not a reference: the validator says what is wrong
	}
	return json.Marshal(map[string]any{"__entity": map[string]string{"type": string(uid.Type), "id": string(uid.ID)}})
}

// extnCall evaluates {"fn": F, "args": [...]} (or "arg") to the
// extension value it denotes, as Cedar's JSON format allows.
func (r *entityReader) extnCall(raw json.RawMessage, depth int) (json.RawMessage, error) {
	var call struct {
		Fn   string            `json:"fn"`
		Arg  json.RawMessage   `json:"arg"`
		Args []json.RawMessage `json:"args"`
	}
	if err := json.Unmarshal(raw, &call); err != nil {
		return nil, fmt.Errorf(`"__extn": want {"fn": ..., "arg": ...} or {"fn": ..., "args": [...]}: %v`, err)
	}
	if call.Args == nil {
		return json.Marshal(map[string]json.RawMessage{"__extn": raw})
	}
	vals := make([]cedar.Value, len(call.Args))
	for i, a := range call.Args {
		a = bytes.TrimSpace(a)
		if len(call.Args) == 1 && len(a) > 0 && a[0] == '"' {
			// A constructor's one string argument: {"fn": "ip", "args": ["10.0.0.1"]}.
			return json.Marshal(map[string]any{"__extn": map[string]json.RawMessage{"fn": mustJSON(call.Fn), "arg": a}})
		}
		nv, err := r.value(a, nil, depth+1)
		if err != nil {
			return nil, fmt.Errorf("%s argument %d: %w", call.Fn, i+1, err)
		}
		v, err := decodeValue(nv)
		if err != nil {
			return nil, fmt.Errorf("%s argument %d: %v", call.Fn, i+1, err)
		}
		vals[i] = v
	}
	v, err := evalExtn(call.Fn, vals)
	if err != nil {
		return nil, err
	}
	return json.Marshal(v)
}

func mustJSON(s string) json.RawMessage {
	b, _ := json.Marshal(s)
	return b
}

const dayMillis = 86_400_000

// evalExtn is the value of an extension method call on values (the
// methods whose result is a value: datetime and duration arithmetic).
func evalExtn(fn string, args []cedar.Value) (cedar.Value, error) {
	argc := map[string]int{"offset": 2, "durationSince": 2, "toDate": 1, "toTime": 1}
	n, ok := argc[fn]
	if !ok {
		return nil, fmt.Errorf("extension function %q with arguments is not a value (want offset, durationSince, toDate or toTime, or a constructor with \"arg\")", fn)
	}
	if len(args) != n {
		return nil, fmt.Errorf("%s takes %d arguments, got %d", fn, n, len(args))
	}
	dt, ok := args[0].(types.Datetime)
	if !ok {
		return nil, fmt.Errorf("%s: argument 1 must be a datetime", fn)
	}
	ms := dt.Milliseconds()
	switch fn {
	case "offset":
		d, ok := args[1].(types.Duration)
		if !ok {
			return nil, errors.New("offset: argument 2 must be a duration")
		}
		sum, ok := addInt64(ms, d.ToMilliseconds())
		if !ok {
			return nil, errors.New("offset: datetime out of range")
		}
		return types.NewDatetimeFromMillis(sum), nil
	case "durationSince":
		o, ok := args[1].(types.Datetime)
		if !ok {
			return nil, errors.New("durationSince: argument 2 must be a datetime")
		}
		diff, ok := addInt64(ms, -o.Milliseconds())
		if !ok || o.Milliseconds() == math.MinInt64 {
			return nil, errors.New("durationSince: duration out of range")
		}
		return types.NewDurationFromMillis(diff), nil
	case "toDate":
		day := ms - ((ms%dayMillis)+dayMillis)%dayMillis
		if ms < 0 && day > ms { // cannot happen; guards the arithmetic
			return nil, errors.New("toDate: datetime out of range")
		}
		return types.NewDatetimeFromMillis(day), nil
	default: // toTime
		return types.NewDurationFromMillis(((ms % dayMillis) + dayMillis) % dayMillis), nil
	}
}

func addInt64(a, b int64) (int64, bool) {
	s := a + b
	if (b > 0 && s < a) || (b < 0 && s > a) {
		return 0, false
	}
	return s, true
}

// decodeValue reads one Cedar value in its JSON form.
func decodeValue(raw json.RawMessage) (cedar.Value, error) {
	var rec cedar.Record
	b := make([]byte, 0, len(raw)+6)
	b = append(append(append(b, `{"v":`...), raw...), '}')
	if err := rec.UnmarshalJSON(b); err != nil {
		return nil, err
	}
	v, _ := rec.Get("v")
	return v, nil
}

// excerpt is raw for an error message, shortened.
func excerpt(raw json.RawMessage) string {
	s := string(bytes.TrimSpace(raw))
	if len(s) > 60 {
		s = s[:57] + "..."
	}
	return s
}

func isNull(b json.RawMessage) bool { return string(bytes.TrimSpace(b)) == "null" }

// goWords is cedar-go's and encoding/json's Go-side wording.
var goWords = regexp.MustCompile(`json: (cannot|unable to) unmarshal (\S+ )?into Go (value of type )?\S+( within "[^"]*")?:? ?`)

// plainCedarError drops cedar-go's Go-side wording ("types.Long", "Go
// explicitValue").
func plainCedarError(err error) error {
	msg := goWords.ReplaceAllString(err.Error(), "")
	msg = strings.ReplaceAll(msg, "types.", "")
	return errors.New(msg)
}
