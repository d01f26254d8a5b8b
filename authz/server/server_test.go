package server_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/wardenauthz/warden/authz"
	"github.com/wardenauthz/warden/authz/config"
	"github.com/wardenauthz/warden/authz/decisionlog"
	"github.com/wardenauthz/warden/authz/server"
	"github.com/wardenauthz/warden/identity/oidctest"
	"github.com/wardenauthz/warden/internal/testlog"
	"github.com/wardenauthz/warden/internal/testwait"
	"github.com/wardenauthz/warden/policy"
	"github.com/wardenauthz/warden/ratelimit"
)

var update = flag.Bool("update", false, "rewrite golden files")

const aud = "api://orders"

// fixedNow is the clock of the end-to-end tests: the day of the samples.
func fixedNow() time.Time { return time.Date(2026, 6, 2, 14, 30, 0, 0, time.UTC) }

// env is a running Warden on loopback with a real OIDC issuer.
type env struct {
	is     *oidctest.Issuer
	svc    *server.Service
	client authv3.AuthorizationClient
	health healthpb.HealthClient
	http   string
	cancel context.CancelFunc
	done   chan error
	admin  string // admin API address, when enabled
	addr   string // the ext_authz gRPC address
	// httpAuthz is the HTTP authorization listener's base URL, when
	// server.http_authz_addr is set.
	httpAuthz string
}

func loadTestConfig(t testing.TB, is *oidctest.Issuer) *config.Config {
	t.Helper()
	b, err := os.ReadFile("testdata/warden.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse("testdata/warden.yaml", []byte(strings.ReplaceAll(string(b), "ISSUER_URL", is.URL)), "testdata")
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func start(t testing.TB, mutate ...func(*config.Config)) *env {
	t.Helper()
	return startWith(t, oidctest.New(t), mutate...)
}

// startWith starts a Warden trusting is (replicas share one issuer).
func startWith(t testing.TB, is *oidctest.Issuer, mutate ...func(*config.Config)) *env {
	t.Helper()
	return startOpts(t, is, server.Options{Stdout: io.Discard}, mutate...)
}

// startOpts starts a Warden with options o (its node and clock are the
// tests').
func startOpts(t testing.TB, is *oidctest.Issuer, o server.Options, mutate ...func(*config.Config)) *env {
	t.Helper()
	cfg := loadTestConfig(t, is)
	for _, m := range mutate {
		m(cfg)
	}
	// The suite-wide secret scan sees every log line and record.
	o.Logger, o.Stdout = testlog.Logger(t, o.Logger), testlog.Writer(t, "records", o.Stdout)
	if testlog.Enabled() && !slices.ContainsFunc(cfg.DecisionLog.Sinks, func(s config.Sink) bool { return s.Kind == "stdout" }) {
		cfg.DecisionLog.Sinks = append(cfg.DecisionLog.Sinks, config.Sink{Kind: "stdout"})
	}
	o.Node = "test"
	if o.Now == nil {
		o.Now = fixedNow
	}
	svc, err := server.New(cfg, o)
	if err != nil {
		t.Fatal(err)
	}
	gl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var al net.Listener
	if svc.AdminEnabled() {
		if al, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	e := &env{is: is, svc: svc, http: "http://" + hl.Addr().String(), cancel: cancel, done: make(chan error, 1), addr: gl.Addr().String()}
	if al != nil {
		e.admin = al.Addr().String()
	}
	if cfg.Server.HTTPAuthzAddr != "" {
		if svc.HTTPAuthzListener, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		e.httpAuthz = "http://" + svc.HTTPAuthzListener.Addr().String()
	}
	svc.Start(ctx)
	go func() { e.done <- svc.Serve(ctx, gl, hl, al) }()
	conn, err := grpc.NewClient(gl.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Close()
		cancel()
		<-e.done
	})
	e.client = authv3.NewAuthorizationClient(conn)
	e.health = healthpb.NewHealthClient(conn)
	testwait.NoError(t, 5*time.Second, func() error {
		if ok, why := svc.Ready(); !ok {
			return fmt.Errorf("never ready: %s", why)
		}
		return nil
	})
	return e
}

// token is a corp token for sub with fixed claims (deterministic contexts).
func (e *env) token(t testing.TB, sub string, groups ...string) string {
	c := map[string]any{
		"iss": e.is.URL, "sub": sub, "aud": aud, "iat": 1780000000, "exp": 4102444800,
		"jti": "jti-" + sub, "groups": groups, "scope": "orders:read",
	}
	return e.is.Sign(t, c)
}

// reason sends the sample GET with token and returns the decision's reason.
func (e *env) reason(t testing.TB, token string) string {
	t.Helper()
	resp, err := e.client.Check(context.Background(), sample(t, "01-get-bearer-jwt.json", token))
	if err != nil {
		t.Fatal(err)
	}
	return resp.GetDynamicMetadata().GetFields()["reason"].GetStringValue()
}

func sample(t testing.TB, name, token string) *authv3.CheckRequest {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata/checkrequests", name))
	if err != nil {
		t.Fatal(err)
	}
	var req authv3.CheckRequest
	if err := protojson.Unmarshal([]byte(strings.ReplaceAll(string(b), "PLACEHOLDER.JWT.TOKEN", token)), &req); err != nil {
		t.Fatal(err)
	}
	// header_map raw values are base64 in the file: re-encode the token there.
	for _, h := range req.GetAttributes().GetRequest().GetHttp().GetHeaderMap().GetHeaders() {
		if string(h.RawValue) == "Bearer PLACEHOLDER.JWT.TOKEN" {
			h.RawValue = []byte("Bearer " + token)
		}
	}
	return &req
}

// TestEnvoySamples sends every request shape Envoy produces (ENVOY.md) over
// gRPC and checks the answer; the Cedar request built for each (the whole
// context, from a Warden that builds all of it) is pinned in testdata/golden
// (go test -update rewrites them), and that Warden must decide alike.
func TestEnvoySamples(t *testing.T) {
	is := oidctest.New(t)
	e := startWith(t, is)
	full := startOpts(t, is, server.Options{Stdout: io.Discard, FullContext: true})
	staff := e.token(t, "alice", "staff")
	for _, tc := range envoySamples {
		t.Run(tc.file, func(t *testing.T) {
			req := sample(t, tc.file, staff)
			resp, err := e.client.Check(context.Background(), req)
			if err != nil {
				t.Fatalf("Check returned a gRPC error (Envoy would treat it as a failure): %v", err)
			}
			if got := codes.Code(resp.GetStatus().GetCode()); got != tc.code {
				t.Errorf("code: got %v, want %v", got, tc.code)
			}
			status := 200
			if d := resp.GetDeniedResponse(); d != nil {
				status = int(d.GetStatus().GetCode())
			}
			if status != tc.status {
				t.Errorf("HTTP status: got %d, want %d", status, tc.status)
			}
			if got := resp.GetDynamicMetadata().GetFields()["reason"].GetStringValue(); got != string(tc.reason) {
				t.Errorf("reason: got %q, want %q", got, tc.reason)
			}
			golden(t, full, tc.file, req)
			pruned := e.svc.Authorizer.Evaluate(context.Background(), req).Record
			whole := full.svc.Authorizer.Evaluate(context.Background(), req).Record
			if pruned.Decision != whole.Decision || pruned.Reason != whole.Reason || !slices.Equal(pruned.Policies, whole.Policies) {
				t.Errorf("context left out changed the decision: %s %s %v, with the whole context %s %s %v",
					pruned.Decision, pruned.Reason, pruned.Policies, whole.Decision, whole.Reason, whole.Policies)
			}
		})
	}
}

// envoySamples is the end-to-end table of Envoy's request shapes: each
// sample's answer over gRPC (TestEnvoySamples), which the HTTP transport
// must give too (TestHTTPAgreesWithGRPC).
var envoySamples = []struct {
	file   string
	code   codes.Code
	status int
	reason decisionlog.Reason
}{
	{"01-get-bearer-jwt.json", codes.OK, 200, decisionlog.ReasonPolicyAllow},
	{"02-post-json-body.json", codes.PermissionDenied, 403, decisionlog.ReasonPolicyDeny},
	{"03-istio-mtls-no-token.json", codes.OK, 200, decisionlog.ReasonPolicyAllow},
	{"04-path-query-percent-encoding.json", codes.OK, 200, decisionlog.ReasonPolicyAllow},
	{"05-repeated-headers.json", codes.OK, 200, decisionlog.ReasonPolicyAllow},
	{"06-context-extensions.json", codes.Unauthenticated, 401, decisionlog.ReasonAnonymousDeny},
	{"07-jwt-authn-metadata.json", codes.Unauthenticated, 401, decisionlog.ReasonAnonymousDeny},
	{"08-grpc-http2.json", codes.OK, 200, decisionlog.ReasonPolicyAllow},
	{"09-xff-chain.json", codes.OK, 200, decisionlog.ReasonPolicyAllow},
	{"10-missing-authority.json", codes.PermissionDenied, 403, decisionlog.ReasonPolicyDeny},
	{"11-very-large-header.json", codes.Unauthenticated, 401, decisionlog.ReasonAnonymousDeny},
	{"12-websocket-upgrade.json", codes.Unauthenticated, 401, decisionlog.ReasonAnonymousDeny},
	{"13-tcp-network-filter.json", codes.PermissionDenied, 403, decisionlog.ReasonPolicyDeny},
	{"14-raw-header-map.json", codes.OK, 200, decisionlog.ReasonPolicyAllow},
}

// golden pins the Cedar principal, action, resource and context.
func golden(t *testing.T, e *env, file string, req *authv3.CheckRequest) {
	t.Helper()
	out := e.svc.Authorizer.Evaluate(context.Background(), req)
	got := map[string]any{"decision": out.Record.Decision, "reason": out.Record.Reason, "policies": out.Record.Policies}
	if r := out.Result; r != nil {
		ctxJSON, err := r.Context.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		got["principal"], got["action"], got["resource"] = r.Principal.String(), r.Action.String(), r.Resource.String()
		got["context"] = json.RawMessage(ctxJSON)
	}
	b, err := json.MarshalIndent(got, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	b = []byte(strings.ReplaceAll(string(b), e.is.URL, "ISSUER_URL"))
	path := filepath.Join("testdata/golden", strings.TrimSuffix(file, ".json")+".golden.json")
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if strings.TrimSpace(string(want)) != string(b) {
		t.Errorf("Cedar mapping differs from %s (go test -update to accept):\ngot:\n%s", path, b)
	}
}

// decisionIDs are what Warden's decision ids look like.
var decisionIDs = regexp.MustCompile(`^[0-9a-f]{32}$`)

// normalized is resp with its decision id (random per Check) replaced by
// DECISION_ID wherever it appears, after checking that it is one id, the
// same in the metadata and the decision id header.
func normalized(t *testing.T, resp *authv3.CheckResponse) *authv3.CheckResponse {
	t.Helper()
	id := resp.GetDynamicMetadata().GetFields()["decision_id"].GetStringValue()
	if !decisionIDs.MatchString(id) {
		t.Fatalf("decision id %q in the metadata", id)
	}
	b, err := protojson.Marshal(resp)
	if err != nil {
		t.Fatal(err)
	}
	var out authv3.CheckResponse
	if err := protojson.Unmarshal([]byte(strings.ReplaceAll(string(b), id, "DECISION_ID")), &out); err != nil {
		t.Fatal(err)
	}
	return &out
}

// wantResponse is the CheckResponse written in protojson, with the
// issuer's URL for ISSUER_URL.
func wantResponse(t *testing.T, e *env, js string) *authv3.CheckResponse {
	t.Helper()
	var want authv3.CheckResponse
	if err := protojson.Unmarshal([]byte(strings.ReplaceAll(js, "ISSUER_URL", e.is.URL)), &want); err != nil {
		t.Fatal(err)
	}
	return &want
}

// deniedHeaders are the headers of every denied response, in protojson.
const deniedHeaders = `
      {"header": {"key": "content-type", "value": "application/problem+json"}, "append": false},
      {"header": {"key": "cache-control", "value": "no-store"}, "append": false},
      {"header": {"key": "x-warden-decision-id", "value": "DECISION_ID"}, "append": false}`

// TestAllowResponseShape: the whole OK response, compared as a proto:
// identity headers (spoofed ones and the token stripped, append set to
// false explicitly, as Envoy ≤ 1.36 reads it), rate-limit response
// headers, and the metadata Envoy logs.
func TestAllowResponseShape(t *testing.T) {
	e := start(t)
	req := sample(t, "01-get-bearer-jwt.json", e.token(t, "alice", "staff"))
	h := req.Attributes.Request.Http.Headers
	h["x-warden-principal"] = `User::"corp|root"`
	h["x-warden-admin"] = "true"
	resp, err := e.client.Check(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	want := wantResponse(t, e, `{
  "status": {},
  "okResponse": {
    "headers": [
      {"header": {"key": "x-warden-principal", "value": "User::\"corp|alice\""}, "append": false},
      {"header": {"key": "x-warden-subject", "value": "alice"}, "append": false},
      {"header": {"key": "x-warden-issuer", "value": "ISSUER_URL"}, "append": false},
      {"header": {"key": "x-warden-groups", "value": "staff"}, "append": false},
      {"header": {"key": "x-warden-scopes", "value": "orders:read"}, "append": false},
      {"header": {"key": "x-warden-decision-id", "value": "DECISION_ID"}, "append": false}
    ],
    "headersToRemove": ["x-warden-admin", "authorization"],
    "responseHeadersToAdd": [
      {"header": {"key": "ratelimit-policy", "value": "\"per-user\";q=1000;w=60"}, "append": false},
      {"header": {"key": "ratelimit", "value": "\"per-user\";r=999;t=1"}, "append": false}
    ]
  },
  "dynamicMetadata": {
    "action": "Action::\"GET /v1/orders/{id}\"",
    "decision_id": "DECISION_ID",
    "policies": ["staff-read"],
    "principal": "User::\"corp|alice\"",
    "reason": "policy_allow",
    "resource": "Order::\"42\""
  }
}`)
	if diff := cmp.Diff(want, normalized(t, resp), protocmp.Transform()); diff != "" {
		t.Errorf("allow response (-want +got):\n%s", diff)
	}
}

// TestDenyResponseShape: whole denied responses, compared as protos: the
// gRPC status, the HTTP status, problem+json with the decision id, no
// caching, and a challenge exactly when one applies.
func TestDenyResponseShape(t *testing.T) {
	e := start(t)
	for _, tc := range []struct {
		name, token, want string
	}{
		{"policy deny", e.token(t, "bob", "nobody"), `{
  "status": {"code": 7, "message": "policy_deny"},
  "deniedResponse": {
    "status": {"code": "Forbidden"},
    "headers": [` + deniedHeaders + `
    ],
    "body": "{\"type\":\"urn:warden:problem:policy_deny\",\"title\":\"Forbidden\",\"status\":403,\"detail\":\"access denied by policy\",\"decision_id\":\"DECISION_ID\"}"
  },
  "dynamicMetadata": {"action": "Action::\"GET /v1/orders/{id}\"", "decision_id": "DECISION_ID", "policies": [],
    "principal": "User::\"corp|bob\"", "reason": "policy_deny", "resource": "Order::\"42\""}
}`},
		{"invalid token", "not.a.token", `{
  "status": {"code": 16, "message": "token_invalid"},
  "deniedResponse": {
    "status": {"code": "Unauthorized"},
    "headers": [` + deniedHeaders + `,
      {"header": {"key": "www-authenticate", "value": "Bearer error=\"invalid_token\", error_description=\"malformed token\""}, "append": false}
    ],
    "body": "{\"type\":\"urn:warden:problem:token_invalid\",\"title\":\"Invalid token\",\"status\":401,\"detail\":\"malformed token\",\"decision_id\":\"DECISION_ID\"}"
  },
  "dynamicMetadata": {"action": "", "decision_id": "DECISION_ID", "policies": [],
    "principal": "", "reason": "token_invalid", "resource": ""}
}`},
		{"anonymous", "", `{
  "status": {"code": 16, "message": "anonymous_deny"},
  "deniedResponse": {
    "status": {"code": "Unauthorized"},
    "headers": [` + deniedHeaders + `,
      {"header": {"key": "www-authenticate", "value": "Bearer realm=\"warden\""}, "append": false}
    ],
    "body": "{\"type\":\"urn:warden:problem:anonymous_deny\",\"title\":\"Authentication required\",\"status\":401,\"detail\":\"credentials required\",\"decision_id\":\"DECISION_ID\"}"
  },
  "dynamicMetadata": {"action": "Action::\"GET /v1/orders/{id}\"", "decision_id": "DECISION_ID", "policies": [],
    "principal": "Anonymous::\"anonymous\"", "reason": "anonymous_deny", "resource": "Order::\"42\""}
}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := sample(t, "01-get-bearer-jwt.json", tc.token)
			if tc.token == "" {
				delete(req.Attributes.Request.Http.Headers, "authorization")
			}
			resp, err := e.client.Check(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(wantResponse(t, e, tc.want), normalized(t, resp), protocmp.Transform()); diff != "" {
				t.Errorf("denied response (-want +got):\n%s", diff)
			}
		})
	}
}

func TestStepUp(t *testing.T) {
	e := start(t)
	req := sample(t, "06-context-extensions.json", "")
	req.Attributes.Request.Http.Headers["authorization"] = "Bearer " + e.token(t, "alice", "admins")
	resp, err := e.client.Check(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	var www string
	for _, hv := range resp.GetDeniedResponse().GetHeaders() {
		if hv.GetHeader().GetKey() == "www-authenticate" {
			www = hv.GetHeader().GetValue()
		}
	}
	want := `Bearer error="insufficient_user_authentication", error_description="stronger authentication required", acr_values="mfa", max_age=300`
	if www != want {
		t.Errorf("WWW-Authenticate:\n got %s\nwant %s", www, want)
	}
	// A staff member who lacks the permission is not told to step up.
	req.Attributes.Request.Http.Headers["authorization"] = "Bearer " + e.token(t, "bob", "staff")
	resp, _ = e.client.Check(context.Background(), req)
	if got := resp.GetDeniedResponse().GetStatus().GetCode(); got != 403 {
		t.Errorf("without the permission: got %d, want 403", got)
	}
}

func TestRevocation(t *testing.T) {
	e := start(t)
	tok := e.token(t, "alice", "staff")
	check := func() string {
		resp, err := e.client.Check(context.Background(), sample(t, "01-get-bearer-jwt.json", tok))
		if err != nil {
			t.Fatal(err)
		}
		return resp.GetDynamicMetadata().GetFields()["reason"].GetStringValue()
	}
	if got := check(); got != "policy_allow" {
		t.Fatalf("before: %s", got)
	}
	if err := e.svc.Store.Revoke(context.Background(), ratelimit.Revocation{Kind: "jti", ID: "jti-alice", Until: time.Unix(4102444800, 0)}); err != nil {
		t.Fatal(err)
	}
	if got := check(); got != "token_revoked" {
		t.Fatalf("after jti revocation: %s", got)
	}
	resp, err := e.client.Check(context.Background(), sample(t, "01-get-bearer-jwt.json", tok))
	if err != nil {
		t.Fatal(err)
	}
	want := wantResponse(t, e, `{
  "status": {"code": 16, "message": "token_revoked"},
  "deniedResponse": {
    "status": {"code": "Unauthorized"},
    "headers": [`+deniedHeaders+`,
      {"header": {"key": "www-authenticate", "value": "Bearer error=\"invalid_token\", error_description=\"token revoked\""}, "append": false}
    ],
    "body": "{\"type\":\"urn:warden:problem:token_revoked\",\"title\":\"Token revoked\",\"status\":401,\"detail\":\"token revoked\",\"decision_id\":\"DECISION_ID\"}"
  },
  "dynamicMetadata": {"action": "", "decision_id": "DECISION_ID", "policies": [], "principal": "", "reason": "token_revoked", "resource": ""}
}`)
	if diff := cmp.Diff(want, normalized(t, resp), protocmp.Transform()); diff != "" {
		t.Errorf("revoked response (-want +got):\n%s", diff)
	}
}

// TestRateLimitedResponseShape: the 429 carries Retry-After and the
// RateLimit headers of the rule that denied, with the problem body.
func TestRateLimitedResponseShape(t *testing.T) {
	e := start(t, func(c *config.Config) { c.RateLimit.Rules[0].Limit, c.RateLimit.Rules[0].Burst = 1, 1 })
	tok := e.token(t, "alice", "staff")
	if r := e.reason(t, tok); r != "policy_allow" {
		t.Fatalf("first request: %s", r)
	}
	resp, err := e.client.Check(context.Background(), sample(t, "01-get-bearer-jwt.json", tok))
	if err != nil {
		t.Fatal(err)
	}
	want := wantResponse(t, e, `{
  "status": {"code": 8, "message": "rate_limited"},
  "deniedResponse": {
    "status": {"code": "TooManyRequests"},
    "headers": [`+deniedHeaders+`,
      {"header": {"key": "retry-after", "value": "60"}, "append": false},
      {"header": {"key": "ratelimit-policy", "value": "\"per-user\";q=1;w=60"}, "append": false},
      {"header": {"key": "ratelimit", "value": "\"per-user\";r=0;t=60"}, "append": false}
    ],
    "body": "{\"type\":\"urn:warden:problem:rate_limited\",\"title\":\"Too many requests\",\"status\":429,\"detail\":\"rate limit per-user exceeded\",\"decision_id\":\"DECISION_ID\"}"
  },
  "dynamicMetadata": {"action": "Action::\"GET /v1/orders/{id}\"", "decision_id": "DECISION_ID", "policies": ["staff-read"],
    "principal": "User::\"corp|alice\"", "reason": "rate_limited", "resource": "Order::\"42\""}
}`)
	if diff := cmp.Diff(want, normalized(t, resp), protocmp.Transform()); diff != "" {
		t.Errorf("rate-limited response (-want +got):\n%s", diff)
	}
}

// failingStore is an internal fault injected behind the Revocations
// interface (the Redis store's faults are tested against a real server).
type failingStore struct{}

func (failingStore) Revoked(context.Context, string, string, time.Time) (bool, error) {
	return false, errors.New("store down")
}

func TestFailClosed(t *testing.T) {
	e := start(t)
	tok := e.token(t, "alice", "staff")
	a := authz.New(authz.Options{Authenticator: e.svc.Authn, Policies: e.svc.Policies, Revocations: failingStore{}})
	out := a.Evaluate(context.Background(), sample(t, "01-get-bearer-jwt.json", tok))
	if out.Record.Decision != "deny" || out.Record.Status != 503 || out.Record.Reason != decisionlog.ReasonUnavailable {
		t.Errorf("revocation store down: got %s %d %s, want deny 503 unavailable", out.Record.Decision, out.Record.Status, out.Record.Reason)
	}
	b := authz.New(authz.Options{Authenticator: e.svc.Authn, Policies: nilPolicies{}})
	out = b.Evaluate(context.Background(), sample(t, "01-get-bearer-jwt.json", tok))
	if out.Record.Decision != "deny" || out.Record.Status != 503 {
		t.Errorf("no policy set: got %s %d, want deny 503", out.Record.Decision, out.Record.Status)
	}
}

type nilPolicies struct{}

func (nilPolicies) Current() *policy.Set { return nil }

func TestHealthReadyMetricsAndShutdown(t *testing.T) {
	e := start(t)
	hr, err := e.health.Check(context.Background(), &healthpb.HealthCheckRequest{Service: "envoy.service.auth.v3.Authorization"})
	if err != nil || hr.Status != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health: %v %v", hr, err)
	}
	for path, want := range map[string]int{"/healthz": 200, "/readyz": 200} {
		resp, err := http.Get(e.http + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("%s: %d", path, resp.StatusCode)
		}
	}
	_, _ = e.client.Check(context.Background(), sample(t, "02-post-json-body.json", "x.y.z"))
	resp, err := http.Get(e.http + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`warden_decisions_total{decision="deny",reason="token_invalid",transport="grpc"} 1`, "warden_check_duration_seconds_bucket", `warden_jwks_fetches_total{issuer="corp",result="ok"}`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	e.cancel()
	select {
	case err := <-e.done:
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
		e.done <- nil // for the cleanup
	case <-time.After(5 * time.Second):
		t.Fatal("no shutdown within 5s")
	}
}

// TestAttackTokensAre401: crafted tokens come back from a real Check as 401
// token_invalid with an invalid_token challenge naming the reason.
func TestAttackTokensAre401(t *testing.T) {
	e := start(t)
	good := e.token(t, "alice", "staff")
	p := strings.Split(good, ".")
	b64 := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	expired := map[string]any{"iss": e.is.URL, "sub": "alice", "aud": aud, "exp": 1780000000, "iat": 1779990000}
	other := map[string]any{"iss": "https://evil.example", "sub": "alice", "aud": aud, "exp": 4102444800}
	for _, tc := range []struct{ name, token, desc string }{
		{"alg none", b64(`{"alg":"none"}`) + "." + p[1] + ".", "algorithm not allowed"},
		{"HS256", b64(`{"alg":"HS256","kid":"k1"}`) + "." + p[1] + "." + p[2], "algorithm not allowed"},
		{"tampered", p[0] + "." + b64(`{"iss":"`+e.is.URL+`","sub":"root","aud":"`+aud+`","exp":4102444800}`) + "." + p[2], "invalid signature"},
		{"expired", e.is.Sign(t, expired), "token expired"},
		{"unknown issuer", e.is.Sign(t, other), "unknown issuer"},
		{"JWE", "a.b.c.d.e", "unsupported token form"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := e.client.Check(context.Background(), sample(t, "01-get-bearer-jwt.json", tc.token))
			if err != nil {
				t.Fatal(err)
			}
			if resp.GetDeniedResponse().GetStatus().GetCode() != 401 || resp.GetDynamicMetadata().GetFields()["reason"].GetStringValue() != "token_invalid" {
				t.Fatalf("got %v", resp.GetStatus())
			}
			// Exactly one challenge, naming the reason: a missing header
			// fails as surely as a wrong one.
			var got []string
			for _, hv := range resp.GetDeniedResponse().GetHeaders() {
				if strings.EqualFold(hv.GetHeader().GetKey(), "www-authenticate") {
					got = append(got, hv.GetHeader().GetValue())
				}
			}
			want := []string{`Bearer error="invalid_token", error_description="` + tc.desc + `"`}
			if !slices.Equal(got, want) {
				t.Errorf("WWW-Authenticate: got %q, want %q", got, want)
			}
		})
	}
}
