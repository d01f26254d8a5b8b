package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wardenauthz/warden/authz/config"
	"github.com/wardenauthz/warden/authz/decisionlog"
	"github.com/wardenauthz/warden/internal/testlog"
	"github.com/wardenauthz/warden/ratelimit"
	"github.com/wardenauthz/warden/ratelimit/redistest"
)

// serveWith runs `warden serve` on cfg until the test ends.
func serveWith(t *testing.T, cfg, grpcAddr string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	var out, errb bytes.Buffer
	go func() {
		done <- run(ctx, []string{"serve", "--config", cfg}, testlog.Writer(t, "records", &out), testlog.Writer(t, "stderr", &errb))
	}()
	exited := false
	t.Cleanup(func() {
		cancel()
		if !exited {
			<-done
		}
	})
	deadline := time.Now().Add(5 * time.Second)
	for {
		if c, err := net.Dial("tcp", grpcAddr); err == nil {
			c.Close()
			return
		}
		select {
		case code := <-done: // serve wrote errb before it returned
			exited = true
			t.Fatalf("serve exited %d before it listened: %s", code, errb.String())
		default:
		}
		if time.Now().After(deadline) {
			cancel()
			<-done
			exited = true
			t.Fatalf("serve did not start: %s", errb.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func rewrite(t *testing.T, cfg string, from, to string) {
	t.Helper()
	b, _ := os.ReadFile(cfg)
	if !strings.Contains(string(b), from) {
		t.Fatalf("%q not in %s", from, cfg)
	}
	if err := os.WriteFile(cfg, []byte(strings.Replace(string(b), from, to, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
}

func parseRecords(t *testing.T, out string) []decisionlog.Record {
	t.Helper()
	var recs []decisionlog.Record
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line == "" {
			continue
		}
		var r decisionlog.Record
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("%v: %s", err, line)
		}
		recs = append(recs, r)
	}
	return recs
}

// TestLogsAcrossReplicas: two replicas write to one Redis stream; `warden
// logs --decision deny --since 5m` lists both replicas' denials with their
// deciding policies.
func TestLogsAcrossReplicas(t *testing.T) {
	t.Setenv("XDG_STATE_HOME", t.TempDir())
	srv := redistest.Start(t)
	var addrs []string
	var cfgs []string
	for _, node := range []string{"replica-a", "replica-b"} {
		cfg, addr := quickstartCopy(t)
		rewrite(t, cfg, "store: {kind: memory}", "store: {kind: redis, redis: {addrs: ['"+srv.Addr+"']}}")
		rewrite(t, cfg, "sinks: [{kind: stdout}]", "sinks: [{kind: redis_stream, stream: warden:decisions, max_len: 10000}]")
		rewrite(t, cfg, "http_addr: 127.0.0.1", "node: "+node+"\n  http_addr: 127.0.0.1")
		serveWith(t, cfg, addr)
		addrs, cfgs = append(addrs, addr), append(cfgs, cfg)
	}
	_, reader, _ := runCLI(t, "dev", "token", "--config", cfgs[0], "--sub", "bob", "--groups", "readers")
	reader = strings.TrimSpace(reader)
	for _, addr := range addrs {
		runCLI(t, "check", "--server", addr, "--method", "DELETE", "--url", "http://localhost:8080/orders/42", "--header", "authorization: Bearer "+reader)
		runCLI(t, "check", "--server", addr, "--url", "http://localhost:8080/orders", "--header", "authorization: Bearer "+reader)
	}
	var recs []decisionlog.Record
	deadline := time.Now().Add(5 * time.Second)
	for {
		code, out, errs := runCLI(t, "logs", "--config", cfgs[1], "--decision", "deny", "--since", "5m", "--output", "json")
		if code != 0 {
			t.Fatalf("logs: %d %s", code, errs)
		}
		if recs = parseRecords(t, out); len(recs) == 2 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	nodes := map[string]bool{}
	for _, r := range recs {
		nodes[r.Node] = true
		if r.Decision != "deny" || strings.Join(r.Policies, ",") != "orders-delete-needs-mfa" || r.Principal != `User::"dev|bob"` {
			t.Errorf("record: %+v", r)
		}
	}
	if len(recs) != 2 || !nodes["replica-a"] || !nodes["replica-b"] {
		t.Fatalf("want one denial from each replica, got %+v", recs)
	}
	// The same query through replica a's admin API reads the shared stream.
	c, err := config.Load(cfgs[0])
	if err != nil {
		t.Fatal(err)
	}
	code, out, errs := runCLI(t, "logs", "--server", c.Admin.Addr, "--decision", "deny", "--since", "5m", "--output", "json")
	if viaAdmin := parseRecords(t, out); code != 0 || len(viaAdmin) != 2 || viaAdmin[0].DecisionID != recs[0].DecisionID || viaAdmin[1].DecisionID != recs[1].DecisionID {
		t.Errorf("logs --server: exit %d %s\n%s", code, errs, out)
	}
	// Read from the stream directly, the last records may come up to a
	// batch interval (5 ms) late: wait for all four.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		code, out, _ = runCLI(t, "logs", "--config", cfgs[0], "--since", "5m")
		if code == 0 && strings.Count(out, "\n") == 5 || time.Now().After(deadline) {
			break
		}
	}
	if code != 0 || strings.Count(out, "\n") != 5 || !strings.Contains(out, "DECISION_ID") {
		t.Errorf("table of all four records:\n%s", out)
	}
	if code, out, _ := runCLI(t, "logs", "--config", cfgs[0], "--action", "GET /orders", "--output", "json"); code != 0 || len(parseRecords(t, out)) != 2 {
		t.Errorf("--action filter:\n%s", out)
	}
	// Every filter, on both sources: the stream and the admin API.
	for _, source := range [][]string{{"--config", cfgs[1]}, {"--server", c.Admin.Addr}} {
		t.Run(source[0], func(t *testing.T) { checkFilters(t, source, recs[0]) })
	}
}

// checkFilters runs `warden logs` with each filter against a source holding
// the quick start's four records of TestLogsAcrossReplicas (bob's DELETE
// /orders/42, denied, and GET /orders, allowed, on replica-a and replica-b);
// deny is one of the denials.
func checkFilters(t *testing.T, source []string, deny decisionlog.Record) {
	query := func(args ...string) []decisionlog.Record {
		t.Helper()
		code, out, errs := runCLI(t, append(append([]string{"logs", "--output", "json", "--since", "5m"}, source...), args...)...)
		if code != 0 {
			t.Fatalf("logs %v: exit %d\n%s", args, code, errs)
		}
		return parseRecords(t, out)
	}
	if recs := query("--decision-id", strings.ToUpper(deny.DecisionID)); len(recs) != 1 || recs[0].DecisionID != deny.DecisionID {
		t.Errorf("--decision-id: %+v", recs)
	}
	for _, tc := range []struct {
		args []string
		want int
	}{
		{[]string{"--reason", "policy_deny"}, 2},
		{[]string{"--reason", "policy_allow"}, 2},
		{[]string{"--reason", "token_invalid"}, 0},
		{[]string{"--policy", "orders-delete-needs-mfa"}, 2},
		{[]string{"--policy", "orders-delete"}, 0},
		{[]string{"--resource", deny.Resource}, 2},
		{[]string{"--node", deny.Node}, 2},
		{[]string{"--node", deny.Node, "--reason", "policy_deny"}, 1},
		{[]string{"--principal", `User::"dev\u{7c}bob"`}, 4}, // any spelling of the same entity
		{[]string{"--since", "2h", "--until", "1h"}, 0},
		{[]string{"--until", deny.Time.Add(time.Nanosecond).Format(time.RFC3339Nano)}, -1}, // checked below
	} {
		recs := query(tc.args...)
		if tc.want >= 0 && len(recs) != tc.want {
			t.Errorf("%v: %d records, want %d: %+v", tc.args, len(recs), tc.want, recs)
		}
		for _, r := range recs {
			if tc.want < 0 && !r.Time.Before(deny.Time.Add(time.Second)) {
				t.Errorf("%v: record at %s", tc.args, r.Time)
			}
		}
	}
	// Malformed values are errors naming the form, never an empty answer.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--principal", "bob"}, `--principal: "bob": want a Cedar entity reference, e.g. User::"corp|alice"`},
		{[]string{"--principal", `User::dev|bob`}, `--principal`},
		{[]string{"--resource", "/orders/42"}, `--resource: "/orders/42": want a Cedar entity reference`},
		{[]string{"--reason", "forbidden"}, `--reason: "forbidden": want one of anonymous_deny, policy_allow, policy_deny`},
		{[]string{"--decision-id", "42"}, `--decision-id: "42": want the 32 hex digits`},
		{[]string{"--decision", "denied"}, `--decision: "denied": want allow or deny`},
		{[]string{"--until", "yesterday"}, `want a number of days (30d), a duration (12h) or an RFC 3339 time`},
		{[]string{"--since", "1h", "--until", "2h"}, `--until: `},
		{[]string{"--status", "42"}, `--status: 42`},
	} {
		code, out, errs := runCLI(t, append(append([]string{"logs"}, source...), tc.args...)...)
		if code != 2 || out != "" || !strings.Contains(errs, tc.want) {
			t.Errorf("%v: exit %d, want 2 and %q:\n%s%s", tc.args, code, tc.want, out, errs)
		}
	}
}

func TestLogsFileSink(t *testing.T) {
	t.Setenv("XDG_STATE_HOME", t.TempDir())
	cfg, addr := quickstartCopy(t)
	rewrite(t, cfg, "sinks: [{kind: stdout}]", "sinks: [{kind: file, path: decisions.log}]")
	serveWith(t, cfg, addr)
	runCLI(t, "check", "--server", addr, "--url", "http://localhost:8080/healthz")
	runCLI(t, "check", "--server", addr, "--url", "http://localhost:8080/orders")
	deadline := time.Now().Add(5 * time.Second)
	for {
		code, out, _ := runCLI(t, "logs", "--config", cfg, "--output", "json")
		recs := parseRecords(t, out)
		if code == 0 && len(recs) == 2 {
			if recs[0].Decision != "allow" || recs[1].Status != 401 {
				t.Errorf("records: %+v", recs)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("logs: %d %s", code, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(cfg), "decisions.log")); err != nil {
		t.Error(err)
	}
	// --limit keeps the newest: of the allow and the 401, the 401.
	if code, out, errs := runCLI(t, "logs", "--config", cfg, "--limit", "1", "--output", "json"); code != 0 || len(parseRecords(t, out)) != 1 || parseRecords(t, out)[0].Status != 401 {
		t.Errorf("--limit 1: exit %d %s\n%s", code, errs, out)
	}
	// The filters read the file sink too.
	_, out, _ := runCLI(t, "logs", "--config", cfg, "--reason", "anonymous_deny", "--output", "json")
	recs := parseRecords(t, out)
	if len(recs) != 1 || recs[0].Status != 401 {
		t.Fatalf("--reason anonymous_deny: %+v", recs)
	}
	for _, args := range [][]string{
		{"--decision-id", recs[0].DecisionID},
		{"--resource", recs[0].Resource, "--decision", "deny"},
		{"--until", "0s", "--status", "401"},
	} {
		code, out, errs := runCLI(t, append([]string{"logs", "--config", cfg, "--output", "json"}, args...)...)
		if got := parseRecords(t, out); code != 0 || len(got) != 1 || got[0].DecisionID != recs[0].DecisionID {
			t.Errorf("%v: exit %d %s\n%+v", args, code, errs, got)
		}
	}
	if code, _, errs := runCLI(t, "logs", "--config", cfg, "--principal", "alice"); code != 2 || !strings.Contains(errs, `want a Cedar entity reference`) {
		t.Errorf("malformed --principal on a file sink: exit %d %s", code, errs)
	}
}

func TestStreamIsTrimmed(t *testing.T) {
	srv := redistest.Start(t)
	c := ratelimit.NewRedisClient(&redis.UniversalOptions{Addrs: []string{srv.Addr}}, time.Second)
	defer c.Close()
	sink := decisionlog.NewRedisStreamSink(c, decisionlog.RedisStreamOptions{Stream: "s", MaxLen: 100})
	log := decisionlog.New(decisionlog.Options{Size: 100000, Sinks: []decisionlog.LineSink{sink}})
	for i := range 5000 {
		log.Record(&decisionlog.Record{DecisionID: string(rune('a' + i%26)), Decision: "allow"})
	}
	if err := log.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	n, err := c.XLen(context.Background(), "s").Result()
	if err != nil || n > 300 || n < 100 {
		t.Errorf("stream length %d (%v), want about 100 (MAXLEN ~ 100)", n, err)
	}
}
