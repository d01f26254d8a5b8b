package decisionlog

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/cedar-policy/cedar-go"
	"github.com/cedar-policy/cedar-go/types"

	"github.com/wardenauthz/warden/policy"
)

// The hand-written encoder writes exactly what encoding/json writes.
func FuzzRecordJSON(f *testing.F) {
	f.Add("d", "allow", "policy_allow", "p1", "User::\"corp|alice\"", "GET", "/orders/1?x=<a>&b", "iss", "", "", int64(1_700_000_000_123_456_789), 200, true, true)
	f.Add("", "deny", "token_invalid", "", "", "", "", "", "\x00\x1f\"\\\n\r\t\b\f", "\xff\u2028\u2029é", int64(0), 0, false, false)
	f.Fuzz(func(t *testing.T, id, decision, reason, pol, principal, method, path, iss, jti, detail string, ns int64, status int, tok, rl bool) {
		r := &Record{
			Time: time.Unix(0, ns).UTC(), DecisionID: id, Decision: Decision(decision), Status: status, Reason: Reason(reason),
			Principal: principal, Action: method, Resource: path, Workload: jti, Node: iss, Detail: detail, LatencyUS: ns % 1000,
			Request:   RecordRequest{Method: method, Host: iss, Path: path, SourceIP: jti, RequestID: detail},
			Truncated: tok != rl,
		}
		if rl {
			r.Transport, r.Caller = reason, jti
		}
		if pol != "" {
			r.Policies = []string{pol, detail}
			r.Errors = []string{reason}
		}
		if tok {
			r.Token = &RecordToken{Iss: iss, Jti: jti, Exp: time.Unix(ns/1e9, 0)}
		}
		if rl {
			r.RateLimit = &RecordRateLimit{Rule: pol, Remaining: status}
		}
		if tok && pol != "" { // a replayable record
			r.Cedar = &policy.Logged{Decision: decision,
				Principal: types.ImplicitlyMarshaledEntityUID(cedar.NewEntityUID("User", cedar.String(principal))),
				Action:    types.ImplicitlyMarshaledEntityUID(cedar.NewEntityUID("Action", cedar.String(method))),
				Resource:  types.ImplicitlyMarshaledEntityUID(cedar.NewEntityUID("Service", cedar.String(iss))),
				Context:   cedar.NewRecord(cedar.RecordMap{"path": cedar.String(path), cedar.String(jti): cedar.String(detail)}),
			}
		}
		want, err := json.Marshal(r)
		if err != nil {
			t.Skip(err)
		}
		got, err := appendJSON(nil, r)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(want)+"\n" {
			t.Fatalf("appendJSON:\n%s\njson.Marshal:\n%s", got, want)
		}
	})
}

func TestRecordJSONEmpty(t *testing.T) {
	r := &Record{}
	want, _ := json.Marshal(r)
	got, _ := appendJSON(nil, r)
	if string(got) != string(want)+"\n" {
		t.Fatalf("appendJSON:\n%s\njson.Marshal:\n%s", got, want)
	}
}
