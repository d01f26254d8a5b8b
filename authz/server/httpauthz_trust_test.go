package server_test

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/wardenauthz/warden/authz/config"
)

// post sends an authorization request to Warden's HTTP listener and returns
// the status, the reason (policy_allow or the problem's) and the record.
func (e *env) authzHTTP(t *testing.T, method, target string, headers ...string) (int, string, http.Header) {
	t.Helper()
	r, err := http.NewRequest(method, e.httpAuthz+target, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ": ")
		r.Header.Add(k, v)
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(r)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == 200 {
		return 200, "policy_allow", resp.Header
	}
	if p := resp.Header.Get("x-warden-problem"); p != "" {
		body = []byte(p)
	}
	var p struct {
		Type   string `json:"type"`
		Status int    `json:"status"`
	}
	if err := json.Unmarshal(body, &p); err != nil {
		return resp.StatusCode, "", resp.Header
	}
	return p.Status, strings.TrimPrefix(p.Type, "urn:warden:problem:"), resp.Header
}

// forwardSpellings are every header that names the request to judge.
var forwardSpellings = []struct{ method, uri string }{
	{"X-Forwarded-Method", "X-Forwarded-Uri"},
	{"X-Original-Method", "X-Original-URI"},
}

// TestHTTPForwardedFromUntrustedPeer: a client that reaches the listener
// itself cannot choose the request Warden judges, its source address, host
// or workload. Every combination of the forwarded method and URI headers
// is refused (400 request_invalid, before any credential is read); the
// others are ignored.
func TestHTTPForwardedFromUntrustedPeer(t *testing.T) {
	e := httpAuthz(t, []string{"192.0.2.0/24", "2001:db8::/32"}, func(c *config.Config) {
		c.Identity.Workloads.TrustXFCC = true
	})
	tok := "authorization: Bearer " + e.token(t, "alice", "staff")
	names := []string{"X-Forwarded-Method: GET", "X-Forwarded-Uri: /v1/orders/7", "X-Original-Method: GET", "X-Original-URI: /v1/orders/7"}
	for mask := 1; mask < 1<<len(names); mask++ {
		hs := []string{tok}
		for i, n := range names {
			if mask&(1<<i) != 0 {
				hs = append(hs, n)
			}
		}
		// The request line is itself an allowed request: the forwarded
		// headers must not turn it into another, nor be ignored.
		status, reason, _ := e.authzHTTP(t, "GET", "/ext_authz/v1/orders/7", hs...)
		if status != 400 || reason != "request_invalid" {
			t.Errorf("untrusted %v: %d %s, want 400 request_invalid", hs[1:], status, reason)
		}
	}
	// Envoy-style requests from it are judged, but its X-Forwarded-For,
	// -Host, -Proto and client certificate are not believed.
	status, _, h := e.authzHTTP(t, "GET", "/ext_authz/v1/orders/7", tok, "X-Forwarded-For: 203.0.113.9", "X-Forwarded-Host: evil.example", "X-Forwarded-Proto: https")
	if status != 200 {
		t.Fatalf("envoy style from an untrusted peer: %d", status)
	}
	rec := lastRecord(t, e, h.Get("x-warden-decision-id"))
	if rec.Request.SourceIP != "127.0.0.1" || rec.Request.Host == "evil.example" {
		t.Errorf("untrusted forwarded address or host believed: %+v", rec.Request)
	}
	xfcc := "X-Forwarded-Client-Cert: URI=spiffe://cluster.local/ns/frontend/sa/web"
	if status, reason, _ := e.authzHTTP(t, "GET", "/ext_authz/api/v1/orders", xfcc); status != 401 || reason != "anonymous_deny" {
		t.Errorf("XFCC from an untrusted peer: %d %s, want 401 anonymous_deny", status, reason)
	}
}

// TestHTTPForwardedFromTrustedProxy: from a trusted proxy the forwarded
// request is judged, and every ambiguous or malformed spelling is refused.
func TestHTTPForwardedFromTrustedProxy(t *testing.T) {
	e := httpAuthz(t, []string{"127.0.0.1/32"}, func(c *config.Config) {
		c.Identity.Workloads.TrustXFCC = true
	})
	tok := "authorization: Bearer " + e.token(t, "alice", "staff")
	ok := func(hs ...string) []string { return append([]string{tok, "X-Forwarded-Host: api.example.com"}, hs...) }
	for _, sp := range forwardSpellings {
		status, _, h := e.authzHTTP(t, "GET", "/auth", ok(sp.method+": GET", sp.uri+": /v1/orders/7?x=1", "X-Forwarded-For: 198.51.100.1, 203.0.113.9")...)
		if status != 200 {
			t.Fatalf("%s: %d", sp.uri, status)
		}
		rec := lastRecord(t, e, h.Get("x-warden-decision-id"))
		if rec.Request.Method != "GET" || rec.Request.Path != "/v1/orders/7" || rec.Request.Host != "api.example.com" || rec.Request.SourceIP != "203.0.113.9" {
			t.Errorf("%s: judged %+v", sp.uri, rec.Request)
		}
		// The forwarded method is judged, not the request line's.
		if status, reason, _ := e.authzHTTP(t, "GET", "/auth", ok(sp.method+": DELETE", sp.uri+": /v1/orders")...); status != 403 || reason != "policy_deny" {
			t.Errorf("%s DELETE: %d %s", sp.uri, status, reason)
		}
	}
	xfcc := "X-Forwarded-Client-Cert: URI=spiffe://cluster.local/ns/frontend/sa/web"
	if status, _, _ := e.authzHTTP(t, "GET", "/auth", "X-Forwarded-Method: GET", "X-Forwarded-Uri: /api/v1/orders", xfcc); status != 200 {
		t.Errorf("XFCC from a trusted proxy (trust_xfcc): %d", status)
	}
	for _, tc := range []struct {
		name    string
		headers []string
	}{
		{"spellings disagree on the URI", ok("X-Forwarded-Method: GET", "X-Forwarded-Uri: /v1/orders/7", "X-Original-URI: /admin/users/1")},
		{"spellings disagree on the method", ok("X-Forwarded-Method: GET", "X-Original-Method: DELETE", "X-Forwarded-Uri: /v1/orders/7")},
		{"repeated URI", ok("X-Forwarded-Method: GET", "X-Forwarded-Uri: /v1/orders/7", "X-Forwarded-Uri: /admin/users/1")},
		{"repeated method", ok("X-Original-Method: GET", "X-Original-Method: DELETE", "X-Original-URI: /v1/orders/7")},
		{"method without URI", ok("X-Forwarded-Method: GET")},
		{"URI without method", ok("X-Original-URI: /v1/orders/7")},
		{"empty method", ok("X-Forwarded-Method: ", "X-Forwarded-Uri: /v1/orders/7")},
		{"absolute URI", ok("X-Forwarded-Method: GET", "X-Forwarded-Uri: http://evil.example/v1/orders/7")},
		{"asterisk URI", ok("X-Forwarded-Method: OPTIONS", "X-Forwarded-Uri: *")},
		{"relative URI", ok("X-Forwarded-Method: GET", "X-Forwarded-Uri: v1/orders/7")},
		{"URI with a space", ok("X-Forwarded-Method: GET", "X-Forwarded-Uri: /v1/orders/7 HTTP/1.1")},
		{"URI with a fragment", ok("X-Forwarded-Method: GET", "X-Forwarded-Uri: /v1/orders/7#x")},
		{"method with a space", ok("X-Forwarded-Method: GET /admin", "X-Forwarded-Uri: /v1/orders/7")},
		{"bad X-Forwarded-For", ok("X-Forwarded-Method: GET", "X-Forwarded-Uri: /v1/orders/7", "X-Forwarded-For: 203.0.113.9, unknown")},
		{"bad X-Forwarded-Proto", ok("X-Forwarded-Method: GET", "X-Forwarded-Uri: /v1/orders/7", "X-Forwarded-Proto: gopher")},
		{"repeated X-Forwarded-Host", ok("X-Forwarded-Method: GET", "X-Forwarded-Uri: /v1/orders/7", "X-Forwarded-Host: other.example")},
		{"X-Forwarded-Host with a path", []string{tok, "X-Forwarded-Method: GET", "X-Forwarded-Uri: /v1/orders/7", "X-Forwarded-Host: a.example/x"}},
	} {
		if status, reason, _ := e.authzHTTP(t, "GET", "/auth", tc.headers...); status != 400 || reason != "request_invalid" {
			t.Errorf("%s: %d %s, want 400 request_invalid", tc.name, status, reason)
		}
	}
	// Envoy style: the path must carry server.http_authz.path_prefix.
	for _, p := range []string{"/v1/orders/7", "/ext_authzv1/orders/7", "/ext_authz", "/EXT_AUTHZ/v1/orders/7"} {
		if status, reason, _ := e.authzHTTP(t, "GET", p, tok); status != 400 || reason != "request_invalid" {
			t.Errorf("envoy style %s: %d %s, want 400 request_invalid", p, status, reason)
		}
	}
}

// TestHTTPLimits: server.limits bound the HTTP listener as they bound a
// CheckRequest (431, 413, before credentials are read), and a request far
// past them is cut off by the HTTP server itself.
func TestHTTPLimits(t *testing.T) {
	e := httpAuthz(t, []string{"127.0.0.1/32"}, func(c *config.Config) {
		c.Server.Limits.MaxHeaders = 20
		c.Server.Limits.MaxBodyBytes = 1024
	})
	var many []string
	for i := range 30 {
		many = append(many, "x-h"+string(rune('a'+i%26))+string(rune('a'+i/26))+": v")
	}
	if status, reason, _ := e.authzHTTP(t, "GET", "/ext_authz/v1/orders/7", many...); status != 431 || reason != "request_invalid" {
		t.Errorf("30 headers: %d %s, want 431", status, reason)
	}
	r, _ := http.NewRequest("POST", e.httpAuthz+"/ext_authz/v1/orders", strings.NewReader(strings.Repeat("x", 4096)))
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 413 {
		t.Errorf("4 KiB body: %d, want 413", resp.StatusCode)
	}
	r, _ = http.NewRequest("GET", e.httpAuthz+"/ext_authz/v1/orders/7", nil)
	r.Header.Set("x-big", strings.Repeat("a", 1<<20))
	resp, err = http.DefaultClient.Do(r)
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode != 431 {
			t.Errorf("1 MiB header: %d, want 431", resp.StatusCode)
		}
	}
}

// TestHTTPMetricsNameTheTransport: /metrics counts HTTP Checks apart.
func TestHTTPMetricsNameTheTransport(t *testing.T) {
	e := httpAuthz(t, []string{"127.0.0.1/32"})
	e.authzHTTP(t, "GET", "/ext_authz/v1/orders/7")
	resp, err := http.Get(e.http + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`warden_decisions_total{decision="deny",reason="anonymous_deny",transport="http"} 1`, `warden_check_duration_seconds_count{decision="deny",transport="http"} 1`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// TestHTTPOptionsAsteriskJudged: "OPTIONS *" (asterisk-form) reaches the
// pipeline over HTTP/1.1 and h2c, as every request does; net/http would
// otherwise answer it 200 itself, with no decision and no record.
func TestHTTPOptionsAsteriskJudged(t *testing.T) {
	e := httpAuthz(t, nil)
	addr := strings.TrimPrefix(e.httpAuthz, "http://")
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("OPTIONS * HTTP/1.1\r\nHost: api.example.com\r\nAuthorization: Bearer garbage\r\nConnection: close\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(line, " 200 ") || strings.HasPrefix(line, "HTTP/1.1 2") {
		t.Errorf("OPTIONS * over HTTP/1.1: %q, want a refusal", strings.TrimSpace(line))
	}
	// h2c with prior knowledge.
	tr := &http.Transport{Protocols: new(http.Protocols)}
	tr.Protocols.SetUnencryptedHTTP2(true)
	req, _ := http.NewRequest(http.MethodOptions, e.httpAuthz, nil)
	req.URL.Opaque = "*"
	req.Header.Set("Authorization", "Bearer garbage")
	resp, err := (&http.Client{Transport: tr, Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		t.Errorf("OPTIONS * over h2c: %d, want a refusal", resp.StatusCode)
	}
}
