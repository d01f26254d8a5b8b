package authz

import (
	"context"
	"testing"
	"time"

	"github.com/wardenauthz/warden/identity"
	"github.com/wardenauthz/warden/internal/token"
	"github.com/wardenauthz/warden/policy"
	"github.com/wardenauthz/warden/ratelimit"
)

// wrapped hides a Limiter behind another RateLimiter.
type wrapped struct{ *ratelimit.Limiter }

// TestLimitRequestOnStack: with the server's own limiter (a
// *ratelimit.Limiter), limit keeps the rate-limit request and its header
// and claim lookups off the heap: three allocations fewer than through
// another RateLimiter, with the same decision (issue 18).
func TestLimitRequestOnStack(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	rules := []ratelimit.Rule{{Name: "per-user", When: ratelimit.When{PrincipalType: "User"}, Key: []string{"principal", "header:x-tenant", "claim:azp"}, Limit: 1e9, Burst: 1e9, Per: time.Minute}}
	l := ratelimit.NewLimiter(rules, ratelimit.NewMemory(), func() time.Time { return now })
	in := &request{method: "GET", headers: []policy.Header{{Name: "x-tenant", Value: "t1"}}}
	id := &identity.Identity{Kind: identity.User, ID: "corp|alice", Token: &identity.Token{View: token.View{Claims: map[string]any{"azp": "web"}}}}
	set, res := new(policy.Set), &policy.Result{Service: "orders"}
	run := func(rl RateLimiter) (ratelimit.Decision, float64) {
		a := &Authorizer{o: Options{RateLimiter: rl}}
		var d ratelimit.Decision
		allocs := testing.AllocsPerRun(50, func() {
			var den *denial
			if d, den = a.limit(context.Background(), in, "198.51.100.7", id, set, res); den != nil {
				t.Fatalf("denied: %v", den.reason)
			}
		})
		return d, allocs
	}
	direct, a := run(l)
	other, b := run(wrapped{l})
	if direct.Rule != "per-user" || direct.Rule != other.Rule || direct.Limit != other.Limit || direct.Window != other.Window {
		t.Errorf("decisions differ: %+v and %+v", direct, other)
	}
	if a > b-3 {
		t.Errorf("%v allocations with the server's limiter, %v through another RateLimiter: want 3 fewer", a, b)
	}
}
