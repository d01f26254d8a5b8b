package server_test

import (
	"context"
	"testing"
	"time"

	"github.com/wardenauthz/warden/authz/config"
	"github.com/wardenauthz/warden/internal/testwait"
	"github.com/wardenauthz/warden/ratelimit"
	"github.com/wardenauthz/warden/ratelimit/redistest"
)

// TestTwoReplicasShareRedis: two Wardens on one redis-server enforce one
// combined limit (10 per minute in total, then 429 from either), honour a
// revocation made through the other within a second, and with Redis down
// answer as configured (rate limiting falls back to a local limiter,
// revocation fails closed with 503 once stale) and recover by themselves.
func TestTwoReplicasShareRedis(t *testing.T) {
	srv := redistest.Start(t)
	redisCfg := func(c *config.Config) {
		c.Store.Kind = "redis"
		c.Store.Redis.Addrs = []string{srv.Addr}
		c.RateLimit.Rules[0].Limit, c.RateLimit.Rules[0].Burst = 10, 10
		c.Revocation.MaxStaleness = 600 * time.Millisecond
	}
	a := start(t, redisCfg)
	b := startWith(t, a.is, redisCfg)
	tok := a.token(t, "alice", "staff")
	reason := func(e *env, token string) string { return e.reason(t, token) }
	allowed := 0
	for i := range 14 {
		e := a
		if i%2 == 1 {
			e = b
		}
		switch r := reason(e, tok); r {
		case "policy_allow":
			allowed++
		case "rate_limited":
		default:
			t.Fatalf("request %d: %s", i, r)
		}
	}
	if allowed != 10 {
		t.Errorf("allowed across both replicas: %d, want 10", allowed)
	}

	bob := a.token(t, "bob", "staff")
	if r := reason(b, bob); r != "policy_allow" {
		t.Fatalf("bob before revocation: %s", r)
	}
	if err := a.svc.Store.Revoke(context.Background(), ratelimit.Revocation{Kind: "jti", ID: "jti-bob", Until: time.Unix(4102444800, 0)}); err != nil {
		t.Fatal(err)
	}
	testwait.Until(t, time.Second, "revocation through replica a not honoured by replica b", func() bool {
		return reason(b, bob) == "token_revoked"
	})

	// The store's view ages on the wall clock (server.New gives it none to
	// inject), so the test waits for max_staleness to pass: until then the
	// answer is the local fallback limiter's (allow, or 429 once this
	// polling has used up its 10), and unavailable after.
	carol := a.token(t, "carol", "staff")
	stale := func(e *env, what string) {
		t.Helper()
		testwait.Until(t, 5*time.Second, what+": never unavailable (revocation must fail closed)", func() bool {
			switch r := reason(e, carol); r {
			case "unavailable":
				return true
			case "policy_allow", "rate_limited":
				return false
			default:
				t.Fatalf("%s: got %s, want policy_allow or rate_limited until max_staleness, then unavailable", what, r)
				return false
			}
		})
	}
	srv.Pause(true)
	stale(a, "Redis paused")
	srv.Pause(false)
	recovered := func(what string) {
		t.Helper()
		testwait.Until(t, 5*time.Second, "no recovery after "+what, func() bool {
			return reason(a, carol) == "policy_allow" && reason(b, carol) == "policy_allow"
		})
	}
	recovered("SIGCONT")

	// SIGKILL: the same answers, no crash, and a full recovery on restart.
	srv.Kill()
	stale(b, "Redis killed")
	srv.Restart()
	recovered("restart")
	// The restarted Redis lost its data (no persistence in tests), but the
	// replicas' mirrors keep what they knew: bob stays revoked.
	if r := reason(b, bob); r != "token_revoked" {
		t.Errorf("bob after Redis restart: %s", r)
	}
}

// TestRateLimitFallsBackWhenRedisIsDown: with revocation allowed to fail
// open, a dead Redis leaves rate limiting to the local per-instance limiter.
func TestRateLimitFallsBackWhenRedisIsDown(t *testing.T) {
	srv := redistest.Start(t)
	e := start(t, func(c *config.Config) {
		c.Store.Kind = "redis"
		c.Store.Redis.Addrs = []string{srv.Addr}
		c.RateLimit.Rules[0].Limit, c.RateLimit.Rules[0].Burst = 3, 3
		c.Revocation.FailOpen = true
	})
	tok := e.token(t, "dave", "staff")
	srv.Pause(true)
	defer srv.Pause(false)
	var got []string
	for range 4 {
		resp, err := e.client.Check(context.Background(), sample(t, "01-get-bearer-jwt.json", tok))
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, resp.GetDynamicMetadata().GetFields()["reason"].GetStringValue())
	}
	if want := "policy_allow,policy_allow,policy_allow,rate_limited"; join(got) != want {
		t.Errorf("got %s, want %s", join(got), want)
	}
}

func join(ss []string) string {
	out := ""
	for i, s := range ss {
		if i > 0 {
			out += ","
		}
		out += s
	}
	return out
}
