package ratelimit

import (
	"context"
	"testing"
	"time"
)

func TestGCRALimitThenDeny(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	cfg := Config{Rules: []Rule{{Name: "per-user", When: When{PrincipalType: "User"}, Limit: 10, Per: time.Minute}}}
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	l := NewLimiter(cfg.Rules, NewMemory(), func() time.Time { return now })
	alice := &Request{PrincipalType: "User", Principal: "corp|alice", Method: "GET"}
	for i := range 10 {
		d, err := l.Allow(context.Background(), alice)
		if err != nil || !d.Allowed || d.Remaining != 9-i {
			t.Fatalf("request %d: %+v %v", i+1, d, err)
		}
	}
	d, _ := l.Allow(context.Background(), alice)
	if d.Allowed || d.RetryAfter != 6*time.Second || d.Rule != "per-user" {
		t.Fatalf("11th: got %+v, want denied with Retry-After 6s", d)
	}
	if d, _ := l.Allow(context.Background(), &Request{PrincipalType: "User", Principal: "corp|bob"}); !d.Allowed {
		t.Error("bob has his own bucket")
	}
	if d, _ := l.Allow(context.Background(), &Request{PrincipalType: "Anonymous", Principal: "anonymous"}); d.Matched() {
		t.Error("rule must not apply to Anonymous")
	}
	now = now.Add(6 * time.Second)
	if d, _ := l.Allow(context.Background(), alice); !d.Allowed {
		t.Error("one token refilled after 6s")
	}
}

func TestDeniedRequestConsumesNothing(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	rules := []Rule{
		{Name: "wide", Limit: 100, Per: time.Minute, Burst: 100, Key: []string{"principal"}},
		{Name: "narrow", Limit: 1, Per: time.Minute, Burst: 1, Key: []string{"principal"}},
	}
	l := NewLimiter(rules, NewMemory(), func() time.Time { return now })
	r := &Request{PrincipalType: "User", Principal: "a"}
	l.Allow(context.Background(), r)
	for range 5 {
		if d, _ := l.Allow(context.Background(), r); d.Allowed || d.Rule != "narrow" {
			t.Fatalf("got %+v, want narrow denial", d)
		}
	}
	outs, _ := l.counter.Take(context.Background(), now, []Bucket{{Key: key(&rules[0], r), Interval: 600 * time.Millisecond, Tolerance: 60 * time.Second}})
	if outs[0].Remaining != 98 {
		t.Errorf("wide bucket: remaining %d, want 98 (denied requests consumed nothing)", outs[0].Remaining)
	}
}

func TestKeysCannotCollide(t *testing.T) {
	rule := &Rule{Name: "r", Key: []string{"header:x-a", "header:x-b"}}
	h := func(a, b string) *Request {
		return &Request{Header: func(n string) string {
			if n == "x-a" {
				return a
			}
			return b
		}}
	}
	if key(rule, h("a|1:b", "c")) == key(rule, h("a", "b|1:c")) {
		t.Error("crafted header values forged another bucket key")
	}
}

func TestRevocations(t *testing.T) {
	m := NewMemory()
	ctx := context.Background()
	iat := time.Unix(1_700_000_000, 0)
	_ = m.Revoke(ctx, Revocation{Kind: "jti", ID: "j1", Until: iat.Add(time.Hour)})
	_ = m.Revoke(ctx, Revocation{Kind: "subject", ID: "corp|bob", Before: iat})
	for _, tc := range []struct {
		subject, jti string
		iat          time.Time
		want         bool
	}{
		{"corp|alice", "j1", iat, true},
		{"corp|alice", "j2", iat, false},
		{"corp|bob", "j3", iat.Add(-time.Second), true},
		{"corp|bob", "j3", iat.Add(time.Second), false},
		{"corp|bob", "", time.Time{}, true},
	} {
		if got, _ := m.Revoked(ctx, tc.subject, tc.jti, tc.iat); got != tc.want {
			t.Errorf("%+v: got %v", tc, got)
		}
	}
	list, _ := m.List(ctx, iat)
	if len(list) != 2 {
		t.Errorf("list: %+v", list)
	}
	if list, _ := m.List(ctx, iat.Add(2*time.Hour)); len(list) != 1 {
		t.Errorf("expired jti still listed: %+v", list)
	}
}

// errText is err's message, "" for none.
func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// TestConfigValidate: each bad field is reported once, under its own key
// path, and a good rule set passes.
func TestConfigValidate(t *testing.T) {
	good := func() Rule { return Rule{Name: "r", Limit: 10, Per: time.Minute} }
	with := func(f func(*Rule)) []Rule { r := good(); f(&r); return []Rule{r} }
	for _, tc := range []struct {
		name  string
		rules []Rule
		want  string // the whole error, "" for none
	}{
		{"good", []Rule{good(), {Name: "s", Limit: 1, Per: time.Second, Key: []string{"header:x-tenant", "claim:org", "source_ip"}, When: When{PrincipalType: "Workload", ActionGroup: "write"}}}, ""},
		{"no name", with(func(r *Rule) { r.Name = "" }), "rules[0].name: is required"},
		{"name with space", with(func(r *Rule) { r.Name = "a b" }), `rules[0].name: "a b" must not contain quotes, commas, semicolons, '=' or spaces`},
		{"name with comma", with(func(r *Rule) { r.Name = "a,b" }), `rules[0].name: "a,b" must not contain quotes, commas, semicolons, '=' or spaces`},
		{"name twice", []Rule{good(), good()}, `rules[1].name: "r" is used twice`},
		{"zero limit", with(func(r *Rule) { r.Limit = 0 }), "rules[0].limit: must be positive"},
		{"short per", with(func(r *Rule) { r.Per = time.Millisecond }), "rules[0].per: must be at least 1s, got 1ms"},
		{"negative burst", with(func(r *Rule) { r.Burst = -1 }), "rules[0].burst: must not be negative"},
		{"principal type", with(func(r *Rule) { r.When.PrincipalType = "Robot" }), `rules[0].when.principal_type: "Robot" is not User, Client, Workload or Anonymous`},
		{"action group", with(func(r *Rule) { r.When.ActionGroup = "delete" }), `rules[0].when.action_group: "delete" is not read or write`},
		{"key part", with(func(r *Rule) { r.Key = []string{"principal", "nope"} }), `rules[0].key[1]: "nope" is not one of principal, client_id, source_ip, service, route, action, header:NAME, claim:NAME`},
		{"empty header key", with(func(r *Rule) { r.Key = []string{"header:"} }), `rules[0].key[0]: "header:" is not one of principal, client_id, source_ip, service, route, action, header:NAME, claim:NAME`},
		{"every problem", []Rule{{Name: "a b", Limit: 0, Per: time.Millisecond, Key: []string{"nope"}, When: When{PrincipalType: "Robot"}}},
			"rules[0].name: \"a b\" must not contain quotes, commas, semicolons, '=' or spaces\n" +
				"rules[0].limit: must be positive\n" +
				"rules[0].per: must be at least 1s, got 1ms\n" +
				"rules[0].when.principal_type: \"Robot\" is not User, Client, Workload or Anonymous\n" +
				"rules[0].key[0]: \"nope\" is not one of principal, client_id, source_ip, service, route, action, header:NAME, claim:NAME"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{Rules: tc.rules}
			cfg.SetDefaults()
			if got := errText(cfg.Validate()); got != tc.want {
				t.Errorf("Validate:\ngot  %q\nwant %q", got, tc.want)
			}
		})
	}
	for _, tc := range []struct {
		name string
		cfg  RevocationConfig
		want string
	}{
		{"default", RevocationConfig{}, ""},
		{"negative staleness", RevocationConfig{MaxStaleness: -time.Second}, "max_staleness: must not be negative"},
	} {
		t.Run("revocation/"+tc.name, func(t *testing.T) {
			tc.cfg.SetDefaults()
			if got := errText(tc.cfg.Validate()); got != tc.want {
				t.Errorf("Validate: got %q, want %q", got, tc.want)
			}
		})
	}
}
