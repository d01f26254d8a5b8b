package server_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc/codes"

	"github.com/wardenauthz/warden/authz/admin"
	"github.com/wardenauthz/warden/authz/checkreq"
	"github.com/wardenauthz/warden/authz/config"
	"github.com/wardenauthz/warden/authz/server"
	"github.com/wardenauthz/warden/identity/oidctest"
	"github.com/wardenauthz/warden/internal/envoysim"
	"github.com/wardenauthz/warden/policy"
	adminv1 "github.com/wardenauthz/warden/proto/warden/admin/v1"
	"github.com/wardenauthz/warden/ratelimit"
	"github.com/wardenauthz/warden/ratelimit/redistest"
)

// checkHTTP sends the CheckRequest Envoy builds for one HTTP request over
// the real gRPC Check and returns the response.
func checkHTTP(t *testing.T, e *env, h checkreq.HTTP) *authv3.CheckResponse {
	t.Helper()
	req, err := checkreq.Build(h)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := e.client.Check(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func reasonOf(resp *authv3.CheckResponse) string {
	return resp.GetDynamicMetadata().GetFields()["reason"].GetStringValue()
}

func deniedHeader(resp *authv3.CheckResponse, name string) string {
	for _, hv := range resp.GetDeniedResponse().GetHeaders() {
		if hv.GetHeader().GetKey() == name {
			return hv.GetHeader().GetValue()
		}
	}
	return ""
}

// TestBearerAnyWhitespace: whatever follows the Bearer scheme (a tab,
// several spaces and a tab, a no-break space, a vertical tab, a comma, or a
// later comma-joined element), an attempt at Bearer credentials is judged:
// a forged or malformed one is 401 invalid_token — never anonymous, not
// even on a route anonymous callers may use (public-catalog), and not
// through the Envoy-behaving front either.
func TestBearerAnyWhitespace(t *testing.T) {
	e := start(t, func(c *config.Config) {
		c.Policy.Routes = append(c.Policy.Routes, policy.RouteConfig{Service: "orders", Method: "*", Path: "/orders/{id}", Resource: `Order::"{id}"`})
	})
	good := e.token(t, "alice", "staff")
	forged := good[:len(good)-4] + "AAAA"
	for _, v := range []string{
		"Bearer\t" + forged, "bearer \t" + forged, "BEARER\t\t" + good, "Bearer\u00a0" + forged,
		"Bearer\v" + forged, "Bearer\f" + forged, "Bearer\r" + forged, "\tBearer\t" + forged,
		"Bearer," + forged, "Bearer", "bEaReR ", "Basic dXNlcjpwYXNz,Bearer " + forged,
		"Bearer " + good + ",Bearer " + forged, "Bearer " + good + " x",
	} {
		resp := checkHTTP(t, e, checkreq.HTTP{Method: "GET", URL: "http://api.example.com/catalog/search/x", Headers: []string{"authorization: " + v}})
		if code := resp.GetDeniedResponse().GetStatus().GetCode(); code != 401 || reasonOf(resp) != "token_invalid" ||
			!strings.Contains(deniedHeader(resp, "www-authenticate"), `error="invalid_token"`) {
			t.Errorf("authorization %q: %d %s (%s)", v, code, reasonOf(resp), deniedHeader(resp, "www-authenticate"))
		}
	}
	// The exact grammar still works, in any case and with several spaces;
	// other schemes are not Bearer credentials (anonymous may search).
	for _, v := range []string{"Bearer " + good, "bearer   " + good, "BEARER " + good, "Basic dXNlcjpwYXNz", "Bearerx " + forged} {
		resp := checkHTTP(t, e, checkreq.HTTP{Method: "GET", URL: "http://api.example.com/catalog/search/x", Headers: []string{"authorization: " + v}})
		if reasonOf(resp) == "token_invalid" || resp.GetDeniedResponse() != nil {
			t.Errorf("authorization %q: %s", v, reasonOf(resp))
		}
	}

	// Through the front with the shipped Envoy config.
	up := newUpstream(t)
	base := front(t, e.client, up)
	for _, v := range []string{"Bearer\t" + forged, "Bearer \t " + forged, "bearer\u00a0" + forged} {
		resp, _ := do(t, "GET", base+"/orders/42", "authorization: "+v)
		if resp.StatusCode != 401 || !strings.Contains(resp.Header.Get("www-authenticate"), `error="invalid_token"`) {
			t.Errorf("front, authorization %q: %d %s", v, resp.StatusCode, resp.Header.Get("www-authenticate"))
		}
	}
	if n := len(up.take()); n != 0 {
		t.Errorf("%d requests reached the upstream", n)
	}
}

// shippedFront is the Envoy stand-in configured from the shipped front
// proxy, before up, with mutate applied.
func shippedFront(t *testing.T, e *env, up *upstream, mutate func(*envoysim.Front)) *envoysim.Front {
	t.Helper()
	u, _ := url.Parse(up.srv.URL)
	f, err := envoysim.FromFile("../../envoy/front-proxy/envoy.yaml", e.client, u)
	if err != nil {
		t.Fatal(err)
	}
	// These tests are about what reaches the upstream, not the filter's
	// timeout (0.25 s in the shipped file): on a loaded CI machine under the
	// race detector a Check can take longer, and Envoy's 503 would hide the
	// answer being tested.
	f.Timeout = 5 * time.Second
	if mutate != nil {
		mutate(f)
	}
	return f
}

// identitySpellings are client header names an upstream may read as one of
// Warden's identity headers.
var identitySpellings = []string{
	"x_warden_groups", "X_Warden-Principal", "x-warden_groups", "X_WARDEN_SUBJECT", "x_warden-issuer",
	"x_warden_decision_id", "x-warden-decision_id", "X-Warden-Admin", "x_warden_admin", "x_WaRdEn-workload",
}

// TestIdentityHeaderAnySpelling: a client header that reads as an identity
// header once "_" is taken for "-" and case is ignored never reaches the
// upstream. The shipped Envoy config refuses every header name with "_"
// (400 for HTTP/1, a reset HTTP/2 stream); an Envoy left at its default
// (ALLOW) passes them to Warden, which removes every spelling it did not
// set; DROP_HEADER drops them.
func TestIdentityHeaderAnySpelling(t *testing.T) {
	e := start(t, func(c *config.Config) {
		c.Policy.Routes = append(c.Policy.Routes, policy.RouteConfig{Service: "orders", Method: "*", Path: "/orders/{id}", Resource: `Order::"{id}"`})
	})
	tok := e.token(t, "alice", "staff")
	up := newUpstream(t)

	// The shipped config: refused before Warden or the upstream sees it.
	shipped := httptest.NewServer(shippedFront(t, e, up, nil))
	t.Cleanup(shipped.Close)
	for _, h := range identitySpellings {
		if !strings.Contains(h, "_") {
			continue
		}
		resp, _ := do(t, "GET", shipped.URL+"/orders/42", "authorization: Bearer "+tok, h+": admins")
		if resp.StatusCode != 400 {
			t.Errorf("shipped front, %s: %d, want 400", h, resp.StatusCode)
		}
	}
	// HTTP/2: the stream is reset.
	h2 := httptest.NewUnstartedServer(shippedFront(t, e, up, nil))
	h2.EnableHTTP2 = true
	h2.StartTLS()
	t.Cleanup(h2.Close)
	req, _ := http.NewRequest("GET", h2.URL+"/orders/42", nil)
	req.Header.Set("authorization", "Bearer "+tok)
	req.Header["x_warden_groups"] = []string{"admins"}
	if resp, err := h2.Client().Do(req); err == nil {
		resp.Body.Close()
		t.Errorf("shipped front over HTTP/2: %s %d, want a reset stream", resp.Proto, resp.StatusCode)
	} else if !strings.Contains(err.Error(), "stream error") {
		t.Errorf("shipped front over HTTP/2: %v, want the stream reset by the front", err)
	}
	// Without the header the same request goes through, over both.
	if resp, _ := do(t, "GET", shipped.URL+"/orders/42", "authorization: Bearer "+tok); resp.StatusCode != 200 {
		t.Errorf("shipped front, no spoofed header: %d", resp.StatusCode)
	}
	delete(req.Header, "x_warden_groups")
	if resp, err := h2.Client().Do(req); err != nil || resp.StatusCode != 200 || resp.ProtoMajor != 2 {
		t.Errorf("shipped front over HTTP/2, no spoofed header: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	if n := len(up.take()); n != 2 {
		t.Errorf("%d requests reached the upstream, want 2", n)
	}

	for _, action := range []corev3.HttpProtocolOptions_HeadersWithUnderscoresAction{corev3.HttpProtocolOptions_ALLOW, corev3.HttpProtocolOptions_DROP_HEADER} {
		t.Run(action.String(), func(t *testing.T) {
			s := httptest.NewServer(shippedFront(t, e, up, func(f *envoysim.Front) { f.HeadersWithUnderscores = action }))
			t.Cleanup(s.Close)
			for _, h := range identitySpellings {
				resp, _ := do(t, "GET", s.URL+"/orders/42", "authorization: Bearer "+tok, h+": admins")
				if resp.StatusCode != 200 {
					t.Fatalf("%s: %d", h, resp.StatusCode)
				}
				reqs := up.take()
				if len(reqs) != 1 {
					t.Fatalf("%s: %d requests upstream", h, len(reqs))
				}
				for k, vs := range reqs[0].Header {
					n := strings.ReplaceAll(strings.ToLower(k), "_", "-")
					if !strings.HasPrefix(n, "x-warden-") {
						continue
					}
					switch {
					case k != http.CanonicalHeaderKey(n): // not a name Warden sets
						t.Errorf("sent %s: %s: %q reached the upstream", h, k, vs)
					case len(vs) != 1 || vs[0] == "admins":
						t.Errorf("sent %s: %s upstream is %q", h, k, vs)
					}
				}
			}
		})
	}
}

// startYAML starts a Warden from the test config with edit applied to its
// YAML text (so what is tested is what a user writes).
func startYAML(t *testing.T, edit func(string) string) *env {
	t.Helper()
	is := oidctest.New(t)
	return startWith(t, is, func(c *config.Config) {
		b, err := os.ReadFile("testdata/warden.yaml")
		if err != nil {
			t.Fatal(err)
		}
		parsed, err := config.Parse("testdata/warden.yaml", []byte(edit(strings.ReplaceAll(string(b), "ISSUER_URL", is.URL))), "testdata")
		if err != nil {
			t.Fatal(err)
		}
		*c = *parsed
	})
}

// TestClockSkewZeroIsZero: `clock_skew: 0s` is no leeway at all — a token
// one second past exp is refused (401 token expired) — while an unset
// clock_skew is the 30 s default.
func TestClockSkewZeroIsZero(t *testing.T) {
	for _, tc := range []struct {
		skew string
		want string
	}{{"      clock_skew: 0s\n", "token_invalid"}, {"", "policy_allow"}} {
		e := startYAML(t, func(y string) string {
			return strings.Replace(y, "      algorithms: [RS256]\n", "      algorithms: [RS256]\n"+tc.skew, 1)
		})
		for _, past := range []time.Duration{time.Second, 3 * time.Second} {
			tok := e.is.Sign(t, map[string]any{"iss": e.is.URL, "sub": "alice", "aud": aud, "iat": fixedNow().Add(-time.Hour).Unix(),
				"exp": fixedNow().Add(-past).Unix(), "groups": []string{"staff"}})
			resp := checkHTTP(t, e, checkreq.HTTP{Method: "GET", URL: "http://api.example.com/v1/orders/42", Headers: []string{"authorization: Bearer " + tok}, Time: fixedNow()})
			if got := reasonOf(resp); got != tc.want {
				t.Errorf("clock_skew %q, %s past exp: %s, want %s", strings.TrimSpace(tc.skew), past, got, tc.want)
			}
			if tc.want == "token_invalid" && !strings.Contains(deniedHeader(resp, "www-authenticate"), "token expired") {
				t.Errorf("clock_skew 0s: %s", deniedHeader(resp, "www-authenticate"))
			}
		}
	}
}

// TestStepUpMaxAgeEnforced: @step_up_max_age("300") on the test set's
// admin-writes-need-mfa forbid holds even though the forbid's condition
// only asks for acr "mfa": an MFA token whose auth_time is two hours (or
// 301 s) old, or that has no auth_time, gets the step-up answer (401,
// max_age=300); one authenticated a minute ago is allowed. The times are
// also Cedar datetimes: a policy compares auth_time_datetime with
// context.now.
func TestStepUpMaxAgeEnforced(t *testing.T) {
	dir := t.TempDir()
	b, err := os.ReadFile("testdata/policies/api.cedar")
	if err != nil {
		t.Fatal(err)
	}
	fresh := `
@id("ledger-needs-login-within-1h")
forbid (principal, action == Action::"GET /ledger/entries/{id}", resource)
unless { context has token && context.token has auth_time_datetime &&
         context.token.auth_time_datetime > context.now.offset(duration("-1h")) &&
         context.token.iat_datetime <= context.now && context.token.exp_datetime > context.now };
`
	if err := os.WriteFile(filepath.Join(dir, "api.cedar"), append(b, fresh...), 0o644); err != nil {
		t.Fatal(err)
	}
	e := start(t, func(c *config.Config) { c.Policy.Dir = dir })
	tok := func(authTime time.Duration, acr string) string {
		c := map[string]any{"iss": e.is.URL, "sub": "alice", "aud": aud, "iat": fixedNow().Add(-time.Minute).Unix(),
			"exp": fixedNow().Add(time.Hour).Unix(), "groups": []string{"admins", "staff"}, "acr": acr}
		if authTime >= 0 {
			c["auth_time"] = fixedNow().Add(-authTime).Unix()
		}
		return e.is.Sign(t, c)
	}
	const none = -1
	for _, tc := range []struct {
		name, method, url string
		authAge           time.Duration
		acr               string
		reason, www       string
	}{
		{"mfa two hours ago", "DELETE", "https://admin.example.com/admin/users/1234", 2 * time.Hour, "mfa", "step_up", `acr_values="mfa", max_age=300`},
		{"mfa 301s ago", "DELETE", "https://admin.example.com/admin/users/1234", 301 * time.Second, "mfa", "step_up", `max_age=300`},
		{"mfa, no auth_time", "DELETE", "https://admin.example.com/admin/users/1234", none, "mfa", "step_up", `max_age=300`},
		{"no mfa, fresh", "DELETE", "https://admin.example.com/admin/users/1234", time.Minute, "pwd", "step_up", `acr_values="mfa", max_age=300`},
		{"mfa a minute ago", "DELETE", "https://admin.example.com/admin/users/1234", time.Minute, "mfa", "policy_allow", ""},
		{"mfa exactly 300s ago", "DELETE", "https://admin.example.com/admin/users/1234", 300 * time.Second, "mfa", "policy_allow", ""},
		{"a read is outside the forbid's scope", "GET", "https://admin.example.com/admin/users/1234", 2 * time.Hour, "pwd", "policy_allow", ""},
		{"ledger, login 2h ago", "GET", "https://api.example.com/ledger/entries/9", 2 * time.Hour, "pwd", "policy_deny", ""},
		{"ledger, no auth_time", "GET", "https://api.example.com/ledger/entries/9", none, "pwd", "policy_deny", ""},
		{"ledger, login 30m ago", "GET", "https://api.example.com/ledger/entries/9", 30 * time.Minute, "pwd", "policy_allow", ""},
	} {
		resp := checkHTTP(t, e, checkreq.HTTP{Method: tc.method, URL: tc.url, Time: fixedNow(),
			Headers: []string{"authorization: Bearer " + tok(tc.authAge, tc.acr)}})
		if got := reasonOf(resp); got != tc.reason {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.reason)
			continue
		}
		if www := deniedHeader(resp, "www-authenticate"); tc.www != "" && (!strings.Contains(www, tc.www) || resp.GetDeniedResponse().GetStatus().GetCode() != 401) {
			t.Errorf("%s: %d %s, want %s", tc.name, resp.GetDeniedResponse().GetStatus().GetCode(), www, tc.www)
		}
	}
}

// TestRevokeByPrincipal: a revocation by subject takes effect on the next
// Check for every token principal, named as records and identity headers
// show it: a client-credentials token without sub (Client::"corp|svc",
// revoked as corp|svc, not corp|), a user token without jti, a sub with
// "|" inside, with the issuer's name or its URL (with or without a trailing
// slash) or the record's User::"..." form. Tokens issued after the
// revocation work again. An unknown issuer or an empty id is refused, never
// "revoked".
func TestRevokeByPrincipal(t *testing.T) {
	tokens := adminTokens(t)
	e := start(t, func(c *config.Config) { c.Admin.TokenFile = tokens })
	revoker := dialAdmin(t, e.admin, admin.ClientOptions{TokenFile: tokenFileOf(t, revokerToken)})
	ctx := context.Background()
	sign := func(iat time.Time, extra map[string]any) string {
		c := map[string]any{"iss": e.is.URL, "aud": aud, "iat": iat.Unix(), "exp": fixedNow().Add(time.Hour).Unix(), "groups": []string{"staff"}}
		for k, v := range extra {
			c[k] = v
		}
		return e.is.Sign(t, c)
	}
	old := fixedNow().Add(-time.Hour)
	for _, tc := range []struct {
		name, revoke, principal string
		claims                  map[string]any
	}{
		{"client credentials, by name", "corp|svc", `Client::"corp|svc"`, map[string]any{"client_id": "svc", "jti": "c-1"}},
		{"user without jti, by URL", e.is.URL + "|nojti", `User::"corp|nojti"`, map[string]any{"sub": "nojti"}},
		{"user, by URL with a trailing slash", e.is.URL + "/|carol", `User::"corp|carol"`, map[string]any{"sub": "carol", "jti": "u-3"}},
		{"user whose sub holds |, as the record shows it", `User::"corp|auth0|123"`, `User::"corp|auth0|123"`, map[string]any{"sub": "auth0|123"}},
		{"client whose sub is its id", `Client::"corp|batch"`, `Client::"corp|batch"`, map[string]any{"sub": "batch", "client_id": "batch"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok := sign(old, tc.claims)
			resp, err := e.client.Check(ctx, sample(t, "01-get-bearer-jwt.json", tok))
			if err != nil {
				t.Fatal(err)
			}
			if reasonOf(resp) != "policy_allow" || resp.GetDynamicMetadata().GetFields()["principal"].GetStringValue() != tc.principal {
				t.Fatalf("before: %s %v", reasonOf(resp), resp.GetDynamicMetadata())
			}
			r, err := revoker.Revoke(ctx, &adminv1.RevokeRequest{Target: &adminv1.RevokeRequest_Subject{Subject: &adminv1.RevokeSubject{Subject: tc.revoke}}})
			if err != nil {
				t.Fatal(err)
			}
			if want := strings.TrimSuffix(tc.principal[strings.Index(tc.principal, `"`)+1:], `"`); r.Revocation.Id != want {
				t.Errorf("revoked %q, want %q", r.Revocation.Id, want)
			}
			if got := e.reason(t, tok); got != "token_revoked" {
				t.Errorf("after revoking %s: %s", tc.revoke, got)
			}
			// Signing in again after the revocation (and the issuer's
			// 30s clock_skew, see TestSubjectRevocationCoversSkew) works.
			if got := e.reason(t, sign(fixedNow().Add(30*time.Second), tc.claims)); got != "policy_allow" {
				t.Errorf("a token issued after the revocation: %s", got)
			}
		})
	}
	for _, bad := range []string{"evil|alice", "https://evil.example|alice", e.is.URL + "x|alice", "corp|", "alice", `Workload::"spiffe://cluster.local/ns/a/sa/b"`} {
		_, err := revoker.Revoke(ctx, &adminv1.RevokeRequest{Target: &adminv1.RevokeRequest_Subject{Subject: &adminv1.RevokeSubject{Subject: bad}}})
		wantCode(t, "revoke "+bad, err, codes.InvalidArgument)
	}
}

// TestSubjectRevocationCoversSkew: a token's iat may be up to its issuer's
// clock_skew (30s here) in the future, so an IdP whose clock runs ahead
// stamps a token T+25s that it issued before a revocation at T. A subject
// revocation at T refuses tokens with iat < T + skew (erring towards
// revoking); one stamped at T + skew or later is allowed.
func TestSubjectRevocationCoversSkew(t *testing.T) {
	e := start(t)
	at := fixedNow().Add(-40 * time.Second) // the revocation
	sign := func(iat time.Duration) string {
		return e.is.Sign(t, map[string]any{"iss": e.is.URL, "sub": "dave", "aud": aud, "iat": at.Add(iat).Unix(), "exp": fixedNow().Add(time.Hour).Unix(), "groups": []string{"staff"}})
	}
	cases := map[time.Duration]string{-time.Minute: "token_revoked", 25 * time.Second: "token_revoked", 29 * time.Second: "token_revoked",
		30 * time.Second: "policy_allow", 31 * time.Second: "policy_allow", time.Minute: "policy_allow"}
	toks := map[time.Duration]string{}
	for d := range cases {
		toks[d] = sign(d)
		if got := e.reason(t, toks[d]); got != "policy_allow" {
			t.Fatalf("iat revocation%+v, before it: %s", d, got)
		}
	}
	if err := e.svc.Store.Revoke(context.Background(), ratelimit.Revocation{Kind: "subject", ID: "corp|dave", Before: at}); err != nil {
		t.Fatal(err)
	}
	for d, want := range cases {
		if got := e.reason(t, toks[d]); got != want {
			t.Errorf("iat revocation%+v: %s, want %s", d, got, want)
		}
	}
}

// TestControlCharacterIDsRefused: a token whose sub, client id or a group
// holds a control character (or whose sub or client id has whitespace at
// either end) is 401: no record, header or revoke --subject could name
// that principal, so it could never be revoked. The admin API refuses such
// ids (a trailing space is not silently stored).
func TestControlCharacterIDsRefused(t *testing.T) {
	tokens := adminTokens(t)
	e := start(t, func(c *config.Config) { c.Admin.TokenFile = tokens })
	revoker := dialAdmin(t, e.admin, admin.ClientOptions{TokenFile: tokenFileOf(t, revokerToken)})
	claims := func(extra map[string]any) map[string]any {
		c := map[string]any{"iss": e.is.URL, "aud": aud, "iat": fixedNow().Add(-time.Minute).Unix(), "exp": fixedNow().Add(time.Hour).Unix(), "groups": []string{"staff"}}
		for k, v := range extra {
			c[k] = v
		}
		return c
	}
	for _, extra := range []map[string]any{
		{"sub": "alice\n"}, {"sub": "alice\x00"}, {"sub": "al\x7fice"}, {"sub": "alice\u0085"}, {"sub": "\talice"},
		{"sub": "alice "}, {"sub": " alice"}, {"sub": "alice\u00a0"},
		{"client_id": "svc\r"}, {"client_id": "svc "},
		{"sub": "alice", "groups": []string{"staff", "admins\n"}},
	} {
		if got := e.reason(t, e.is.Sign(t, claims(extra))); got != "token_invalid" {
			t.Errorf("%q: %s, want token_invalid", extra, got)
		}
	}
	if got := e.reason(t, e.is.Sign(t, claims(map[string]any{"sub": "al ice"}))); got != "policy_allow" {
		t.Errorf("a space inside the sub: %s", got)
	}
	for _, bad := range []string{"corp|alice ", "corp|alice\t", "corp|alice\u00a0", `User::"corp|alice "`, "corp|al\u0085ice"} {
		_, err := revoker.Revoke(context.Background(), &adminv1.RevokeRequest{Target: &adminv1.RevokeRequest_Subject{Subject: &adminv1.RevokeSubject{Subject: bad}}})
		wantCode(t, fmt.Sprintf("revoke %q", bad), err, codes.InvalidArgument)
	}
}

// TestJTIRevocationOutlivesExp: with clock_skew 5m a token is accepted
// until exp + 5m, so its jti revocation must hold as long: a token two
// minutes past exp, revoked by jti with its exp, stays revoked after the
// revocation list is read (the memory store used to drop it there) and in
// Redis (whose key used to expire at exp + 1m, or was never written).
func TestJTIRevocationOutlivesExp(t *testing.T) {
	for _, kind := range []string{"memory", "redis"} {
		t.Run(kind, func(t *testing.T) {
			var srv *redistest.Server
			if kind == "redis" {
				srv = redistest.Start(t)
			}
			is := oidctest.New(t)
			// The real clock: Redis's key TTL and its mirror run on it.
			e := startOpts(t, is, server.Options{Stdout: io.Discard, Now: time.Now}, func(c *config.Config) {
				b, err := os.ReadFile("testdata/warden.yaml")
				if err != nil {
					t.Fatal(err)
				}
				y := strings.Replace(strings.ReplaceAll(string(b), "ISSUER_URL", is.URL), "      algorithms: [RS256]\n", "      algorithms: [RS256]\n      clock_skew: 5m\n", 1)
				parsed, err := config.Parse("testdata/warden.yaml", []byte(y), "testdata")
				if err != nil {
					t.Fatal(err)
				}
				*c = *parsed
				if srv != nil {
					c.Store.Kind, c.Store.Redis.Addrs = "redis", []string{srv.Addr}
				}
			})
			exp := time.Now().Add(-2 * time.Minute)
			tok := e.is.Sign(t, map[string]any{"iss": e.is.URL, "sub": "erin", "jti": "late-1", "aud": aud, "iat": time.Now().Add(-time.Hour).Unix(), "exp": exp.Unix(), "groups": []string{"staff"}})
			if got := e.reason(t, tok); got != "policy_allow" {
				t.Fatalf("within the skew, before revoking: %s", got)
			}
			ctx := context.Background()
			if err := e.svc.Store.Revoke(ctx, ratelimit.Revocation{Kind: "jti", ID: "late-1", Until: exp}); err != nil {
				t.Fatal(err)
			}
			if _, err := e.svc.Store.List(ctx, time.Now()); err != nil {
				t.Fatal(err)
			}
			if got := e.reason(t, tok); got != "token_revoked" {
				t.Errorf("after revoking and listing: %s, want token_revoked", got)
			}
		})
	}
}
