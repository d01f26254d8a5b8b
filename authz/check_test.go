package authz

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/wardenauthz/warden/identity"
	"github.com/wardenauthz/warden/policy"
)

// panicAuthn is an Authenticator that panics (a bug in a stage).
type panicAuthn struct{}

func (panicAuthn) Authenticate(context.Context, identity.Input) (identity.Identity, error) {
	panic("boom")
}

type noPolicies struct{}

func (noPolicies) Current() *policy.Set { return nil }

// deniedUnavailable checks out is a 503 unavailable whose record says
// detail, with Retry-After: 1.
func deniedUnavailable(t *testing.T, out Outcome, detail string) {
	t.Helper()
	rec := out.Record
	if rec.Decision != Deny || rec.Reason != ReasonUnavailable || rec.Status != http.StatusServiceUnavailable || rec.Detail != detail {
		t.Fatalf("record %s %s %d %q, want deny unavailable 503 %q", rec.Decision, rec.Reason, rec.Status, rec.Detail, detail)
	}
	d := out.Response.GetDeniedResponse()
	if d.GetStatus().GetCode() != http.StatusServiceUnavailable {
		t.Fatalf("response status %d, want 503", d.GetStatus().GetCode())
	}
	retry := ""
	for _, h := range d.GetHeaders() {
		if h.GetHeader().GetKey() == "retry-after" {
			retry = h.GetHeader().GetValue()
		}
	}
	if retry != "1" {
		t.Fatalf("retry-after %q, want 1", retry)
	}
}

// A stage that panics denies (503 internal error); it never allows, and
// never takes the process down.
func TestStagePanicDenies(t *testing.T) {
	a := New(Options{Authenticator: panicAuthn{}, Policies: noPolicies{}})
	deniedUnavailable(t, a.Evaluate(context.Background(), headerRequest(1, false, func(int) string { return "x" })), "internal error")
}

// No policy set is an internal fault: 503, never an allow.
func TestNoPolicySetDenies(t *testing.T) {
	a := New(Options{Authenticator: anonymous{}, Policies: noPolicies{}})
	deniedUnavailable(t, a.Evaluate(context.Background(), headerRequest(1, false, func(int) string { return "x" })), "authorization is temporarily unavailable")
}

type anonymous struct{}

func (anonymous) Authenticate(context.Context, identity.Input) (identity.Identity, error) {
	return identity.Identity{Kind: identity.Anonymous, ID: "anonymous"}, nil
}

// When making the record of a panicked Check panics too (here: a result
// without its set), the outcome is the record of the request alone.
func TestConcludePanicFallsBack(t *testing.T) {
	a := New(Options{Authenticator: anonymous{}, Policies: noPolicies{}})
	now := time.Unix(1_700_000_000, 0)
	in := parseRequest(headerRequest(1, false, func(int) string { return "x" }), now, Limits{})
	c := &check{in: &in, decisionID: "d1", time: now, transport: TransportGRPC, res: &policy.Result{}}
	out := a.concludePanic(c)
	deniedUnavailable(t, out, "internal error")
	if rec := out.Record; rec.DecisionID != "d1" || rec.Request.Host != "h" || rec.Action != "" || out.Result != nil {
		t.Fatalf("fallback record %+v (result %v), want the request's alone", rec, out.Result)
	}
}
