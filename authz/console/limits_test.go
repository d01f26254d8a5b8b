package console_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cedar-policy/cedar-go/types"
	"golang.org/x/net/html"

	"github.com/wardenauthz/warden/authz/admin"
	"github.com/wardenauthz/warden/authz/config"
	"github.com/wardenauthz/warden/authz/console"
	"github.com/wardenauthz/warden/authz/decisionlog"
	"github.com/wardenauthz/warden/internal/testlog"
	"github.com/wardenauthz/warden/policy"
	"github.com/wardenauthz/warden/ratelimit"
)

const (
	tokenA = "console-caller-a-0123456789"
	tokenB = "console-caller-b-0123456789"
	tokenC = "console-caller-c-0123456789"
)

// countingSource counts what a console reads of its log: the passes over
// the window (Query calls, ScanRaw calls) and the records read.
type countingSource struct {
	decisionlog.LogSource
	queries, scans, records atomic.Int64
	// gate, when set, holds every read until it is closed.
	gate chan struct{}
}

func (s *countingSource) wait(ctx context.Context) error {
	if s.gate == nil {
		return nil
	}
	select {
	case <-s.gate:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *countingSource) Query(ctx context.Context, f decisionlog.Filter, limit int, cursor string) ([]*decisionlog.Record, string, error) {
	s.queries.Add(1)
	if err := s.wait(ctx); err != nil {
		return nil, "", err
	}
	recs, next, err := s.LogSource.Query(ctx, f, limit, cursor)
	s.records.Add(int64(len(recs)))
	return recs, next, err
}

func (s *countingSource) ScanRaw(ctx context.Context, since time.Time, fn func([]byte) error) error {
	s.scans.Add(1)
	if err := s.wait(ctx); err != nil {
		return err
	}
	return decisionlog.ScanRaw(ctx, s.LogSource, since, func(line []byte) error {
		s.records.Add(1)
		return fn(line)
	})
}

// setupSource is a console over src with three callers' tokens (all
// granted everything), logging to the returned buffer.
func setupSource(t *testing.T, o console.Options, src console.Source) (*httptest.Server, *testlog.Buffer) {
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
	if err := os.WriteFile(tf, []byte(tokenA+" *\n"+tokenB+" *\n"+tokenC+" *\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	clock := func() time.Time { return now }
	logs := &testlog.Buffer{}
	o.Logger = slog.New(slog.NewJSONHandler(logs, nil))
	o.Auth = &admin.Guard{TokenFile: tf}
	o.Logs = src
	o.Admin = &admin.Service{Logs: src.(decisionlog.LogSource), Store: ratelimit.NewMemorySize(100), Policies: eng, Now: clock}
	o.Policies = eng
	o.Now = clock
	c, err := console.New(o)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(c)
	t.Cleanup(srv.Close)
	return srv, logs
}

// logLines are the JSON log lines in logs with the given message.
func logLines(t *testing.T, logs *testlog.Buffer, msg string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		if m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

func do(t *testing.T, method, u, tok string, body io.Reader, hdr ...string) (int, string, http.Header) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, method, u, body)
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i] == "Host" {
			req.Host = hdr[i+1]
			continue
		}
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

// replayable is the n-th of many records, each of its own principal.
func replayable(i int) *decisionlog.Record {
	p := types.NewEntityUID("User", types.String(fmt.Sprintf("corp|user%05d", i)))
	a := types.NewEntityUID("Action", "GET /x")
	return &decisionlog.Record{Time: now.Add(-time.Duration(i) * time.Millisecond), DecisionID: fmt.Sprintf("%032x", i+1), Decision: "allow", Status: 200,
		Reason: decisionlog.ReasonPolicyAllow, Principal: p.String(), Action: a.String(), Policies: []string{"policy0"},
		Cedar: &policy.Logged{Decision: "allow", Principal: types.ImplicitlyMarshaledEntityUID(p), Action: types.ImplicitlyMarshaledEntityUID(a),
			Resource: types.ImplicitlyMarshaledEntityUID(types.NewEntityUID("Resource", "/x"))}}
}

// TestConsoleReviewBounded: the access review reads at most MaxScan
// records of a long window (counted at the source), says it truncated, and
// draws at most MaxRows principals; the old review read every record and
// rendered every principal.
func TestConsoleReviewBounded(t *testing.T) {
	const n, bound = 5000, 1000
	ring := decisionlog.NewRing(n, 64<<20)
	for i := n - 1; i >= 0; i-- {
		ring.Add(replayable(i))
	}
	src := &countingSource{LogSource: ring}
	srv, _ := setupSource(t, console.Options{MaxScan: bound}, src)
	code, body, _ := do(t, "GET", srv.URL+"/console/api/review?window=744h", tokenA, nil)
	if code != 200 {
		t.Fatalf("%d %.300s", code, body)
	}
	if got := src.records.Load(); got > bound+1 {
		t.Errorf("the review read %d records, over its bound %d", got, bound)
	}
	if !strings.Contains(body, `id="truncated"`) {
		t.Errorf("the page does not say it truncated:\n%.500s", body)
	}
	if rows := strings.Count(body, "<tr><td><code>User::"); rows > console.MaxRows {
		t.Errorf("%d principal rows drawn, over %d", rows, console.MaxRows)
	}
	if !strings.Contains(body, `id="rows-cut"`) {
		t.Errorf("the page does not say it cut rows")
	}
}

// TestConsolePoliciesOnePass: the policies view reads a file sink's window
// once (a file source's Query reads the whole window per page: paging
// through it is quadratic), and at most MaxScan records.
func TestConsolePoliciesOnePass(t *testing.T) {
	const n, bound = 3000, 2500
	path := writeLog(t, n)
	src := &countingSource{LogSource: &decisionlog.FileSource{Path: path}}
	srv, _ := setupSource(t, console.Options{MaxScan: bound}, src)
	code, body, _ := do(t, "GET", srv.URL+"/console/api/policies?window=744h", tokenA, nil)
	if code != 200 {
		t.Fatalf("%d %.300s", code, body)
	}
	if passes := src.queries.Load() + src.scans.Load(); passes != 1 {
		t.Errorf("%d passes over the window (%d queries, %d scans), want 1", passes, src.queries.Load(), src.scans.Load())
	}
	if got := src.records.Load(); got > bound+1 {
		t.Errorf("read %d records, over the bound %d", got, bound)
	}
	if !strings.Contains(body, fmt.Sprintf("%d of the last 744h0m0s", bound)) || !strings.Contains(body, `id="truncated"`) {
		t.Errorf("the page does not say it read %d records and truncated:\n%.800s", bound, body)
	}
}

// TestConsoleHeavyLimit: window views are computed two at a time and one
// per caller; the others are refused at once with Retry-After, not queued;
// a scan that outlives ScanTimeout ends with 503.
func TestConsoleHeavyLimit(t *testing.T) {
	src := &countingSource{LogSource: decisionlog.NewRing(10, 1<<20), gate: make(chan struct{})}
	srv, _ := setupSource(t, console.Options{ScanTimeout: 20 * time.Second}, src)
	var wg sync.WaitGroup
	results := make(chan int, 2)
	for _, tok := range []string{tokenA, tokenB} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest("GET", srv.URL+"/console/api/review", nil)
			req.Header.Set("Authorization", "Bearer "+tok)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				results <- 0
				return
			}
			resp.Body.Close()
			results <- resp.StatusCode
		}()
	}
	deadline := time.Now().Add(10 * time.Second)
	for src.scans.Load() < 2 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if src.scans.Load() < 2 {
		t.Fatal("the two reviews never reached the source")
	}
	for _, tc := range []struct{ tok, who string }{{tokenA, "the same caller"}, {tokenC, "a third caller"}} {
		code, body, h := do(t, "GET", srv.URL+"/console/api/policies", tc.tok, nil)
		if code != http.StatusServiceUnavailable || h.Get("Retry-After") == "" {
			t.Errorf("%s past the bound: %d %q (Retry-After %q)", tc.who, code, body, h.Get("Retry-After"))
		}
	}
	close(src.gate)
	wg.Wait()
	for range 2 {
		if c := <-results; c != 200 {
			t.Errorf("a review within the bound: %d", c)
		}
	}
	if code, body, _ := do(t, "GET", srv.URL+"/console/api/policies", tokenA, nil); code != 200 {
		t.Errorf("after the others ended: %d %.200s", code, body)
	}

	slow := &countingSource{LogSource: decisionlog.NewRing(10, 1<<20), gate: make(chan struct{})}
	srv2, _ := setupSource(t, console.Options{ScanTimeout: 50 * time.Millisecond}, slow)
	if code, body, _ := do(t, "GET", srv2.URL+"/console/api/review", tokenA, nil); code != http.StatusServiceUnavailable || !strings.Contains(body, "too long") {
		t.Errorf("a scan past ScanTimeout: %d %q", code, body)
	}
}

// openLive opens a live view for tok and returns its status (the stream
// stays open until the test ends).
func openLive(t *testing.T, base, method, tok string) int {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, method, base+"/console/api/live", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if method == "HEAD" || resp.StatusCode != 200 {
		resp.Body.Close()
	} else {
		t.Cleanup(func() { resp.Body.Close() })
	}
	return resp.StatusCode
}

// TestConsoleLivePerCaller: one caller holds at most two live views, so it
// cannot take the others' slots; a HEAD opens no stream and takes none.
func TestConsoleLivePerCaller(t *testing.T) {
	srv, _ := setupSource(t, console.Options{Poll: time.Hour, MaxStreams: 4}, decisionlog.NewRing(10, 1<<20))
	for i := range 2 {
		if c := openLive(t, srv.URL, "GET", tokenA); c != 200 {
			t.Fatalf("caller A's live view %d: %d", i, c)
		}
	}
	if c := openLive(t, srv.URL, "GET", tokenA); c != http.StatusServiceUnavailable {
		t.Errorf("caller A's third live view: %d, want 503", c)
	}
	for i := range 6 {
		if c := openLive(t, srv.URL, "HEAD", tokenB); c != 200 {
			t.Errorf("caller B's HEAD %d: %d", i, c)
		}
	}
	for i := range 2 {
		if c := openLive(t, srv.URL, "GET", tokenC); c != 200 {
			t.Errorf("caller C's live view %d beside A's (the HEADs hold none): %d", i, c)
		}
	}
}

// TestConsolePolicyLink: each policy's "decisions of" link opens the live
// view filtered by that policy and the window (two query parameters, not
// one escaped string).
func TestConsolePolicyLink(t *testing.T) {
	srv, _ := setupSource(t, console.Options{}, decisionlog.NewRing(10, 1<<20))
	code, body, _ := do(t, "GET", srv.URL+"/console/api/policies?window=2h", tokenA, nil)
	if code != 200 {
		t.Fatalf("%d %s", code, body)
	}
	doc, err := html.Parse(strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var links []string
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode && n.Data == "a" {
			for _, a := range n.Attr {
				if a.Key == "href" && strings.HasPrefix(a.Val, "/console/live") {
					links = append(links, a.Val)
				}
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	if len(links) == 0 {
		t.Fatalf("no links to the live view:\n%s", body)
	}
	for _, l := range links {
		u, err := url.Parse(l)
		if err != nil {
			t.Fatalf("%q: %v", l, err)
		}
		q := u.Query()
		if u.Path != "/console/live" || q.Get("policy") == "" || q.Get("since") != "2h0m0s" || len(q) != 2 {
			t.Errorf("link %q: path %q, query %v; want /console/live?policy=ID&since=2h0m0s", l, u.Path, q)
		}
	}
}

// TestConsoleHost: a request naming a host other than loopback or the
// configured names (a DNS-rebinding page's) is refused.
func TestConsoleHost(t *testing.T) {
	srv, _ := setupSource(t, console.Options{Hosts: []string{"warden.internal"}}, decisionlog.NewRing(10, 1<<20))
	for _, tc := range []struct {
		host string
		code int
	}{
		{"evil.example:80", http.StatusMisdirectedRequest},
		{"evil.example", http.StatusMisdirectedRequest},
		{"127.0.0.1.nip.io", http.StatusMisdirectedRequest},
		{"localhost:9001", 200},
		{"127.0.0.1:9001", 200},
		{"[::1]:9001", 200},
		{"warden.internal:9001", 200},
	} {
		if code, body, _ := do(t, "GET", srv.URL+"/console/live", tokenA, nil, "Host", tc.host); code != tc.code {
			t.Errorf("Host %s: %d %.100s, want %d", tc.host, code, body, tc.code)
		}
	}
}

// TestConsoleAudit: every call is logged after its handler with its real
// result (a failed revoke is not OK), a revoke or unrevoke names what it
// revoked or took back, a
// token pasted as a jti is refused and never logged, and unauthenticated
// calls are logged once a minute, not once each.
func TestConsoleAudit(t *testing.T) {
	srv, logs := setupSource(t, console.Options{}, decisionlog.NewRing(10, 1<<20))
	if code, _, _ := do(t, "GET", srv.URL+"/console/api/policies", tokenA, nil); code != 200 {
		t.Fatalf("policies: %d", code)
	}
	for range 3 {
		if code, _, _ := do(t, "GET", srv.URL+"/console/api/policies", "wrong-token-0123456789abc", nil); code != 401 {
			t.Fatalf("wrong token: %d", code)
		}
	}
	post := func(form url.Values) (int, string) {
		code, body, _ := do(t, "POST", srv.URL+"/console/api/revoke", tokenA, strings.NewReader(form.Encode()),
			"Content-Type", "application/x-www-form-urlencoded", "X-Warden-Console", "1", "Sec-Fetch-Site", "same-origin")
		return code, body
	}
	if code, body := post(url.Values{"kind": {"subject"}, "value": {"https://idp|alice"}}); code != 400 {
		t.Fatalf("subject revoke without issuers: %d %s", code, body)
	}
	if code, body := post(url.Values{"kind": {"jti"}, "value": {"jti-to-revoke-42"}}); code != 200 {
		t.Fatalf("jti revoke: %d %s", code, body)
	}
	jwt := "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlc2lnbmF0dXJl"
	if code, body := post(url.Values{"kind": {"jti"}, "value": {jwt}}); code != 400 || !strings.Contains(body, "not its jti") {
		t.Errorf("a token as the jti: %d %s", code, body)
	}
	unpost := func(form url.Values) (int, string) {
		code, body, _ := do(t, "POST", srv.URL+"/console/api/unrevoke", tokenA, strings.NewReader(form.Encode()),
			"Content-Type", "application/x-www-form-urlencoded", "X-Warden-Console", "1", "Sec-Fetch-Site", "same-origin")
		return code, body
	}
	if code, body := unpost(url.Values{"kind": {"jti"}, "id": {"jti-to-revoke-42"}}); code != 200 || !strings.Contains(body, "unrevoked jti jti-to-revoke-42") {
		t.Fatalf("unrevoke: %d %s", code, body)
	}
	if code, body := unpost(url.Values{"kind": {"user"}, "id": {"x"}}); code != 400 {
		t.Errorf("unrevoke of kind user: %d %s", code, body)
	}

	calls := logLines(t, logs, "console call")
	want := []map[string]any{
		{"view": "policies", "code": "OK"},
		{"view": "revoke", "code": "FailedPrecondition", "kind": "subject"},
		{"view": "revoke", "code": "OK", "kind": "jti", "target": "jti-to-revoke-42"},
		{"view": "revoke", "code": "InvalidArgument", "kind": "jti"},
		{"view": "unrevoke", "code": "OK", "kind": "jti", "target": "jti-to-revoke-42"},
		{"view": "unrevoke", "code": "InvalidArgument", "kind": "user"},
	}
	if len(calls) != len(want) {
		t.Fatalf("%d console call lines, want %d:\n%s", len(calls), len(want), logs)
	}
	for i, w := range want {
		for k, v := range w {
			if calls[i][k] != v {
				t.Errorf("line %d: %s = %v, want %v (%v)", i, k, calls[i][k], v, calls[i])
			}
		}
		if who, _ := calls[i]["caller"].(string); !strings.HasPrefix(who, "token:") {
			t.Errorf("line %d: caller %q", i, who)
		}
	}
	if _, ok := calls[3]["target"]; ok {
		t.Errorf("the refused token was logged as a target: %v", calls[3])
	}
	refused := logLines(t, logs, "console call refused")
	if len(refused) != 1 || refused[0]["code"] != "Unauthenticated" {
		t.Errorf("3 unauthenticated calls within a minute: %d lines, want 1: %v", len(refused), refused)
	}
	if s := logs.String(); strings.Contains(s, jwt) || strings.Contains(s, tokenA) || strings.Contains(s, "wrong-token") {
		t.Errorf("a token reached the log:\n%s", s)
	}
}

// TestConsoleExplainLimited: finding one decision reads the window (a
// file source's whole window), so explain is a window view too: bounded
// per caller and in time.
func TestConsoleExplainLimited(t *testing.T) {
	src := &countingSource{LogSource: decisionlog.NewRing(10, 1<<20), gate: make(chan struct{})}
	srv, _ := setupSource(t, console.Options{ScanTimeout: 20 * time.Second}, src)
	id := "0123456789abcdef0123456789abcdef"
	done := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest("GET", srv.URL+"/console/api/explain?id="+id, nil)
		req.Header.Set("Authorization", "Bearer "+tokenA)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			done <- 0
			return
		}
		resp.Body.Close()
		done <- resp.StatusCode
	}()
	deadline := time.Now().Add(10 * time.Second)
	for src.queries.Load()+src.scans.Load() < 1 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if code, body, h := do(t, "GET", srv.URL+"/console/api/explain?id="+id, tokenA, nil); code != http.StatusServiceUnavailable || h.Get("Retry-After") == "" {
		t.Errorf("a second explain by the same caller: %d %q", code, body)
	}
	close(src.gate)
	if c := <-done; c != http.StatusNotFound {
		t.Errorf("the first explain: %d", c)
	}
}

// followingSource is a countingSource that can follow; it counts the
// records Follow reports.
type followingSource struct {
	countingSource
	followed atomic.Int64
}

func (s *followingSource) Follow(ctx context.Context, f decisionlog.Filter, fn func(*decisionlog.Record)) error {
	return s.LogSource.(decisionlog.Follower).Follow(ctx, f, func(r *decisionlog.Record) {
		s.followed.Add(1)
		fn(r)
	})
}

// writeLog writes n replayable records, oldest first, to a new file.
func writeLog(t *testing.T, n int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "decisions.jsonl")
	var buf bytes.Buffer
	for i := n - 1; i >= 0; i-- {
		b, err := json.Marshal(replayable(i))
		if err != nil {
			t.Fatal(err)
		}
		buf.Write(append(b, '\n'))
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestConsoleLiveFollowsFile: a live view over a file log reads the window
// once (at most MaxScan records), then only what is appended: across many
// polls the source is never queried again, and the records read are
// bounded by the new ones, not by the log's size. The old view asked the
// source (a whole-file read) every poll.
func TestConsoleLiveFollowsFile(t *testing.T) {
	const n, bound = 3000, 2000
	path := writeLog(t, n)
	src := &followingSource{countingSource: countingSource{LogSource: &decisionlog.FileSource{Path: path}}}
	srv, _ := setupSource(t, console.Options{MaxScan: bound, Poll: 5 * time.Millisecond}, src)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/console/api/live", nil)
	req.Header.Set("Authorization", "Bearer "+tokenA)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("%d", resp.StatusCode)
	}
	type ev struct{ name, data string }
	events := make(chan ev, 4096)
	go func() {
		defer close(events)
		sc := bufio.NewScanner(resp.Body)
		name := ""
		for sc.Scan() {
			l := sc.Text()
			if v, ok := strings.CutPrefix(l, "event: "); ok {
				name = v
			}
			if v, ok := strings.CutPrefix(l, "data: "); ok {
				events <- ev{name, v}
			}
		}
	}()
	next := func(name string) string {
		t.Helper()
		for e := range events {
			if e.name == name {
				return e.data
			}
		}
		t.Fatalf("stream ended before a %s event", name)
		return ""
	}
	capped := ""
	for e := range events {
		if e.name == "dropped" {
			capped = e.data
		}
		if e.name == "counts" {
			break
		}
	}
	if !strings.Contains(capped, fmt.Sprint(bound)) {
		t.Errorf("the capped first pass is not reported: %q", capped)
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// Append one new record at a time until the view sends one (Follow
	// may start reading a moment after the first pass).
	appended, got := 0, ""
	for appended < 200 && got == "" {
		appended++
		r := replayable(0)
		r.DecisionID = fmt.Sprintf("ffff%028x", appended)
		b, _ := json.Marshal(r)
		if _, err := f.Write(append(b, '\n')); err != nil {
			t.Fatal(err)
		}
		deadline := time.After(500 * time.Millisecond)
	wait:
		for {
			select {
			case e, ok := <-events:
				if !ok {
					t.Fatal("stream ended")
				}
				if e.name == "decision" && strings.Contains(e.data, `"ffff`) {
					got = e.data
					break wait
				}
			case <-deadline:
				break wait
			}
		}
	}
	if got == "" {
		t.Fatal("no appended record reached the live view")
	}
	// Ten more polls (two counts events) with nothing new.
	next("counts")
	next("counts")
	if q := src.queries.Load(); q != 0 {
		t.Errorf("the live view queried the source %d times (each a whole-file read)", q)
	}
	if s := src.scans.Load(); s != 1 {
		t.Errorf("%d passes over the window, want 1", s)
	}
	if r := src.records.Load(); r > bound+1 {
		t.Errorf("the first pass read %d records, over the bound %d", r, bound)
	}
	if fr := src.followed.Load(); fr > int64(appended) {
		t.Errorf("following read %d records, %d were appended", fr, appended)
	}
}

// TestConsoleExplainBounded: explain finds a decision in the same bounded
// pass as the window views (one scan, at most MaxScan records) and says
// when it stopped at the bound; the old explain queried the whole window.
func TestConsoleExplainBounded(t *testing.T) {
	const n, bound = 3000, 1000
	src := &countingSource{LogSource: &decisionlog.FileSource{Path: writeLog(t, n)}}
	srv, _ := setupSource(t, console.Options{MaxScan: bound}, src)
	// Record i = n-1 is the oldest, read first.
	code, body, _ := do(t, "GET", srv.URL+"/console/api/explain?id="+fmt.Sprintf("%032x", n), tokenA, nil)
	if code != 200 || !strings.Contains(body, "policy0") {
		t.Errorf("a decision within the bound: %d %.300s", code, body)
	}
	code, body, _ = do(t, "GET", srv.URL+"/console/api/explain?id="+fmt.Sprintf("%032x", 1), tokenA, nil)
	if code != http.StatusNotFound || !strings.Contains(body, fmt.Sprintf("not found within the %d records read", bound)) {
		t.Errorf("a decision past the bound: %d %.500s", code, body)
	}
	if q, s := src.queries.Load(), src.scans.Load(); q != 0 || s != 2 {
		t.Errorf("%d queries, %d scans; want 0, 2", q, s)
	}
	if r := src.records.Load(); r > 2*(bound+1) {
		t.Errorf("read %d records, over twice the bound %d", r, bound)
	}
}
