package server_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/wardenauthz/warden/authz/admin"
	"github.com/wardenauthz/warden/authz/config"
	"github.com/wardenauthz/warden/internal/testlog"
	"github.com/wardenauthz/warden/internal/testpki"
	adminv1 "github.com/wardenauthz/warden/proto/warden/admin/v1"
)

const (
	readerToken  = "reader-token-0123456789abcdef"
	revokerToken = "revoker-token-0123456789abcdef"
)

// adminTokens writes a token file granting a reader and a revoker.
func adminTokens(t *testing.T) string {
	testlog.Secret(t, readerToken, revokerToken)
	p := filepath.Join(t.TempDir(), "admin-tokens")
	body := "# test admin tokens\n" +
		readerToken + " QueryDecisions,ListRevocations,PolicyStatus\n" +
		revokerToken + " Revoke\n"
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func tokenFileOf(t *testing.T, tok string) string {
	p := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(p, []byte(tok+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func dialAdmin(t *testing.T, addr string, o admin.ClientOptions) adminv1.AdminServiceClient {
	t.Helper()
	c, closer, err := admin.Dial(addr, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = closer() })
	return c
}

func wantCode(t *testing.T, what string, err error, want codes.Code) {
	t.Helper()
	if got := status.Code(err); got != want {
		t.Errorf("%s: got %v (%v), want %v", what, got, err, want)
	}
}

// TestAdminAPI: the admin methods over gRPC, each granted per token.
func TestAdminAPI(t *testing.T) {
	tokens := adminTokens(t)
	e := start(t, func(c *config.Config) { c.Admin.TokenFile = tokens })
	if e.admin == "" {
		t.Fatal("admin API not enabled")
	}
	ctx := context.Background()
	reader := dialAdmin(t, e.admin, admin.ClientOptions{TokenFile: tokenFileOf(t, readerToken)})
	revoker := dialAdmin(t, e.admin, admin.ClientOptions{TokenFile: tokenFileOf(t, revokerToken)})
	stranger := dialAdmin(t, e.admin, admin.ClientOptions{TokenFile: tokenFileOf(t, "not-a-known-token-at-all")})

	// Seven decisions: alice allowed three times, mallory denied four.
	alice := e.token(t, "alice", "staff")
	for range 3 {
		if r := e.reason(t, alice); r != "policy_allow" {
			t.Fatalf("alice: %s", r)
		}
	}
	mallory := e.token(t, "mallory")
	for range 4 {
		if r := e.reason(t, mallory); r != "policy_deny" {
			t.Fatalf("mallory: %s", r)
		}
	}

	t.Run("authentication", func(t *testing.T) {
		_, err := stranger.PolicyStatus(ctx, &adminv1.PolicyStatusRequest{})
		wantCode(t, "unknown token", err, codes.Unauthenticated)
		_, err = revoker.QueryDecisions(ctx, &adminv1.QueryDecisionsRequest{})
		wantCode(t, "revoker querying", err, codes.PermissionDenied)
		_, err = revoker.ListRevocations(ctx, &adminv1.ListRevocationsRequest{})
		wantCode(t, "revoker listing", err, codes.PermissionDenied)
		_, err = reader.Revoke(ctx, &adminv1.RevokeRequest{Target: &adminv1.RevokeRequest_Token{Token: &adminv1.RevokeToken{Jti: "x"}}})
		wantCode(t, "reader revoking", err, codes.PermissionDenied)
		_, err = reader.Unrevoke(ctx, &adminv1.UnrevokeRequest{Kind: "jti", Id: "x"})
		wantCode(t, "reader unrevoking", err, codes.PermissionDenied)
	})

	t.Run("query and paging", func(t *testing.T) {
		var got []*adminv1.Decision
		token := ""
		for pages := 0; ; pages++ {
			resp, err := reader.QueryDecisions(ctx, &adminv1.QueryDecisionsRequest{PageSize: 2, PageToken: token})
			if err != nil {
				t.Fatal(err)
			}
			if resp.Source != "memory" {
				t.Errorf("source %q, want memory (no queryable sink)", resp.Source)
			}
			got = append(got, resp.Decisions...)
			if token = resp.NextPageToken; token == "" {
				break
			}
			if pages > 10 {
				t.Fatal("paging does not end")
			}
		}
		ids := map[string]bool{}
		for i, d := range got {
			ids[d.DecisionId] = true
			if i > 0 && d.Time.AsTime().After(got[i-1].Time.AsTime()) {
				t.Errorf("not newest first at %d", i)
			}
		}
		if len(got) != 7 || len(ids) != 7 {
			t.Fatalf("paged through %d records (%d distinct), want 7", len(got), len(ids))
		}
		resp, err := reader.QueryDecisions(ctx, &adminv1.QueryDecisionsRequest{Decision: "deny", Principal: `User::"corp|mallory"`})
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.Decisions) != 4 {
			t.Errorf("mallory's denials: %d, want 4", len(resp.Decisions))
		}
		resp, err = reader.QueryDecisions(ctx, &adminv1.QueryDecisionsRequest{Decision: "allow"})
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.Decisions) != 3 || resp.Decisions[0].Principal != `User::"corp|alice"` || len(resp.Decisions[0].Policies) == 0 {
			t.Errorf("allows: %v", resp.Decisions)
		}
		_, err = reader.QueryDecisions(ctx, &adminv1.QueryDecisionsRequest{PageToken: "s:1-0"})
		wantCode(t, "foreign page token", err, codes.InvalidArgument)
		_, err = reader.QueryDecisions(ctx, &adminv1.QueryDecisionsRequest{Decision: "maybe"})
		wantCode(t, "bad decision", err, codes.InvalidArgument)
		_, err = reader.QueryDecisions(ctx, &adminv1.QueryDecisionsRequest{Since: timestamppb.New(fixedNow().Add(time.Minute))})
		if err != nil {
			t.Fatal(err)
		}
		// The filters of issue 19, applied by the server.
		allow := resp.Decisions[0]
		for _, tc := range []struct {
			req  *adminv1.QueryDecisionsRequest
			want int
		}{
			{&adminv1.QueryDecisionsRequest{DecisionId: allow.DecisionId}, 1},
			{&adminv1.QueryDecisionsRequest{Reason: "policy_deny"}, 4},
			{&adminv1.QueryDecisionsRequest{Reason: "token_invalid"}, 0},
			{&adminv1.QueryDecisionsRequest{Policy: allow.Policies[0]}, 3},
			{&adminv1.QueryDecisionsRequest{Resource: allow.Resource, Decision: "allow"}, 3},
			{&adminv1.QueryDecisionsRequest{Node: allow.Node}, 7},
			{&adminv1.QueryDecisionsRequest{Node: allow.Node + "-other"}, 0},
			// The fixed clock gives every record one time; until is exclusive.
			{&adminv1.QueryDecisionsRequest{Until: timestamppb.New(allow.Time.AsTime())}, 0},
			{&adminv1.QueryDecisionsRequest{Until: timestamppb.New(allow.Time.AsTime().Add(time.Nanosecond))}, 7},
		} {
			resp, err := reader.QueryDecisions(ctx, tc.req)
			if err != nil {
				t.Fatalf("%v: %v", tc.req, err)
			}
			if len(resp.Decisions) != tc.want {
				t.Errorf("%v: %d records, want %d", tc.req, len(resp.Decisions), tc.want)
			}
		}
		for _, req := range []*adminv1.QueryDecisionsRequest{
			{Principal: "mallory"}, {Reason: "denied"}, {DecisionId: "42"}, {Resource: "/orders"},
			{Since: timestamppb.New(fixedNow()), Until: timestamppb.New(fixedNow().Add(-time.Hour))},
		} {
			_, err = reader.QueryDecisions(ctx, req)
			wantCode(t, fmt.Sprintf("malformed filter %v", req), err, codes.InvalidArgument)
		}
	})

	t.Run("revoke", func(t *testing.T) {
		bob := e.token(t, "bob", "staff")
		if r := e.reason(t, bob); r != "policy_allow" {
			t.Fatalf("bob before: %s", r)
		}
		resp, err := revoker.Revoke(ctx, &adminv1.RevokeRequest{Target: &adminv1.RevokeRequest_Token{Token: &adminv1.RevokeToken{Jti: "jti-bob"}}})
		if err != nil {
			t.Fatal(err)
		}
		if resp.Revocation.Kind != "jti" || resp.Revocation.Until == nil {
			t.Errorf("revocation: %v", resp.Revocation)
		}
		if r := e.reason(t, bob); r != "token_revoked" {
			t.Errorf("bob after: %s", r)
		}
		_, err = revoker.Revoke(ctx, &adminv1.RevokeRequest{Target: &adminv1.RevokeRequest_Subject{Subject: &adminv1.RevokeSubject{Subject: "alice"}}})
		wantCode(t, "subject without issuer", err, codes.InvalidArgument)
		_, err = revoker.Revoke(ctx, &adminv1.RevokeRequest{})
		wantCode(t, "no target", err, codes.InvalidArgument)
		list, err := reader.ListRevocations(ctx, &adminv1.ListRevocationsRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if len(list.Revocations) != 1 || list.Revocations[0].Id != "jti-bob" {
			t.Errorf("list: %v", list.Revocations)
		}

		// Unrevoke, with the Revoke grant: bob is let in again.
		for _, bad := range []*adminv1.UnrevokeRequest{{Kind: "jti"}, {Kind: "user", Id: "jti-bob"}, {Kind: "jti", Id: "a\x00b"}, {Kind: "jti", Id: strings.Repeat("j", 5000)}} {
			_, err = revoker.Unrevoke(ctx, bad)
			wantCode(t, fmt.Sprintf("unrevoke %q/%.20q", bad.Kind, bad.Id), err, codes.InvalidArgument)
		}
		if r := e.reason(t, bob); r != "token_revoked" {
			t.Errorf("bob after refused unrevokes: %s", r)
		}
		if _, err := revoker.Unrevoke(ctx, &adminv1.UnrevokeRequest{Kind: "jti", Id: "jti-bob"}); err != nil {
			t.Fatal(err)
		}
		if r := e.reason(t, bob); r != "policy_allow" {
			t.Errorf("bob after unrevoke: %s", r)
		}
		if list, err := reader.ListRevocations(ctx, &adminv1.ListRevocationsRequest{}); err != nil || len(list.Revocations) != 0 {
			t.Errorf("list after unrevoke: %v %v", list, err)
		}
	})

	t.Run("policy status", func(t *testing.T) {
		st, err := reader.PolicyStatus(ctx, &adminv1.PolicyStatusRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if int(st.Policies) != e.svc.Policies.Current().Len() || len(st.Policy) != int(st.Policies) || st.Node != "test" || st.LastReloadError != "" {
			t.Errorf("status: %v", st)
		}
		for _, p := range st.Policy {
			if p.Id == "" || !strings.Contains(p.Position, ".cedar:") || (p.Effect != "permit" && p.Effect != "forbid") {
				t.Errorf("policy: %v", p)
			}
		}
	})
}

// TestAdminMethodsNamed: the config's grant names are exactly the service's
// methods.
func TestAdminMethodsNamed(t *testing.T) {
	var names []string
	ms := adminv1.File_warden_admin_v1_admin_proto.Services().ByName("AdminService").Methods()
	for i := range ms.Len() {
		// Unrevoke is granted by Revoke (admin.GrantFor).
		if g := admin.GrantFor(string(ms.Get(i).Name())); !slices.Contains(names, g) {
			names = append(names, g)
		}
	}
	if !slices.Equal(names, config.AdminMethods) {
		t.Errorf("service methods %v, config.AdminMethods %v", names, config.AdminMethods)
	}
}

// TestAdminMTLS: client certificates are granted by admin.clients; token
// callers still work beside them; a certificate from another CA does not.
func TestAdminMTLS(t *testing.T) {
	ca := testpki.NewCA(t, "admin")
	other := testpki.NewCA(t, "other")
	srv := ca.Server(t, "warden")
	oncall := ca.Client(t, "oncall", "spiffe://cluster.local/ns/ops/sa/oncall")
	auditor := ca.Client(t, "auditor", "")
	intruder := other.Client(t, "intruder", "spiffe://cluster.local/ns/ops/sa/oncall")
	tokens := adminTokens(t)
	e := start(t, func(c *config.Config) {
		c.Admin.TokenFile = tokens
		c.Admin.TLS = config.TLS{CertFile: srv.CertFile, KeyFile: srv.KeyFile, ClientCAFile: ca.CertFile}
		c.Admin.Clients = []config.AdminClient{
			{ID: "spiffe://cluster.local/ns/ops/sa/oncall", Allow: []string{"*"}},
			{ID: "auditor", Allow: []string{"PolicyStatus"}},
		}
	})
	ctx := context.Background()
	on := dialAdmin(t, e.admin, admin.ClientOptions{CAFile: ca.CertFile, CertFile: oncall.CertFile, KeyFile: oncall.KeyFile})
	if _, err := on.ListRevocations(ctx, &adminv1.ListRevocationsRequest{}); err != nil {
		t.Errorf("oncall (SPIFFE URI SAN, *): %v", err)
	}
	au := dialAdmin(t, e.admin, admin.ClientOptions{CAFile: ca.CertFile, CertFile: auditor.CertFile, KeyFile: auditor.KeyFile})
	if _, err := au.PolicyStatus(ctx, &adminv1.PolicyStatusRequest{}); err != nil {
		t.Errorf("auditor (CN) PolicyStatus: %v", err)
	}
	_, err := au.QueryDecisions(ctx, &adminv1.QueryDecisionsRequest{})
	wantCode(t, "auditor QueryDecisions", err, codes.PermissionDenied)
	tok := dialAdmin(t, e.admin, admin.ClientOptions{CAFile: ca.CertFile, TokenFile: tokenFileOf(t, readerToken)})
	if _, err := tok.PolicyStatus(ctx, &adminv1.PolicyStatusRequest{}); err != nil {
		t.Errorf("token over TLS: %v", err)
	}
	in := dialAdmin(t, e.admin, admin.ClientOptions{CAFile: ca.CertFile, CertFile: intruder.CertFile, KeyFile: intruder.KeyFile})
	if _, err := in.PolicyStatus(ctx, &adminv1.PolicyStatusRequest{}); err == nil {
		t.Error("a certificate from another CA was accepted")
	}
	plain := dialAdmin(t, e.admin, admin.ClientOptions{TokenFile: tokenFileOf(t, readerToken)})
	if _, err := plain.PolicyStatus(ctx, &adminv1.PolicyStatusRequest{}); err == nil {
		t.Error("a plaintext call to a TLS admin listener succeeded")
	}
}

// TestAdminConfig: the admin API is off without a way to authenticate,
// refuses a non-loopback listener without TLS, and reports a bad token file
// by line without echoing the token.
func TestAdminConfig(t *testing.T) {
	cfg, err := config.Parse("warden.yaml", []byte("identity: {anonymous: true}\npolicy: {dir: .}\n"), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Admin.Enabled() {
		t.Error("admin API enabled without any credentials configured")
	}
	_, err = config.Parse("warden.yaml", []byte("identity: {anonymous: true}\npolicy: {dir: .}\nadmin:\n  addr: 0.0.0.0:9193\n  token_file: t\n"), t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "warden.yaml:4: admin.addr") {
		t.Errorf("non-loopback admin without TLS: %v", err)
	}
	_, err = config.Parse("warden.yaml", []byte("identity: {anonymous: true}\npolicy: {dir: .}\nadmin:\n  clients: [{id: x, allow: [Everything]}]\n"), t.TempDir())
	if err == nil || !strings.Contains(err.Error(), `"Everything" is not an admin method`) || !strings.Contains(err.Error(), "needs admin.tls.client_ca_file") {
		t.Errorf("bad clients: %v", err)
	}
	_, err = admin.ParseTokenFile("tokens", []byte("# c\n\nshort-secret *\n"+readerToken+" Delete\n"))
	if err == nil || !strings.Contains(err.Error(), "tokens:3: token shorter") || !strings.Contains(err.Error(), `tokens:4: "Delete"`) {
		t.Errorf("token file errors: %v", err)
	}
	if strings.Contains(err.Error(), "short-secret") || strings.Contains(err.Error(), readerToken) {
		t.Errorf("token file error shows a token: %v", err)
	}
}
