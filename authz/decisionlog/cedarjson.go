package decisionlog

import (
	"bytes"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/cedar-policy/cedar-go"

	"github.com/wardenauthz/warden/policy"
)

// appendCedar appends l as encoding/json writes it (a replayable record's
// Cedar section), without reflection for what a context holds: records,
// strings, longs, booleans and entity UIDs of the request; sets and
// extension values are written by their own MarshalJSON, escaped as
// encoding/json escapes them. ok is false, and b then holds an unfinished
// section, for anything it does not write exactly so (a string that is not
// UTF-8, a record with a reserved key, a value of another type): the
// caller then encodes l with encoding/json (a differential fuzz holds the
// two equal).
func appendCedar(b []byte, l *policy.Logged) (_ []byte, ok bool) {
	b = appendStr(append(b, `{"decision":`...), l.Decision)
	if b, ok = appendUID(append(b, `,"principal":`...), l.Principal); !ok {
		return b, false
	}
	if b, ok = appendUIDs(b, `,"parents":`, l.Parents); !ok {
		return b, false
	}
	if l.Attrs != nil {
		if b, ok = appendCedarRecord(append(b, `,"attrs":`...), *l.Attrs); !ok {
			return b, false
		}
	}
	if b, ok = appendUID(append(b, `,"action":`...), l.Action); !ok {
		return b, false
	}
	if b, ok = appendUID(append(b, `,"resource":`...), l.Resource); !ok {
		return b, false
	}
	if b, ok = appendUIDs(b, `,"resource_parents":`, l.ResourceParents); !ok {
		return b, false
	}
	if b, ok = appendCedarRecord(append(b, `,"context":`...), l.Context); !ok {
		return b, false
	}
	if l.ResourceAttrs != nil {
		if b, ok = appendCedarRecord(append(b, `,"resource_attrs":`...), *l.ResourceAttrs); !ok {
			return b, false
		}
	}
	b = appendOpt(b, `,"source":`, l.Source)
	return append(b, '}'), true
}

// appendCedarStr appends a string cedar-go writes (json v2, which refuses
// what is not UTF-8), as encoding/json then escapes it.
func appendCedarStr(b []byte, s string) ([]byte, bool) {
	if !utf8.ValidString(s) {
		return b, false
	}
	return appendStr(b, s), true
}

// appendUID appends u in Cedar's implicit form, {"type":T,"id":I}.
func appendUID(b []byte, u uidT) ([]byte, bool) {
	var ok bool
	if b, ok = appendCedarStr(append(b, `{"type":`...), string(u.Type)); !ok {
		return b, false
	}
	if b, ok = appendCedarStr(append(b, `,"id":`...), string(u.ID)); !ok {
		return b, false
	}
	return append(b, '}'), true
}

func appendUIDs(b []byte, key string, us []uidT) ([]byte, bool) {
	if len(us) == 0 {
		return b, true
	}
	b = append(append(b, key...), '[')
	for i, u := range us {
		if i > 0 {
			b = append(b, ',')
		}
		var ok bool
		if b, ok = appendUID(b, u); !ok {
			return b, false
		}
	}
	return append(b, ']'), true
}

type cedarMember struct {
	k cedar.String
	v cedar.Value
}

// appendCedarRecord appends r as Record.MarshalJSON writes it: its members
// in bytewise order of their names, none named __entity or __extn.
func appendCedarRecord(b []byte, r cedar.Record) ([]byte, bool) {
	var small [16]cedarMember
	ms := small[:0]
	for k, v := range r.All() {
		if k == "__entity" || k == "__extn" {
			return b, false
		}
		ms = append(ms, cedarMember{k, v})
	}
	slices.SortFunc(ms, func(x, y cedarMember) int { return strings.Compare(string(x.k), string(y.k)) })
	b = append(b, '{')
	for i, m := range ms {
		if i > 0 {
			b = append(b, ',')
		}
		var ok bool
		if b, ok = appendCedarStr(b, string(m.k)); !ok {
			return b, false
		}
		if b, ok = appendCedarValue(append(b, ':'), m.v); !ok {
			return b, false
		}
	}
	return append(b, '}'), true
}

func appendCedarValue(b []byte, v cedar.Value) ([]byte, bool) {
	switch x := v.(type) {
	case cedar.String:
		return appendCedarStr(b, string(x))
	case cedar.Long:
		return strconv.AppendInt(b, int64(x), 10), true
	case cedar.Boolean:
		return strconv.AppendBool(b, bool(x)), true
	case cedar.Record:
		return appendCedarRecord(b, x)
	case cedar.Set, cedar.EntityUID, cedar.Decimal, cedar.IPAddr, cedar.Datetime, cedar.Duration:
		j, err := x.(json.Marshaler).MarshalJSON()
		if err != nil {
			return b, false
		}
		buf := bytes.NewBuffer(b)
		json.HTMLEscape(buf, j) // as encoding/json escapes what a MarshalJSON returns
		return buf.Bytes(), true
	}
	return b, false
}
