package decisionlog

import (
	"encoding/json"
	"net/netip"
	"strconv"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/cedar-policy/cedar-go"

	"github.com/wardenauthz/warden/policy"
)

// cedarLogged is a Cedar section of every kind of value, its strings a and
// b (names too), n members in one record; shape picks the optional parts.
// No two names of a record are the same once redacted (bounding would
// then keep either value).
func cedarLogged(a, b string, n int, num int64, shape uint8) *policy.Logged {
	s := func(v string) cedar.Value { return cedar.String(v) }
	many := cedar.RecordMap{}
	for i := range n % 40 {
		many[cedar.String(strconv.Itoa(i)+" "+a)] = cedar.Long(int64(i) - num)
	}
	d, _ := cedar.NewDecimal(num%100000, -2)
	ctx := cedar.RecordMap{
		"request": cedar.NewRecord(cedar.RecordMap{
			"path": s(a), "method": s("GET"), "headers": cedar.NewRecord(cedar.RecordMap{cedar.String("h1 " + a): s(b), cedar.String("h2 " + b): s(a)}),
			"query": cedar.NewRecord(cedar.RecordMap{"q": cedar.NewSet(s(a), s(b), cedar.Long(num)), "e": cedar.NewSet()}),
		}),
		"many":   cedar.NewRecord(many),
		"source": cedar.NewRecord(cedar.RecordMap{"ip": cedar.IPAddr(netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(num), 2, 3, 4}), 32)), "port": cedar.Long(num)}),
		"now":    cedar.NewDatetime(time.UnixMilli(num)), "ttl": cedar.NewDuration(time.Duration(num) * time.Millisecond),
		"dec": d, "yes": cedar.True, "no": cedar.False, "ref": cedar.NewEntityUID(cedar.EntityType(b), cedar.String(a)),
		"nested": cedar.NewSet(cedar.NewRecord(cedar.RecordMap{cedar.String(b): s(a)}), cedar.NewEntityUID("T", cedar.String(b))),
		"empty":  cedar.NewRecord(nil),
	}
	if shape&1 != 0 {
		ctx[cedar.String("top "+a)] = s(b)
	}
	l := &policy.Logged{Decision: b, Principal: uidOf("User", a), Action: uidOf("Action", b), Resource: uidOf(a, b), Context: cedar.NewRecord(ctx)}
	if shape&2 != 0 {
		l.Parents, l.ResourceParents = []uidT{uidOf("Role", a), uidOf(b, "x")}, []uidT{}
	}
	if shape&4 != 0 {
		attrs := cedar.NewRecord(cedar.RecordMap{"dept": s(a), cedar.String(b): cedar.Long(num)})
		l.Attrs, l.ResourceAttrs, l.Source = &attrs, &attrs, policy.SourceAuthZEN
	}
	if shape&8 != 0 {
		l.Context = cedar.Record{}
	}
	return l
}

// FuzzCedarJSON: a record with a Cedar section encodes as encoding/json
// encodes it (appendCedar, or encoding/json where appendCedar declines).
func FuzzCedarJSON(f *testing.F) {
	f.Add("/v1/orders/42", "api.example.com", 3, int64(1_780_000_000_123), uint8(0))
	f.Add("<a&b>\u2028\u2029\x01\"\\", "é", 20, int64(-5), uint8(7))
	f.Add("__extn", "__entity", 0, int64(0), uint8(1))
	f.Add("\xff", "ok", 1, int64(9), uint8(2))
	f.Add("", "", 39, int64(1<<62), uint8(15))
	f.Fuzz(func(t *testing.T, a, b string, n int, num int64, shape uint8) {
		if n < 0 {
			n = -n
		}
		r := &Record{DecisionID: "d", Policies: []string{}, Cedar: cedarLogged(a, b, n, num, shape)}
		want, err := json.Marshal(r)
		if err != nil {
			t.Skip(err)
		}
		got, _ := appendJSON(nil, r)
		if string(got) != string(want)+"\n" {
			t.Fatalf("appendJSON:\n%s\njson.Marshal:\n%s", got, want)
		}
		reserved := func(s string) bool { return s == "__entity" || s == "__extn" }
		if utf8.ValidString(a) && utf8.ValidString(b) && !reserved(a) && !reserved(b) {
			if _, ok := appendCedar(nil, r.Cedar); !ok {
				t.Fatalf("appendCedar declined %q, %q", a, b) // encoding/json would be doing the work
			}
		}
	})
}
