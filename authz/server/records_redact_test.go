package server_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/wardenauthz/warden/authz/admin"
	"github.com/wardenauthz/warden/authz/checkreq"
	"github.com/wardenauthz/warden/authz/config"
	"github.com/wardenauthz/warden/authz/server"
	"github.com/wardenauthz/warden/identity/oidctest"
	"github.com/wardenauthz/warden/internal/testlog"
	"github.com/wardenauthz/warden/internal/testwait"
	adminv1 "github.com/wardenauthz/warden/proto/warden/admin/v1"
	"github.com/wardenauthz/warden/ratelimit/redistest"
)

// TestRecordsRedactCredentialShapes: credentials under names no list
// knows (x-amzn-oidc-data, x-jwt-assertion, dpop, ?assertion=), in a path
// segment, a context extension, with their dots moved or percent-encoded,
// and an API key in base64's standard alphabet, leave no trace in a
// replayable record, neither in the sink nor through QueryDecisions; the
// ordinary ids beside them (a UUID, a short hex id) are kept.
func TestRecordsRedactCredentialShapes(t *testing.T) {
	var stdout testlog.Buffer
	is := oidctest.New(t)
	e := startOpts(t, is, server.Options{Stdout: &stdout, FullContext: true}, func(c *config.Config) {
		c.DecisionLog.Sinks = []config.Sink{{Kind: "stdout"}}
		c.DecisionLog.Replayable = true
		c.Admin.TokenFile = adminTokens(t)
	})
	good := e.token(t, "alice", "staff")
	other := e.token(t, "bob", "staff")
	p := strings.Split(other, ".")
	moved := p[0][:10] + "." + p[0][10:] + p[1][:7] + ".." + p[1][7:] + "." + p[2]
	key := base64.StdEncoding.EncodeToString([]byte("an API key of thirty-two bytes!!")) + "/x+Q9"
	const uuid, shortHex = "3f2b8c1e-9d4a-4b7e-8f6a-1c2d3e4f5a6b", "1f3a5c7e9b2d"
	secrets := []string{other, p[1], p[2], key, moved}
	testlog.Secret(t, secrets...)
	for _, h := range []checkreq.HTTP{
		{URL: "https://api.example.com/v1/orders/" + uuid + "?assertion=" + other + "&page=" + shortHex,
			Headers: []string{"authorization: Bearer " + good, "x-amzn-oidc-data: " + other, "x-jwt-assertion: " + other,
				"dpop: " + other, "x-upstream-key: " + key, "x-trace: " + moved, "x-request-id: " + uuid},
			ContextExtensions: map[string]string{"note": "forwarded " + other}},
		{URL: "https://api.example.com/v1/orders/" + other, Headers: []string{"authorization: Bearer " + good}},
		{URL: "https://api.example.com/v1/orders/" + strings.ReplaceAll(other, ".", "%2E"), Headers: []string{"authorization: Bearer " + good}},
		{URL: "https://api.example.com/catalog/search/x?q=" + strings.NewReplacer("+", "%2B", "/", "%2F").Replace(key)},
	} {
		e.check(t, h)
	}
	sink, queried, _ := recordsOut(t, e, &stdout, 4)
	for name, out := range map[string]string{"stdout sink": sink, "QueryDecisions": queried} {
		if !strings.Contains(out, "cedar") {
			t.Fatalf("%s: no Cedar section: the replayable context was not checked", name)
		}
		if m := jwtRE.FindString(out); m != "" {
			t.Errorf("%s holds a JWS: %.16s...", name, m)
		}
		for _, s := range secrets {
			for _, frag := range []string{s[:min(24, len(s))], s[len(s)-24:]} {
				if strings.Contains(out, frag) {
					t.Errorf("%s holds %q of a credential", name, frag)
				}
			}
		}
		for _, keep := range []string{uuid, shortHex, "x-amzn-oidc-data", "[REDACTED]"} {
			if !strings.Contains(out, keep) {
				t.Errorf("%s lost %q", name, keep)
			}
		}
	}
}

// TestGroupsHeaderEscapesSeparator: a group whose name holds the header's
// separator (an LDAP DN) is percent-encoded in x-warden-groups, so the
// upstream never reads it as two groups; '%' itself is encoded too.
func TestGroupsHeaderEscapesSeparator(t *testing.T) {
	e := start(t)
	req := sample(t, "01-get-bearer-jwt.json", e.token(t, "alice", "staff", "cn=admins,ou=groups", "50%,off"))
	resp, err := e.client.Check(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	got := ""
	for _, hv := range resp.GetOkResponse().GetHeaders() {
		if hv.GetHeader().GetKey() == "x-warden-groups" {
			got = hv.GetHeader().GetValue()
		}
	}
	if want := "staff,cn=admins%2Cou=groups,50%25%2Coff"; got != want {
		t.Errorf("x-warden-groups: got %q, want %q", got, want)
	}
	if n := len(strings.Split(got, ",")); n != 3 {
		t.Errorf("the upstream splits %q into %d groups, want 3", got, n)
	}
}

// TestRepeatedWarningsRateLimited: with Redis gone, every Check fails its
// revocation lookup (the issue: 61,115 WARN lines, one per Check); the
// warning is written once per interval while the metric counts each.
func TestRepeatedWarningsRateLimited(t *testing.T) {
	var logs testlog.Buffer
	srv := redistest.Start(t)
	e := startOpts(t, oidctest.New(t), server.Options{Stdout: io.Discard, Logger: slog.New(slog.NewJSONHandler(&logs, nil))}, func(c *config.Config) {
		c.Store.Kind = "redis"
		c.Store.Redis.Addrs = []string{srv.Addr}
		c.Revocation.MaxStaleness = 300 * time.Millisecond
	})
	tok := e.token(t, "alice", "staff")
	srv.Kill()
	deadline := time.Now().Add(5 * time.Second)
	for e.reason(t, tok) != "unavailable" {
		if time.Now().After(deadline) {
			t.Fatal("revocation state never went stale with Redis killed")
		}
		time.Sleep(20 * time.Millisecond)
	}
	before := storeErrors(t, e, "revocation")
	const n = 50
	for range n {
		if r := e.reason(t, tok); r != "unavailable" {
			t.Fatalf("with Redis gone and revocation.fail_open false: %s", r)
		}
	}
	if got := storeErrors(t, e, "revocation") - before; got != n {
		t.Errorf("warden_store_errors_total{op=revocation} grew by %v, want %d (one per Check)", got, n)
	}
	if c := strings.Count(logs.String(), "revocation check failed; denying"); c != 1 {
		t.Errorf("%d warning lines for %d failing Checks within one interval, want 1:\n%s", c, n+1, logs.String())
	}
}

func storeErrors(t *testing.T, e *env, op string) float64 {
	t.Helper()
	mfs, err := e.svc.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "warden_store_errors_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "op" && l.GetValue() == op {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// recordsOut reads e's records through the admin API (the ring) once it
// holds want of them, then stops e, its decision log flushed, and returns
// what its stdout sink wrote and the query's answer (as JSON too).
func recordsOut(t *testing.T, e *env, stdout *testlog.Buffer, want int) (sink, queried string, resp *adminv1.QueryDecisionsResponse) {
	t.Helper()
	reader := dialAdmin(t, e.admin, admin.ClientOptions{TokenFile: tokenFileOf(t, readerToken)})
	testwait.NoError(t, 10*time.Second, func() error {
		var err error
		if resp, err = reader.QueryDecisions(context.Background(), &adminv1.QueryDecisionsRequest{}); err == nil && len(resp.GetDecisions()) < want {
			err = fmt.Errorf("%d records in the ring, want %d", len(resp.GetDecisions()), want)
		}
		return err
	})
	b, _ := json.Marshal(resp)
	e.cancel() // flush the decision log
	<-e.done
	e.done <- nil
	return stdout.String(), string(b), resp
}
