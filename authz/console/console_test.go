package console_test

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wardenauthz/warden/authz/admin"
	"github.com/wardenauthz/warden/authz/config"
	"github.com/wardenauthz/warden/authz/console"
	"github.com/wardenauthz/warden/authz/decisionlog"
	"github.com/wardenauthz/warden/policy"
	"github.com/wardenauthz/warden/ratelimit"
)

const token = "console-unit-token-0123456789"

var now = time.Date(2026, 6, 2, 14, 30, 0, 0, time.UTC)

// setup is a console over the quick start's policies, a memory ring and
// a token file, served on loopback.
func setup(t *testing.T, o console.Options) (*httptest.Server, *decisionlog.Ring) {
	t.Helper()
	cfg, err := config.LoadEmbedded()
	if err != nil {
		t.Fatal(err)
	}
	eng, err := policy.NewEngine(cfg.PolicySource(), cfg.Policy.Routes)
	if err != nil {
		t.Fatal(err)
	}
	tf := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(tf, []byte(token+" *\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ring := decisionlog.NewRing(1000, 1<<20)
	clock := func() time.Time { return now }
	o.Auth = &admin.Guard{TokenFile: tf}
	o.Logs = ring
	o.Admin = &admin.Service{Logs: ring, Store: ratelimit.NewMemorySize(100), Policies: eng, Now: clock}
	o.Policies = eng
	o.Now = clock
	c, err := console.New(o)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(c)
	t.Cleanup(srv.Close)
	return srv, ring
}

func get(t *testing.T, url string, auth bool) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	if auth {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestConsoleEscapes: what a caller put into a decision (principal, path,
// detail, request id) is shown as text, never as markup.
func TestConsoleEscapes(t *testing.T) {
	srv, ring := setup(t, console.Options{})
	evil := `<script>alert(1)</script><img src=x onerror=alert(2)>`
	id := "0123456789abcdef0123456789abcdef"
	ring.Add(&decisionlog.Record{Time: now, DecisionID: id, Decision: "deny", Status: 403, Reason: decisionlog.ReasonPolicyDeny,
		Principal: `User::"` + evil + `"`, Action: `Action::"GET /x"`, Resource: `Resource::"` + evil + `"`, Detail: evil,
		Errors:  []string{"policy9: " + evil},
		Request: decisionlog.RecordRequest{Method: "GET", Path: "/" + evil, RequestID: evil}, Node: evil})
	for _, p := range []string{"/console/api/explain?id=" + id, "/console/api/policies", "/console/api/review"} {
		code, body := get(t, srv.URL+p, true)
		if code != 200 {
			t.Fatalf("%s: %d %s", p, code, body)
		}
		if strings.Contains(body, "<script>") || strings.Contains(body, "<img") {
			t.Errorf("%s: markup from a record reached the page:\n%s", p, body)
		}
	}
	if _, body := get(t, srv.URL+"/console/api/explain?id="+id, true); !strings.Contains(body, "&lt;script&gt;") {
		t.Errorf("the record's text is missing, escaped:\n%s", body)
	}
}

// TestConsoleBadInput: malformed parameters get a precise 400 (a window is
// bounded), an over-long query 414, an unknown decision 404.
func TestConsoleBadInput(t *testing.T) {
	srv, _ := setup(t, console.Options{})
	for _, tc := range []struct {
		path string
		code int
		want string
	}{
		{"/console/api/policies?window=1s", 400, `window: "1s": want a duration from 1m to 744h0m0s`},
		{"/console/api/review?window=10000h", 400, "window:"},
		{"/console/api/live?status=abc", 400, `status: "abc"`},
		{"/console/api/live?reason=bogus", 400, `reason: "bogus"`},
		{"/console/api/live?principal=alice", 400, "principal:"},
		{"/console/api/review?group=staff", 400, "group:"},
		{"/console/api/explain?id=zz", 400, "decision_id:"},
		{"/console/api/explain?id=0123456789abcdef0123456789abcdef", 404, "no decision 0123456789abcdef0123456789abcdef"},
		{"/console/api/live?node=" + strings.Repeat("n", 5000), 414, "query too long"},
		{"/console/nope", 404, ""},
	} {
		code, body := get(t, srv.URL+tc.path, true)
		if code != tc.code || !strings.Contains(body, tc.want) {
			t.Errorf("%.80s: %d %q, want %d %q", tc.path, code, body, tc.code, tc.want)
		}
	}
}

// TestConsoleLiveStream: the live view sends the recent matching
// decisions, then each new one once, with counts per reason; live views
// are bounded in number.
func TestConsoleLiveStream(t *testing.T) {
	srv, ring := setup(t, console.Options{Poll: 5 * time.Millisecond, MaxStreams: 1})
	rec := func(id string, decision decisionlog.Decision, reason decisionlog.Reason) *decisionlog.Record {
		return &decisionlog.Record{Time: now, DecisionID: id, Decision: decision, Status: 200, Reason: reason, Principal: `User::"corp|alice"`}
	}
	ring.Add(rec("00000000000000000000000000000001", "allow", decisionlog.ReasonPolicyAllow))
	ring.Add(rec("00000000000000000000000000000002", "deny", decisionlog.ReasonPolicyDeny))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/console/api/live?decision=allow", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != 200 || ct != "text/event-stream" {
		t.Fatalf("%d %s", resp.StatusCode, ct)
	}
	if code, body := get(t, srv.URL+"/console/api/live", true); code != http.StatusServiceUnavailable {
		t.Errorf("a second live view over MaxStreams: %d %s", code, body)
	}
	sc := bufio.NewScanner(resp.Body)
	next := func(event string) string {
		t.Helper()
		name := ""
		for sc.Scan() {
			l := sc.Text()
			if v, ok := strings.CutPrefix(l, "event: "); ok {
				name = v
			}
			if v, ok := strings.CutPrefix(l, "data: "); ok && name == event {
				return v
			}
		}
		t.Fatalf("stream ended before a %s event: %v", event, sc.Err())
		return ""
	}
	if d := next("decision"); !strings.Contains(d, "00000000000000000000000000000001") {
		t.Errorf("first decision %s", d)
	}
	if c := next("counts"); !strings.Contains(c, `"policy_allow":1`) || strings.Contains(c, "policy_deny") {
		t.Errorf("counts %s", c)
	}
	ring.Add(rec("00000000000000000000000000000003", "deny", decisionlog.ReasonPolicyDeny))
	ring.Add(rec("00000000000000000000000000000004", "allow", decisionlog.ReasonPolicyAllow))
	if d := next("decision"); !strings.Contains(d, "00000000000000000000000000000004") {
		t.Errorf("new decision %s (the first must not come again, the deny is filtered)", d)
	}
}

// TestSplitShortRequest: a short HTTP/1.x request (shorter than the HTTP/2
// preface) is served at once, not held for more bytes.
func TestSplitShortRequest(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gl, hl := console.Split(l, nil)
	defer gl.Close()
	go func() {
		_ = http.Serve(hl, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "console") }))
	}()
	got := make(chan net.Conn, 1)
	go func() {
		if c, err := gl.Accept(); err == nil {
			got <- c
		}
	}()
	c, err := net.DialTimeout("tcp", l.Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, "GET / HTTP/1.0\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(c)
	if !strings.HasSuffix(string(b), "console") {
		t.Errorf("short request: %q", b)
	}
	g, err := net.DialTimeout("tcp", l.Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if _, err := io.WriteString(g, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	select {
	case c := <-got:
		buf := make([]byte, 24)
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" {
			t.Errorf("the gRPC side reads %q %v (the sniffed bytes must stay)", buf, err)
		}
		c.Close()
	case <-time.After(5 * time.Second):
		t.Error("the HTTP/2 connection never reached the gRPC side")
	}
}
