package ratelimit_test

import (
	"context"
	"fmt"
	"time"

	"github.com/wardenauthz/warden/ratelimit"
)

// A Limiter applies its rules through a Counter, here the in-memory one;
// the clock is injected, so the example moves time itself.
func ExampleLimiter_Allow() {
	cfg := ratelimit.Config{Rules: []ratelimit.Rule{{
		Name:  "per-user",
		When:  ratelimit.When{PrincipalType: "User"},
		Limit: 2,
		Per:   time.Minute,
	}}}
	cfg.SetDefaults() // burst = limit, keyed on the principal
	if err := cfg.Validate(); err != nil {
		fmt.Println(err)
		return
	}
	now := time.Date(2026, 6, 2, 14, 30, 0, 0, time.UTC)
	l := ratelimit.NewLimiter(cfg.Rules, ratelimit.NewMemory(), func() time.Time { return now })

	alice := &ratelimit.Request{PrincipalType: "User", Principal: "corp|alice", Method: "GET"}
	for range 3 {
		d, err := l.Allow(context.Background(), alice)
		fmt.Println(d.Allowed, d.Rule, d.Remaining, d.RetryAfter, err)
	}
	now = now.Add(30 * time.Second) // one request's worth of the window
	d, _ := l.Allow(context.Background(), alice)
	fmt.Println(d.Allowed, d.Remaining)

	// A workload matches no rule: nothing limits it.
	d, _ = l.Allow(context.Background(), &ratelimit.Request{PrincipalType: "Workload", Principal: "spiffe://cluster.local/ns/a/sa/b"})
	fmt.Println(d.Allowed, d.Matched())
	// Output:
	// true per-user 1 0s <nil>
	// true per-user 0 0s <nil>
	// false per-user 0 30s <nil>
	// true 0
	// true false
}
