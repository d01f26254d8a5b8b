package authz

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/wardenauthz/warden/authz/checkreq"
	"github.com/wardenauthz/warden/identity"
	"github.com/wardenauthz/warden/internal/token"
	"github.com/wardenauthz/warden/policy"
)

// userAuth says every caller is one verified user (the end-to-end tests
// use the real authenticator; here only the response matters).
type userAuth struct{}

func (userAuth) Authenticate(context.Context, identity.Input) (identity.Identity, error) {
	t := &identity.Token{View: token.View{Iss: "https://idp.example", Sub: "alice",
		Groups: []string{"staff"}, Scopes: []string{"orders:read"}, Exp: time.Unix(4102444800, 0)},
		Issuer: "corp", Subject: "corp|alice"}
	t.Seal("User", "corp|alice")
	return identity.Identity{Kind: identity.User, ID: "corp|alice", Groups: []string{"corp|staff"}, Token: t}, nil
}

type fixedSet struct{ s *policy.Set }

func (f fixedSet) Current() *policy.Set { return f.s }

// spellingModel matches every spelling of prefix an upstream may read as
// it: each letter in either case, each "-" or "_" as either.
func spellingModel(prefix string) *regexp.Regexp {
	var b strings.Builder
	b.WriteString("^")
	for _, c := range prefix {
		switch {
		case c == '-' || c == '_':
			b.WriteString("[-_]")
		case 'a' <= c && c <= 'z':
			b.WriteString("[" + string(c) + string(c-'a'+'A') + "]")
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	return regexp.MustCompile(b.String())
}

// FuzzIdentityHeaderSpellings: whatever headers a client sends, after Envoy
// applies an allow (sets, then removals) no header in any spelling of the
// prefix is left but those Warden set, under their exact names and values.
func FuzzIdentityHeaderSpellings(f *testing.F) {
	for _, s := range [][2]string{
		{"x-warden-groups", "admins"}, {"x_warden_groups", "admins"}, {"X_Warden-Principal", `User::"corp|root"`},
		{"x-warden_admin", "true"}, {"X-WARDEN-", "x"}, {"x_warden_decision_id", "d"}, {"x-warden", "x"},
		{"x-wardenx", "x"}, {"y-warden-groups", "x"}, {"x-warden-principal", "spoof"},
	} {
		f.Add(s[0], s[1], "x-warden-")
	}
	f.Add("x-corp_id-user", "x", "x-corp_id-")
	f.Add("X_CORP-ID_USER", "x", "x-corp_id-")
	set, err := policy.Load(policy.Source{FS: fstest.MapFS{"p.cedar": {Data: []byte(`@id("all") permit (principal, action, resource);`)}}, Dir: ".", Name: "mem"}, nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, name, value, prefix string) {
		// The config's rule for a prefix, and what Envoy lets through as a
		// header name (an RFC 9110 token, lower-cased).
		if prefix == "" || prefix != strings.ToLower(prefix) || strings.HasPrefix(prefix, "x-envoy-") || !isToken(prefix) || !isToken(name) {
			return
		}
		name = strings.ToLower(name)
		a := New(Options{Authenticator: userAuth{}, Policies: fixedSet{set}, HeadersPrefix: prefix})
		req, err := checkreq.Build(checkreq.HTTP{Method: "GET", URL: "http://api.example.com/x", Headers: []string{name + ": " + value}})
		if err != nil {
			return
		}
		resp, _ := a.Check(context.Background(), req)
		ok := resp.GetOkResponse()
		if ok == nil {
			t.Fatalf("not allowed: %v", resp.GetStatus())
		}
		// Envoy: the client's headers, Warden's set (overwriting), then
		// its removals.
		h := map[string]string{}
		for k, v := range req.GetAttributes().GetRequest().GetHttp().GetHeaders() {
			h[k] = v
		}
		ours := map[string]string{}
		for _, o := range ok.GetHeaders() {
			h[o.GetHeader().GetKey()] = o.GetHeader().GetValue()
			ours[o.GetHeader().GetKey()] = o.GetHeader().GetValue()
		}
		for _, r := range ok.GetHeadersToRemove() {
			if _, set := ours[r]; set {
				t.Fatalf("removes its own header %s", r)
			}
			delete(h, r)
		}
		model := spellingModel(prefix)
		for k, v := range h {
			if model.MatchString(k) && (ours[k] == "" || ours[k] != v) {
				t.Fatalf("prefix %q: client header %q: %q reaches the upstream", prefix, k, v)
			}
		}
	})
}

func isToken(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 0x80 || c <= ' ' || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 || c == 0x7f {
			return false
		}
	}
	return s != "" && !strings.EqualFold(s, "host")
}
