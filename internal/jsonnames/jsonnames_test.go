package jsonnames

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
)

type inner struct {
	ID   string `json:"id"`
	Type string `json:"type,omitempty"`
}

type self struct{ v string }

func (s *self) UnmarshalJSON(b []byte) error { s.v = string(b); return nil }

type outer struct {
	Subject *inner            `json:"subject"`
	Items   []inner           `json:"items"`
	ByName  map[string]inner  `json:"by_name"`
	Props   map[string]any    `json:"properties"`
	Raw     []json.RawMessage `json:"raw"`
	Own     self              `json:"own"`
	Plain   string            // encoding/json's name: Plain
	Skipped string            `json:"-"`
}

// exactReader models a reader that matches names exactly: what it reads
// of a document must be what encoding/json reads whenever Exact passes.
func TestExact(t *testing.T) {
	ty := reflect.TypeFor[outer]()
	bad := map[string]string{
		`{"SUBJECT":{"id":"a"}}`:                    "SUBJECT",
		`{"subject":{"ID":"a"}}`:                    "subject.ID",
		`{"subject":{"\u0049d":"a"}}`:               "subject.Id",
		`{"subject":{"id":"a","Type":"x"}}`:         "subject.Type",
		`{"items":[{"id":"a"},{"iD":"b"}]}`:         "items[1].iD",
		`{"by_name":{"k":{"Id":"x"}}}`:              "by_name.k.Id",
		`{"plain":"x"}`:                             "plain",
		`{"\u017fubject":{"id":"a"}}`:               "\u017fubject",
		`{"subject":{"id":"a"},"Subject":{"id":1}}`: "Subject",
	}
	for in, path := range bad {
		var e *Error
		if err := Exact([]byte(in), ty, ""); !errors.As(err, &e) || e.Path != path {
			t.Errorf("%s: err = %v, want a name error at %s", in, err, path)
		}
	}
	good := []string{
		`{"subject":{"id":"a","type":"t"},"items":[{"id":"b"}],"Plain":"p"}`,
		`{"properties":{"ID":1,"Subject":2},"raw":[{"ID":1}],"own":{"ID":1}}`,
		`{"SKIPPED":"x","-":"y","unknown":1}`,
		`not json`, `[1,2]`, `{"subject":"not an object"}`,
	}
	for _, in := range good {
		if err := Exact([]byte(in), ty, ""); err != nil {
			t.Errorf("%s: err = %v, want nil", in, err)
		}
	}
	// Where Exact passes, encoding/json reads a named member exactly.
	var o outer
	in := `{"subject":{"id":"a"},"unknown":{"ID":"b"}}`
	if err := Exact([]byte(in), ty, ""); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(in), &o); err != nil || o.Subject.ID != "a" {
		t.Fatalf("decoded %+v, %v", o.Subject, err)
	}
}
