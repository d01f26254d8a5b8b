package interop_test

import (
	"bufio"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/wardenauthz/warden/identity/oidctest"
	"github.com/wardenauthz/warden/internal/testlog"
)

const providerDir = "testdata/provider"

// requireProvider returns node's path, or skips (fails, under
// WARDEN_REQUIRE_INTEROP=1, as in CI) when node or the provider is missing.
func requireProvider(t *testing.T) string {
	t.Helper()
	required := os.Getenv("WARDEN_REQUIRE_INTEROP") == "1"
	miss := func(msg string) {
		t.Helper()
		if required {
			t.Fatal("WARDEN_REQUIRE_INTEROP=1: " + msg)
		}
		t.Skip("interop tests skipped: " + msg)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		miss("node is not installed (Node.js >= 20.19 runs the oidc-provider these tests use; go tool task interop installs it in CI)")
	}
	if _, err := os.Stat(filepath.Join(providerDir, "node_modules", "oidc-provider", "package.json")); err != nil {
		miss("oidc-provider is not installed: run go tool task interop (npm ci in identity/interop/" + providerDir + ")")
	}
	return node
}

// signingKey is one of the provider's keys, private.
type signingKey struct {
	ID  string
	Alg string
	Key crypto.Signer
}

func newKeys(t *testing.T, rsaIndex int, prefix string) []signingKey {
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	_, ed, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return []signingKey{
		{prefix + "-rs", "RS256", oidctest.RSAKey(prefix+"-rs", rsaIndex).Key},
		{prefix + "-es", "ES256", ec},
		{prefix + "-ed", "EdDSA", ed},
	}
}

// provider is one oidc-provider, restartable on its port.
type provider struct {
	t      *testing.T
	node   string
	port   int
	Issuer string
	cmd    *exec.Cmd
	exited chan struct{}
}

func startProvider(t *testing.T, keys []signingKey) *provider {
	t.Helper()
	node := requireProvider(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	p := &provider{t: t, node: node, port: port, Issuer: fmt.Sprintf("http://127.0.0.1:%d", port)}
	t.Cleanup(p.Stop)
	p.Boot(keys)
	return p
}

// Boot starts the provider process publishing keys (the first of each
// algorithm signs).
func (p *provider) Boot(keys []signingKey) {
	t := p.t
	t.Helper()
	var set jose.JSONWebKeySet
	for _, k := range keys {
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: k.Key, KeyID: k.ID, Algorithm: k.Alg, Use: "sig"})
	}
	b, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "keys.json")
	if err := os.WriteFile(file, b, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(p.node, "provider.js")
	cmd.Dir = providerDir
	cmd.Env = append(os.Environ(), fmt.Sprintf("PORT=%d", p.port), "KEYS_FILE="+file, "NODE_ENV=test")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr testlog.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p.cmd, p.exited = cmd, make(chan struct{})
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "ready ") {
				ready <- sc.Text()
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	exited := p.exited
	go func() { _ = cmd.Wait(); close(exited) }()
	select {
	case <-ready:
	case <-exited:
		t.Fatalf("provider exited at start: %s", stderr.String())
	case <-time.After(30 * time.Second):
		p.Stop()
		t.Fatalf("provider not ready within 30 s: %s", stderr.String())
	}
}

// Stop ends the provider process (its port refuses connections after).
func (p *provider) Stop() {
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
	p.cmd = nil
}

// ClientCredentials gets an access token for resource as client svc.
func (p *provider) ClientCredentials(t *testing.T, resource string) string {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}, "resource": {resource}, "scope": {"orders:read"}}
	return p.token(t, form, "svc", "svc-secret-for-tests-only", http.DefaultClient)
}

// AuthorizationCode runs the authorization code flow (PKCE) as client app
// for user alice and returns the access token for resource.
func (p *provider) AuthorizationCode(t *testing.T, resource string) string {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	redirect := p.Issuer + "/cb"
	client := &http.Client{Jar: jar, Timeout: 10 * time.Second, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if req.URL.Path == "/cb" || len(via) > 10 {
			return http.ErrUseLastResponse
		}
		return nil
	}}
	verifier := base64.RawURLEncoding.EncodeToString([]byte(fmt.Sprintf("verifier-%d-%s", time.Now().UnixNano(), strings.Repeat("v", 40))))
	sum := sha256.Sum256([]byte(verifier))
	q := url.Values{
		"client_id": {"app"}, "response_type": {"code"}, "redirect_uri": {redirect},
		"scope": {"openid orders:read"}, "resource": {resource}, "state": {"st"},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"},
	}
	resp, err := client.Get(p.Issuer + "/auth?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	loc, err := resp.Location()
	if err != nil {
		t.Fatalf("authorization: %s %s", resp.Status, body)
	}
	code := loc.Query().Get("code")
	if code == "" {
		t.Fatalf("authorization: no code in %s", loc)
	}
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirect}, "code_verifier": {verifier}, "resource": {resource}}
	return p.token(t, form, "app", "app-secret-for-tests-only", client)
}

func (p *provider) token(t *testing.T, form url.Values, id, secret string, client *http.Client) string {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, p.Issuer+"/token", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(id, secret)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		AccessToken string `json:"access_token"`
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || out.AccessToken == "" {
		t.Fatalf("token (%s): %s %s %s %v", form.Get("grant_type"), resp.Status, out.Error, out.Description, err)
	}
	return out.AccessToken
}

// header is a token's protected header.
func header(t *testing.T, tok string) map[string]any {
	t.Helper()
	h, _, _ := strings.Cut(tok, ".")
	b, err := base64.RawURLEncoding.DecodeString(h)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// claims are a token's claims (unverified; the tests' own reading).
func claims(t *testing.T, tok string) map[string]any {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT (opaque access token?): %d parts", len(parts))
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}
