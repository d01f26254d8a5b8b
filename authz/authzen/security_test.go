package authzen_test

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wardenauthz/warden/authz/authzen"
	"github.com/wardenauthz/warden/authz/config"
	"github.com/wardenauthz/warden/identity/oidctest"
	"github.com/wardenauthz/warden/internal/abusetest"
	"github.com/wardenauthz/warden/internal/testpki"
)

const (
	rick  = "CiRmZDA2MTRkMy1jMzlhLTQ3ODEtYjdiZC04Yjk2ZjVhNTEwMGQSBWxvY2Fs"
	morty = "CiRmZDE2MTRkMy1jMzlhLTQ3ODEtYjdiZC04Yjk2ZjVhNTEwMGQSBWxvY2Fs"
	beth  = "CiRmZDM2MTRkMy1jMzlhLTQ3ODEtYjdiZC04Yjk2ZjVhNTEwMGQSBWxvY2Fs"
)

// mortyUpdatesRicksTodo is a request the example denies.
func mortyUpdates(owner string) map[string]any {
	return map[string]any{
		"subject":  map[string]any{"type": "user", "id": morty},
		"action":   map[string]any{"name": "can_update_todo"},
		"resource": map[string]any{"type": "todo", "id": "t1", "properties": map[string]any{"ownerID": owner}},
	}
}

// Unauthenticated, unknown, and ungranted callers are refused with the
// spec's 401 and 403, before the body is read; nothing is logged as a
// decision.
func TestAuthZENRefusesUnauthenticated(t *testing.T) {
	dir := writeTemp(t, map[string]string{"tokens": "search-only-token-123456 Search\nexplain-only-token-12345 Explain\n"})
	p := startPDP(t, exampleConfig, func(c *config.Config) { c.AuthZEN.TokenFile = dir + "/tokens" })
	body := mortyUpdates("morty@the-citadel.com")
	for _, c := range []struct {
		name, auth string
		want       int
	}{
		{"no credentials", "", http.StatusUnauthorized},
		{"unknown token", "Bearer demo-authzen-pep-token-change-mX", http.StatusUnauthorized},
		{"the example's token, not in this file", "Bearer " + pepToken, http.StatusUnauthorized},
		{"empty bearer", "Bearer ", http.StatusUnauthorized},
		{"basic scheme", "Basic " + pepToken, http.StatusUnauthorized},
		{"token without the scheme", "search-only-token-123456", http.StatusUnauthorized},
		{"Search grant only", "Bearer search-only-token-123456", http.StatusForbidden},
		{"Explain grant only", "Bearer explain-only-token-12345", http.StatusForbidden},
	} {
		for _, path := range []string{authzen.PathEvaluation, authzen.PathEvaluations} {
			b, _ := json.Marshal(body)
			req, _ := http.NewRequest(http.MethodPost, p.base+path, strings.NewReader(string(b)))
			req.Header.Set("Content-Type", "application/json")
			if c.auth != "" {
				req.Header.Set("Authorization", c.auth)
			}
			status, hdr, resp := doHeaders(t, req)
			if status != c.want {
				t.Errorf("%s %s: HTTP %d %s, want %d", c.name, path, status, resp, c.want)
			}
			if strings.Contains(string(resp), "decision") {
				t.Errorf("%s %s: answered %s", c.name, path, resp)
			}
			// A 401 challenges (RFC 9110 §15.5.2); a 403 does not.
			wantWWW := []string(nil)
			if c.want == http.StatusUnauthorized {
				wantWWW = []string{`Bearer realm="warden-authzen"`}
			}
			if got := hdr.Values("WWW-Authenticate"); !slices.Equal(got, wantWWW) {
				t.Errorf("%s %s: WWW-Authenticate %q, want %q", c.name, path, got, wantWWW)
			}
		}
	}
	// Two Authorization headers are refused, not resolved.
	req, _ := http.NewRequest(http.MethodPost, p.base+authzen.PathEvaluation, strings.NewReader(`{}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Add("Authorization", "Bearer nope")
	req.Header.Add("Authorization", "Bearer "+pepToken)
	if status, _ := do(t, req); status != http.StatusUnauthorized {
		t.Errorf("two Authorization headers: HTTP %d, want 401", status)
	}
	if recs := p.recordsOf(t); len(recs) != 0 {
		t.Errorf("refused calls logged %d decisions", len(recs))
	}
}

// The token file is read on every call: a token removed from it stops
// working at once, and an unreadable file refuses everyone (503), never
// opens.
func TestAuthZENTokenFileReread(t *testing.T) {
	dir := writeTemp(t, map[string]string{"tokens": "rotating-token-1234567 Evaluate\n"})
	p := startPDP(t, exampleConfig, func(c *config.Config) { c.AuthZEN.TokenFile = dir + "/tokens" })
	body := mortyUpdates("morty@the-citadel.com")
	if status, b := p.post(t, "rotating-token-1234567", authzen.PathEvaluation, body); status != http.StatusOK {
		t.Fatalf("HTTP %d %s", status, b)
	}
	// Rewritten at once with a file of the same size (the parsed file is
	// cached by its stamp: size, times, inode).
	if err := os.WriteFile(dir+"/tokens", []byte("rotating-token-7654321 Evaluate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if status, _ := p.post(t, "rotating-token-1234567", authzen.PathEvaluation, body); status != http.StatusUnauthorized {
		t.Errorf("a token replaced in place: HTTP %d, want 401", status)
	}
	if status, _ := p.post(t, "rotating-token-7654321", authzen.PathEvaluation, body); status != http.StatusOK {
		t.Errorf("its replacement: HTTP %d, want 200", status)
	}
	// Replaced by a rename, as a secret volume is.
	if err := os.WriteFile(dir+"/tokens.new", []byte("another-token-123456789 Evaluate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(dir+"/tokens.new", dir+"/tokens"); err != nil {
		t.Fatal(err)
	}
	if status, _ := p.post(t, "rotating-token-7654321", authzen.PathEvaluation, body); status != http.StatusUnauthorized {
		t.Errorf("a removed token: HTTP %d, want 401", status)
	}
	if err := os.Remove(dir + "/tokens"); err != nil {
		t.Fatal(err)
	}
	if status, _ := p.post(t, "another-token-123456789", authzen.PathEvaluation, body); status != http.StatusServiceUnavailable {
		t.Errorf("no token file: HTTP %d, want 503", status)
	}
}

// An access token of an issuer named in authzen.issuers may evaluate; one
// of another configured issuer, an expired one, or a forged one may not.
func TestAuthZENOIDCCaller(t *testing.T) {
	pepIs, otherIs := oidctest.New(t), oidctest.New(t)
	cfg := exampleWith(t,
		"identity:\n  anonymous: false\n",
		"identity:\n  anonymous: false\n  issuers:\n"+
			"    - {name: peps, issuer: "+pepIs.URL+", audiences: [warden-authzen], algorithms: [RS256]}\n"+
			"    - {name: users, issuer: "+otherIs.URL+", audiences: [warden-authzen], algorithms: [RS256]}\n",
		"  token_file: ./authzen-tokens", "  token_file: ./authzen-tokens\n  issuers: [peps]",
	)
	p := startPDPConfig(t, cfg)
	body := mortyUpdates("morty@the-citadel.com")
	good := pepIs.Sign(t, pepIs.Claims("todo-service", "warden-authzen"))
	status, b := p.post(t, good, authzen.PathEvaluation, body)
	if status != http.StatusOK || !strings.Contains(string(b), `"decision":true`) {
		t.Fatalf("a token of authzen.issuers: HTTP %d %s", status, b)
	}
	expired := pepIs.Claims("todo-service", "warden-authzen")
	expired["exp"] = time.Now().Add(-time.Hour).Unix()
	wrongAud := pepIs.Claims("todo-service", "orders")
	for name, tok := range map[string]string{
		"another issuer's token": otherIs.Sign(t, otherIs.Claims("alice", "warden-authzen")),
		"expired":                pepIs.Sign(t, expired),
		"wrong audience":         pepIs.Sign(t, wrongAud),
		"tampered":               good[:len(good)-4] + "AAAA",
	} {
		if status, b := p.post(t, tok, authzen.PathEvaluation, body); status != http.StatusUnauthorized {
			t.Errorf("%s: HTTP %d %s, want 401", name, status, b)
		}
	}
	// An OIDC caller is not granted Explain: no policy ids come back.
	deny := mortyUpdates("rick@the-citadel.com")
	if _, b := p.post(t, good, authzen.PathEvaluation, deny); string(b) != `{"decision":false}`+"\n" {
		t.Errorf("OIDC caller got %s, want a bare deny", b)
	}
	recs := p.recordsOf(t)
	if len(recs) != 2 || recs[0].Caller != "peps|todo-service" {
		t.Errorf("records %+v: want 2, by peps|todo-service", recs)
	}
}

// mTLS: a client certificate named in authzen.clients may call what it is
// granted; another certificate of the same CA may not; without a
// certificate or token, nothing.
func TestAuthZENMTLS(t *testing.T) {
	ca := testpki.NewCA(t, "authzen-ca")
	srv := ca.Server(t, "warden")
	pep := ca.Client(t, "todo-pep", "spiffe://cluster.local/ns/todo/sa/api")
	stranger := ca.Client(t, "stranger", "spiffe://cluster.local/ns/x/sa/y")
	p := startPDP(t, exampleConfig, func(c *config.Config) {
		c.AuthZEN.TokenFile = ""
		c.AuthZEN.TLS = config.TLS{CertFile: srv.CertFile, KeyFile: srv.KeyFile, ClientCAFile: ca.CertFile}
		c.AuthZEN.Clients = []config.AdminClient{{ID: "spiffe://cluster.local/ns/todo/sa/api", Allow: []string{"Evaluate"}}}
	})
	p.base = strings.Replace(p.base, "http://", "https://", 1)
	pool := x509.NewCertPool()
	caPEM, err := os.ReadFile(ca.CertFile)
	if err != nil {
		t.Fatal(err)
	}
	pool.AppendCertsFromPEM(caPEM)
	clientWith := func(pair *testpki.Pair) *http.Client {
		tc := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		if pair != nil {
			cert, err := tls.LoadX509KeyPair(pair.CertFile, pair.KeyFile)
			if err != nil {
				t.Fatal(err)
			}
			tc.Certificates = []tls.Certificate{cert}
		}
		return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: tc}}
	}
	b, _ := json.Marshal(mortyUpdates("morty@the-citadel.com"))
	call := func(c *http.Client, path string) (int, string) {
		req, _ := http.NewRequest(http.MethodPost, p.base+path, strings.NewReader(string(b)))
		req.Header.Set("Content-Type", "application/json")
		resp, err := c.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	if status, body := call(clientWith(&pep), authzen.PathEvaluation); status != http.StatusOK || !strings.Contains(body, `"decision":true`) {
		t.Errorf("granted client: HTTP %d %s", status, body)
	}
	if status, body := call(clientWith(&pep), authzen.PathSearchSubject); status != http.StatusForbidden {
		t.Errorf("granted client, ungranted Search: HTTP %d %s, want 403", status, body)
	}
	if status, body := call(clientWith(&stranger), authzen.PathEvaluation); status != http.StatusForbidden {
		t.Errorf("unlisted client: HTTP %d %s, want 403", status, body)
	}
	if status, body := call(clientWith(nil), authzen.PathEvaluation); status == http.StatusOK {
		t.Errorf("no certificate: HTTP %d %s, want refused", status, body)
	}
}

// Bodies are bounded in bytes, batches in items; both answer before any
// evaluation.
func TestAuthZENBounds(t *testing.T) {
	p := startPDP(t, exampleConfig, func(c *config.Config) { c.AuthZEN.MaxBodyBytes, c.AuthZEN.MaxEvaluations = 4096, 3 })
	big := mortyUpdates("morty@the-citadel.com")
	big["context"] = map[string]any{"pad": strings.Repeat("x", 5000)}
	if status, b := p.post(t, pepToken, authzen.PathEvaluation, big); status != http.StatusRequestEntityTooLarge {
		t.Errorf("5 KB body: HTTP %d %s, want 413", status, b)
	}
	// Chunked, without a Content-Length: still cut at the bound.
	j, _ := json.Marshal(big)
	req, _ := http.NewRequest(http.MethodPost, p.base+authzen.PathEvaluation, struct{ *strings.Reader }{strings.NewReader(string(j))})
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+pepToken)
	req.ContentLength = -1
	if status, b := do(t, req); status != http.StatusRequestEntityTooLarge {
		t.Errorf("chunked 5 KB body: HTTP %d %s, want 413", status, b)
	}
	evs := []any{}
	for range 4 {
		evs = append(evs, map[string]any{"resource": map[string]any{"type": "todo", "id": "x"}})
	}
	batch := map[string]any{"subject": map[string]any{"type": "user", "id": morty}, "action": map[string]any{"name": "can_read_todos"}, "evaluations": evs}
	status, b := p.post(t, pepToken, authzen.PathEvaluations, batch)
	if status != http.StatusBadRequest || !strings.Contains(string(b), "evaluations: 4 items, over the limit of 3") {
		t.Errorf("4 items: HTTP %d %s, want 400 naming the limit", status, b)
	}
	nested := strings.Repeat(`{"a":`, 40) + "1" + strings.Repeat("}", 40)
	status, b = p.post(t, pepToken, authzen.PathEvaluation, `{"subject":{"type":"user","id":"x","properties":`+nested+`}}`)
	if status != http.StatusBadRequest || !strings.Contains(string(b), "nested more than 32 deep") {
		t.Errorf("40 deep: HTTP %d %s, want 400", status, b)
	}
	if recs := p.recordsOf(t); len(recs) != 0 {
		t.Errorf("refused requests logged %d decisions", len(recs))
	}
}

// TestAuthZENConnectionCap: past authzen.max_connections, a new
// connection takes the place of the one idle the longest, or, with every
// connection busy with a request, waits to be accepted (its file
// descriptor kept for the other listeners; without the cap, keep-alive
// connections could take every one, as the session-11 outside attack did
// to the HTTP authorization listener) and is served once one closes.
func TestAuthZENConnectionCap(t *testing.T) {
	const maxConns = 3
	p := startPDP(t, exampleConfig, func(c *config.Config) { c.AuthZEN.MaxConnections = maxConns })
	const req = "GET " + authzen.PathMetadata + " HTTP/1.1\r\nHost: pdp\r\n\r\n"
	const busy = "POST " + authzen.PathEvaluation + " HTTP/1.1\r\nHost: pdp\r\nContent-Length: 1000\r\n\r\n{"
	abusetest.ConnectionCap(t, strings.TrimPrefix(p.base, "http://"), req, busy, maxConns, http.StatusOK, func() {})
}

// Credentials a PEP puts in an evaluation (a JWT in the context or in a
// property) never reach a decision record: AuthZEN records are bounded and
// redacted as Checks' are, the whole stated context and properties being
// the caller's.
func TestAuthZENRecordsRedactCredentials(t *testing.T) {
	is := oidctest.New(t)
	jwt := is.Sign(t, is.Claims("alice", "api"))
	p := startPDP(t, exampleConfig)
	req := mortyUpdates("morty@the-citadel.com")
	req["context"] = map[string]any{"assertion": jwt, "nested": map[string]any{"x": "Bearer " + jwt}}
	req["resource"] = map[string]any{"type": "todo", "id": "t1", "properties": map[string]any{"ownerID": "morty@the-citadel.com", "token": jwt}}
	req["subject"] = map[string]any{"type": "user", "id": morty, "properties": map[string]any{"session": jwt}}
	if status, b := p.post(t, pepToken, authzen.PathEvaluation, req); status != 200 || string(b) != `{"decision":true}`+"\n" {
		t.Fatalf("HTTP %d %s", status, b)
	}
	p.stop()
	out := p.records.String()
	sig := jwt[strings.LastIndexByte(jwt, '.')+1:]
	if strings.Contains(out, sig) || !strings.Contains(out, "REDACTED") || !strings.Contains(out, `"ownerID":"morty@the-citadel.com"`) {
		t.Errorf("record:\n%s", out)
	}
}
