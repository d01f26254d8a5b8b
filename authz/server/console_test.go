package server_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/wardenauthz/warden/authz/admin"
	"github.com/wardenauthz/warden/authz/config"
	"github.com/wardenauthz/warden/authz/console"
	"github.com/wardenauthz/warden/internal/testpki"
	adminv1 "github.com/wardenauthz/warden/proto/warden/admin/v1"
)

// consoleGet fetches path from the console with the given headers.
func consoleGet(t *testing.T, c *http.Client, base, method, path string, body io.Reader, hdr ...string) (int, string, http.Header) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, base+path, body)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, string(b), resp.Header
}

// TestConsoleHTTP: with admin.console, the admin listener serves the
// console beside the admin API (gRPC still answers on the same port); the
// pages hold no data, the data API refuses an unauthenticated or
// ungranted caller, every answer carries the strict CSP, and a revoke is
// refused cross-site or without the console's header.
func TestConsoleHTTP(t *testing.T) {
	tokens := adminTokens(t)
	e := start(t, func(c *config.Config) { c.Admin.TokenFile = tokens; c.Admin.Console = true })
	base := "http://" + e.admin
	hc := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	mallory := e.token(t, "mallory")
	if r := e.reason(t, mallory); r != "policy_deny" {
		t.Fatalf("mallory: %s", r)
	}

	// gRPC on the same port.
	reader := dialAdmin(t, e.admin, admin.ClientOptions{TokenFile: tokenFileOf(t, readerToken)})
	var qr *adminv1.QueryDecisionsResponse
	var err error
	eventually(t, "mallory's decision in the log", func() bool { // the decision log is written off the hot path
		qr, err = reader.QueryDecisions(context.Background(), &adminv1.QueryDecisionsRequest{})
		return err != nil || len(qr.Decisions) > 0
	})
	if err != nil || len(qr.Decisions) != 1 {
		t.Fatalf("admin API beside the console: %v %v", qr, err)
	}
	id := qr.Decisions[0].DecisionId

	for _, page := range console.Pages {
		code, body, h := consoleGet(t, hc, base, "GET", "/console/"+page.Path+"?id="+id, nil)
		if code != 200 || !strings.Contains(body, "<title>"+page.Title) {
			t.Errorf("%s: %d %.200s", page.Path, code, body)
		}
		if strings.Contains(body, "mallory") || strings.Contains(body, "policy_deny\"") {
			t.Errorf("%s: the page shell holds data", page.Path)
		}
		if h.Get("Content-Security-Policy") != console.CSP || h.Get("X-Frame-Options") != "DENY" || h.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: security headers %v", page.Path, h)
		}
		if strings.Contains(body, "<script>") || strings.Contains(body, "style=") || strings.Contains(body, " on") && strings.Contains(body, "onclick") {
			t.Errorf("%s: inline script or style", page.Path)
		}
	}
	if code, _, h := consoleGet(t, hc, base, "GET", "/", nil); code != http.StatusSeeOther || h.Get("Location") != "/console/live" {
		t.Errorf("/: %d %v", code, h)
	}

	apis := []string{"/console/api/whoami", "/console/api/live", "/console/api/explain?id=" + id, "/console/api/policies", "/console/api/review", "/console/api/revocations"}
	for _, p := range apis {
		for _, auth := range []string{"", "Bearer not-a-known-token-at-all", "Basic " + readerToken, readerToken} {
			code, body, h := consoleGet(t, hc, base, "GET", p, nil, "Authorization", auth)
			if code != http.StatusUnauthorized || strings.Contains(body, "mallory") || h.Get("Content-Security-Policy") == "" {
				t.Errorf("%s with %q: %d %.100s", p, auth, code, body)
			}
		}
	}
	// The token in a URL or a cookie is never read.
	for _, p := range []string{"/console/api/whoami?token=" + readerToken, "/console/api/whoami?access_token=" + readerToken} {
		if code, _, _ := consoleGet(t, hc, base, "GET", p, nil); code != http.StatusUnauthorized {
			t.Errorf("%s: %d", p, code)
		}
	}
	if code, _, _ := consoleGet(t, hc, base, "GET", "/console/api/whoami", nil, "Cookie", "token="+readerToken); code != http.StatusUnauthorized {
		t.Errorf("token cookie: %d", code)
	}

	// The reader may read, not revoke; the revoker may revoke, not read.
	rd := []string{"Authorization", "Bearer " + readerToken}
	rv := []string{"Authorization", "Bearer " + revokerToken}
	if code, body, _ := consoleGet(t, hc, base, "GET", "/console/api/explain?id="+id, nil, rd...); code != 200 || !strings.Contains(body, `User::&#34;corp|mallory&#34;`) {
		t.Errorf("explain: %d %.300s", code, body)
	}
	if code, _, _ := consoleGet(t, hc, base, "GET", "/console/api/explain?id="+id, nil, rv...); code != http.StatusForbidden {
		t.Errorf("revoker explaining: %d", code)
	}
	// postTo posts a form to path with the headers hdr.
	postTo := func(path, form string) func(hdr ...string) (int, string) {
		return func(hdr ...string) (int, string) {
			code, body, _ := consoleGet(t, hc, base, "POST", path, strings.NewReader(form),
				append([]string{"Content-Type", "application/x-www-form-urlencoded"}, hdr...)...)
			return code, body
		}
	}
	// refused are the edits' callers the console refuses: a reader, and a
	// revoker without the console header, cross-site, from another origin
	// or without a token.
	refused := []struct {
		name string
		hdr  []string
	}{
		{"reader", append([]string{"X-Warden-Console", "1", "Sec-Fetch-Site", "same-origin"}, rd...)},
		{"no console header", append([]string{"Sec-Fetch-Site", "same-origin"}, rv...)},
		{"cross-site", append([]string{"X-Warden-Console", "1", "Sec-Fetch-Site", "cross-site"}, rv...)},
		{"other origin", append([]string{"X-Warden-Console", "1", "Origin", "https://evil.example"}, rv...)},
		{"no token", []string{"X-Warden-Console", "1", "Sec-Fetch-Site", "same-origin"}},
	}
	post := postTo("/console/api/revoke", url.Values{"kind": {"jti"}, "value": {"jti-mallory"}}.Encode())
	for _, tc := range refused {
		if code, _ := post(tc.hdr...); code != http.StatusForbidden && code != http.StatusUnauthorized {
			t.Errorf("revoke by %s: %d", tc.name, code)
		}
		if r := e.reason(t, mallory); r != "policy_deny" {
			t.Fatalf("after the refused revoke by %s: %s", tc.name, r)
		}
	}
	if code, body := post(append([]string{"X-Warden-Console", "1", "Sec-Fetch-Site", "same-origin"}, rv...)...); code != 200 || !strings.Contains(body, "revoked jti jti-mallory") {
		t.Fatalf("revoke: %d %.300s", code, body)
	}
	if r := e.reason(t, mallory); r != "token_revoked" {
		t.Errorf("after the revoke: %s", r)
	}
	if code, body := post(append([]string{"X-Warden-Console", "1", "Sec-Fetch-Site", "same-origin"}, rv...)...); code != 200 || !strings.Contains(body, "revoked") {
		t.Errorf("revoke again: %d %.200s", code, body)
	}
	// The revoker sees an unrevoke form per row; the reader none.
	if _, body, _ := consoleGet(t, hc, base, "GET", "/console/api/revocations", nil, rd...); strings.Contains(body, "unrevoke-form") || !strings.Contains(body, "jti-mallory") {
		t.Errorf("reader's revocations: %.400s", body)
	}

	// Unrevoke: the same checks as revoke (Revoke grant, same origin,
	// X-Warden-Console); then mallory is decided by policy again.
	unpost := postTo("/console/api/unrevoke", url.Values{"kind": {"jti"}, "id": {"jti-mallory"}}.Encode())
	for _, tc := range refused {
		if code, _ := unpost(tc.hdr...); code != http.StatusForbidden && code != http.StatusUnauthorized {
			t.Errorf("unrevoke by %s: %d", tc.name, code)
		}
		if r := e.reason(t, mallory); r != "token_revoked" {
			t.Fatalf("after the refused unrevoke by %s: %s", tc.name, r)
		}
	}
	if code, body, _ := consoleGet(t, hc, base, "POST", "/console/api/unrevoke", strings.NewReader("kind=user&id=jti-mallory"),
		append([]string{"Content-Type", "application/x-www-form-urlencoded", "X-Warden-Console", "1", "Sec-Fetch-Site", "same-origin"}, rv...)...); code != http.StatusBadRequest {
		t.Errorf("unrevoke of kind user: %d %.200s", code, body)
	}
	code, body := unpost(append([]string{"X-Warden-Console", "1", "Sec-Fetch-Site", "same-origin"}, rv...)...)
	if code != 200 || !strings.Contains(body, "unrevoked jti jti-mallory") || strings.Contains(body, "<code>jti-mallory</code>") {
		t.Fatalf("unrevoke: %d %.400s", code, body)
	}
	if r := e.reason(t, mallory); r != "policy_deny" {
		t.Errorf("after the unrevoke: %s", r)
	}
}

// TestConsoleTLS: on a TLS admin listener the console is served over TLS
// (HTTP/1.1 by ALPN) with client certificates as the admin API reads
// them, and gRPC callers still reach the admin API on the same port.
func TestConsoleTLS(t *testing.T) {
	ca := testpki.NewCA(t, "admin")
	srv := ca.Server(t, "warden")
	auditor := ca.Client(t, "auditor", "")
	tokens := adminTokens(t)
	e := start(t, func(c *config.Config) {
		c.Admin.TokenFile = tokens
		c.Admin.Console = true
		c.Admin.TLS = config.TLS{CertFile: srv.CertFile, KeyFile: srv.KeyFile, ClientCAFile: ca.CertFile}
		c.Admin.Clients = []config.AdminClient{{ID: "auditor", Allow: []string{"PolicyStatus"}}}
	})
	au := dialAdmin(t, e.admin, admin.ClientOptions{CAFile: ca.CertFile, CertFile: auditor.CertFile, KeyFile: auditor.KeyFile})
	if _, err := au.PolicyStatus(context.Background(), &adminv1.PolicyStatusRequest{}); err != nil {
		t.Fatalf("gRPC with a client certificate beside the console: %v", err)
	}
	pool := x509.NewCertPool()
	b, err := os.ReadFile(ca.CertFile)
	if err != nil {
		t.Fatal(err)
	}
	pool.AppendCertsFromPEM(b)
	cert, err := tls.LoadX509KeyPair(auditor.CertFile, auditor.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}}, ForceAttemptHTTP2: true}}
	base := "https://" + strings.Replace(e.admin, "127.0.0.1", "localhost", 1)
	code, body, _ := consoleGet(t, hc, base, "GET", "/console/api/policies", nil)
	if code != 200 || !strings.Contains(body, "policies in service") {
		t.Errorf("policies by certificate: %d %.200s", code, body)
	}
	if code, _, _ := consoleGet(t, hc, base, "GET", "/console/api/revocations", nil); code != http.StatusForbidden {
		t.Errorf("revocations by a certificate without the grant: %d", code)
	}
	plain := &http.Client{Timeout: 10 * time.Second}
	if _, err := plain.Get("http://" + e.admin + "/console/live"); err == nil {
		t.Error("the console answered in clear text on a TLS listener")
	}
}
