package authzen

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

// The fast scan and the token walk agree on every input: what one accepts
// the other does (so a body is never judged by a scan that misses a
// duplicate), and what is accepted is one JSON object.
func FuzzCheckIJSON(f *testing.F) {
	for _, s := range []string{
		`{}`, `{"a":1}`, `{"a":1,"a":2}`, `{"a":{"b":1,"b":2}}`, `{"a":"\u0061","\u0061":1}`, `{"a":1,"\u0061":2}`,
		`{"a":[{"x":1},{"x":1,"y":[1,2,{"z":null,"z":true}]}]}`, `[1]`, `{"a":1} {}`, `{"a":`, "{\"a\":\"\xff\"}",
		`{"\ud800":1,"\udfff":2}`, `{"a\\":1,"a\\\\":2}`, ` { "s" : "x\"y" , "t":-1.5e3 } `,
		strings.Repeat(`{"a":`, 32) + "1" + strings.Repeat("}", 32), strings.Repeat(`[`, 33) + strings.Repeat("]", 33),
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fast := false
		if utf8.Valid(b) && json.Valid(b) {
			sc := scanner{b: b}
			sc.ws()
			fast = sc.i < len(b) && b[sc.i] == '{' && sc.value(0)
		}
		slow := utf8.Valid(b) && explain(b) == nil
		if fast != slow {
			t.Fatalf("%q: fast scan %v, token walk %v", b, fast, slow)
		}
		if err := checkIJSON(b); (err == nil) != fast {
			t.Fatalf("%q: checkIJSON %v, scans %v", b, err, fast)
		}
		if fast {
			var m map[string]any
			if err := json.Unmarshal(b, &m); err != nil {
				t.Fatalf("%q accepted but: %v", b, err)
			}
		}
	})
}

// Duplicates are found through escapes and at any depth, and named.
func TestCheckIJSON(t *testing.T) {
	for in, want := range map[string]string{
		`{"a":1,"\u0061":2}`:                                        `a: member "a" appears twice`,
		`{"s":{"p":[{"x":1},{"x":1,"x":2}]}}`:                       `s.p[1].x: member "x" appears twice`,
		`{"a":1,"b":{"c":[1,{"d":1,"e":2}]}}`:                       ``,
		`{"a":"}","b":"{\"a\":1,\"a\":2}"}`:                         ``,
		strings.Repeat(`{"a":`, 33) + "1" + strings.Repeat("}", 33): `a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a: nested more than 32 deep`,
	} {
		err := checkIJSON([]byte(in))
		if (err == nil) != (want == "") || (err != nil && err.Error() != want) {
			t.Errorf("%s: %v, want %q", in, err, want)
		}
	}
}
