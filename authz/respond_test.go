package authz

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cedar-policy/cedar-go"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/encoding"
	protoenc "google.golang.org/grpc/encoding/proto"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/wardenauthz/warden/authz/decisionlog"
	"github.com/wardenauthz/warden/identity"
	"github.com/wardenauthz/warden/internal/token"
	"github.com/wardenauthz/warden/policy"
	"github.com/wardenauthz/warden/ratelimit"
)

var fuzzReasons = []Reason{ReasonPolicyDeny, ReasonTokenInvalid, ReasonTokenRevoked, ReasonAnonymousDeny, ReasonStepUp,
	ReasonRateLimited, ReasonUnavailable, ReasonRequestInvalid, ReasonPolicyError, ReasonRouteUnknown}

// FuzzResponse holds allow and deny to the builders they replaced
// (respond_old_test.go): the same messages (protocmp) and the same
// deterministic wire bytes, whatever the record, identity, request
// headers, rate-limit decision and denial.
func FuzzResponse(f *testing.F) {
	f.Add("corp|alice", "alice", "https://idp", "staff,ops", "orders:read", "per-user", "x-warden-groups\nx_warden_Principal\nx-other", "p1\np2", "", "", uint16(0b1011), 1000, 999, 60, 1, 0)
	f.Add("", "", "", "", "", "", "", "", `Bearer realm="warden"`, "nonce", uint16(0xffff), 0, -1, 0, 0, 7)
	f.Add("corp|\xff", "s", "i", "g", "", "a-very-long-rule-name-"+strings.Repeat("r", 100), "x-warden-decision-id", "p1\np2\np3\np4\np5\np6", "", "", uint16(0b110101), 1<<40, 3, 3600, 120, 150)
	f.Fuzz(responseCase)
}

// responseCase is one case of FuzzResponse. The new builder's response is
// taken from its pool and written through the codec, which gives its slab
// back: the next case reuses it, and must show nothing of this one.
func responseCase(t *testing.T, principal, sub, iss, groups, scopes, rule, headers, policies, www, nonce string, flags uint16, limit, remaining, window, reset, retry int) {
	a := New(Options{ForwardAuthorization: flags&1 != 0})
	rec := &decisionlog.Record{DecisionID: "0123456789abcdef0123456789abcdef", Principal: principal,
		Reason: ReasonPolicyAllow, Action: `Action::"` + rule + `"`, Resource: sub + "::" + iss}
	if flags&2 != 0 {
		rec.Policies = strings.Split(policies, "\n")
	}
	if flags&4 != 0 {
		rec.Errors = strings.Split(headers, "\n")
	}
	in := &request{}
	if flags&8 != 0 {
		in.authorization = "Bearer x"
	}
	for _, h := range strings.Split(headers, "\n") {
		in.headers = append(in.headers, policy.Header{Name: h, Value: "v"})
	}
	id := &identity.Identity{}
	if flags&16 != 0 {
		tok := &identity.Token{View: token.View{Sub: sub, Iss: iss, Groups: strings.Split(groups, ","), Scopes: strings.Fields(scopes)}}
		tok.Seal("User", iss+"|"+sub)
		id.Token = tok
	}
	if flags&32 != 0 {
		id.Peer = &identity.WorkloadID{ID: "spiffe://" + iss}
	}
	if flags&64 != 0 {
		id.Credential = identity.CredentialAPIKey
	}
	var rl ratelimit.Decision
	if flags&128 != 0 {
		rl = ratelimit.Decision{Allowed: flags&256 != 0, Rule: rule, Limit: limit, Window: time.Duration(window) * time.Second,
			Remaining: remaining, Reset: time.Duration(reset) * time.Millisecond, RetryAfter: time.Duration(retry) * time.Millisecond}
	}
	if flags&512 == 0 {
		want := a.allowOld(rec, in, id, rl)
		got := a.allowed(rec, in, id, rl)
		sameResponse(t, "allow", want, got.response())
		sameWritten(t, "allow", want, got)
		return
	}
	rec.Reason = fuzzReasons[int(flags>>12)%len(fuzzReasons)]
	rec.Status = 400 + int(flags>>10)%4
	d := &denial{reason: rec.Reason, detail: "denied: " + headers, www: www, rateLimit: rl, dpopNonce: nonce}
	if flags&1024 != 0 {
		d.retryAfter = time.Duration(retry) * time.Millisecond
	}
	want := a.denyOld(rec, d)
	got := a.denied(rec, d)
	sameResponse(t, "deny", want, got.response())
	sameWritten(t, "deny", want, got)
}

// sameWritten: the codec writes got (and gives its slab back) as
// proto.Marshal writes want.
func sameWritten(t *testing.T, what string, want proto.Message, got pooledResponse) {
	t.Helper()
	wb, err1 := proto.Marshal(want)
	b, err2 := codec{encoding.GetCodecV2(protoenc.Name)}.Marshal(got)
	if (err1 == nil) != (err2 == nil) {
		t.Fatalf("%s: proto.Marshal: %v; the codec: %v", what, err1, err2)
	}
	if err2 != nil {
		return
	}
	defer b.Free()
	var back, w authv3.CheckResponse
	if err := proto.Unmarshal(b.Materialize(), &back); err != nil {
		t.Fatalf("%s: the codec's bytes do not decode: %v", what, err)
	}
	if err := proto.Unmarshal(wb, &w); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(&w, &back, protocmp.Transform()); diff != "" {
		t.Fatalf("%s: the codec wrote another response (-old +written):\n%s", what, diff)
	}
}

func sameResponse(t *testing.T, what string, want, got proto.Message) {
	t.Helper()
	if diff := cmp.Diff(want, got, protocmp.Transform()); diff != "" {
		t.Fatalf("%s response differs from the old builder's (-old +new):\n%s", what, diff)
	}
	det := proto.MarshalOptions{Deterministic: true}
	wb, err1 := det.Marshal(want)
	gb, err2 := det.Marshal(got)
	if (err1 == nil) != (err2 == nil) || string(wb) != string(gb) {
		t.Fatalf("%s response bytes differ: old %x (%v), new %x (%v)", what, wb, err1, gb, err2)
	}
}

// TestResponseHeadersDoNotShareSpace: appending to an allow's identity
// headers cannot overwrite its rate-limit headers (they share a slab).
func TestResponseHeadersDoNotShareSpace(t *testing.T) {
	a := New(Options{})
	rec := &decisionlog.Record{DecisionID: "d", Principal: `User::"corp|alice"`}
	resp := a.allow(rec, &request{}, &identity.Identity{}, ratelimit.Decision{Allowed: true, Rule: "r", Limit: 5, Remaining: 4})
	ok := resp.GetOkResponse()
	ok.Headers = append(ok.Headers, set("x-extra", "1"))
	if got := ok.ResponseHeadersToAdd[0].GetHeader().GetKey(); got != "ratelimit-policy" {
		t.Fatalf("first response header %q after appending to headers, want ratelimit-policy", got)
	}
}

// BenchmarkAllow: an allow's response with a token and a rate-limit rule.
func BenchmarkAllow(b *testing.B) {
	a := New(Options{})
	rec := &decisionlog.Record{DecisionID: "0123456789abcdef0123456789abcdef", Principal: `User::"corp|alice"`,
		Reason: ReasonPolicyAllow, Action: `Action::"GET /orders/{id}"`, Resource: `Route::"orders"`, Policies: []string{"staff-read"}}
	tok := &identity.Token{View: token.View{Sub: "alice", Iss: "https://idp", Groups: []string{"staff"}, Scopes: []string{"orders:read"}}}
	tok.Seal("User", "corp|alice")
	id := &identity.Identity{Token: tok}
	in := &request{authorization: "Bearer x", headers: []policy.Header{{Name: "x-warden-groups", Value: "admin"}}}
	rl := ratelimit.Decision{Allowed: true, Rule: "per-user", Limit: 1000, Window: time.Minute, Remaining: 999, Reset: 60 * time.Millisecond}
	b.ReportAllocs()
	for b.Loop() {
		_ = a.allow(rec, in, id, rl)
	}
}

// FuzzUIDString: uidString is cedar's EntityUID.String.
func FuzzUIDString(f *testing.F) {
	for _, id := range []string{"orders", "svc:/orders/{id}", `a"b`, `a\b`, "a'b", "\x00", "\t", "é", "\u0301x", "x\u0301", " ~", "\x7f", "\xff"} {
		f.Add("Route", id)
	}
	f.Fuzz(func(t *testing.T, typ, id string) {
		u := cedar.NewEntityUID(cedar.EntityType(typ), cedar.String(id))
		if got, want := uidString(u), u.String(); got != want {
			t.Fatalf("uidString(%q, %q) = %q, want %q", typ, id, got, want)
		}
	})
}

// TestSlabReuseLeavesNothing: every pair of FuzzResponse's seeds (and a
// bare allow and deny), one after the other, so that the second response
// is built in the slab the first gave back (it is, mostly: sync.Pool may
// drop one) and must be written as the old builder's.
func TestSlabReuseLeavesNothing(t *testing.T) {
	long := "a-very-long-rule-name-" + strings.Repeat("r", 100)
	cases := []func(t *testing.T){
		func(t *testing.T) {
			responseCase(t, "corp|alice", "alice", "https://idp", "staff,ops", "orders:read", "per-user", "x-warden-groups\nx_warden_Principal\nx-other", "p1\np2", "", "", 0b1011, 1000, 999, 60, 1, 0)
		},
		func(t *testing.T) {
			responseCase(t, "", "", "", "", "", "", "", "", `Bearer realm="warden"`, "nonce", 0xffff, 0, -1, 0, 0, 7)
		},
		func(t *testing.T) {
			responseCase(t, "corp|\xff", "s", "i", "g", "", long, "x-warden-decision-id", "p1\np2\np3\np4\np5\np6", "", "", 0b110101, 1<<40, 3, 3600, 120, 150)
		},
		func(t *testing.T) { // every part of an allow
			responseCase(t, "corp|bob", "bob", "https://idp", "a,b,c", "s1 s2", "rule", "x-warden-a\nx-warden-b\nauthorization", "p1\np2\np3\np4\np5", "", "", 0b111011111, 5, 4, 1, 1, 1)
		},
		func(t *testing.T) { // every part of a deny
			responseCase(t, "corp|eve", "eve", "https://idp", "a", "s", "rule", "e1\ne2", "p1\np2\np3\np4\np5\np6\np7", `Bearer error="invalid_token"`, "n0nce", 0b1111111111111111, 5, 0, 1, 1, 1)
		},
		func(t *testing.T) { responseCase(t, "", "", "", "", "", "", "", "", "", "", 0, 0, 0, 0, 0, 0) },   // a bare allow
		func(t *testing.T) { responseCase(t, "", "", "", "", "", "", "", "", "", "", 512, 0, 0, 0, 0, 0) }, // a bare deny
	}
	for i, first := range cases {
		for j, second := range cases {
			t.Run(fmt.Sprint(i, j), func(t *testing.T) {
				first(t)
				second(t)
			})
		}
	}
	a := New(Options{})
	rec := &decisionlog.Record{DecisionID: "d"}
	reused := false
	for range 20 {
		s := a.allowed(rec, &request{}, &identity.Identity{}, ratelimit.Decision{})
		s.release()
		reused = reused || a.allowed(rec, &request{}, &identity.Identity{}, ratelimit.Decision{}) == s
	}
	if !reused {
		t.Error("a slab given back was never reused: the test above shows nothing")
	}
}
