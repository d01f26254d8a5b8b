package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"google.golang.org/protobuf/proto"

	"github.com/wardenauthz/warden/authz/checkreq"
	"github.com/wardenauthz/warden/identity/oidctest"
)

// fixture is what one benchmark serves and sends: a config and policy
// directory on disk, and Envoy-shaped requests with their expected answers.
type fixture struct {
	dir, config, policies string
	kinds                 []kind
}

// kind is one class of request in the mix.
type kind struct {
	name     string
	weight   int
	want     int32 // gRPC status code Warden must answer (0 allow, 7 deny, 16 unauthenticated)
	wantHTTP int32 // the HTTP status Envoy sends for it (200, 403, 401): what opa-rbac is held to
	reqs     [][]byte
	size     int
}

// The application policies: admins may do anything to orders (with MFA for
// DELETE), readers may read with the orders:read scope. The rest of the set
// is generated tenant policies that never apply to these principals but are
// there to be indexed past, as in a shared Warden.
const appPolicies = `@id("admins-all")
permit (principal in Group::"corp|admins", action, resource in Service::"orders");

@id("readers-get")
permit (principal in Group::"corp|readers", action == Action::"GET /v1/orders/{id}", resource in Service::"orders")
when { context.token.scope.contains("orders:read") };

@id("delete-needs-mfa")
forbid (principal, action == Action::"DELETE /v1/orders/{id}", resource)
unless { context.token has acr && context.token.acr == "mfa" };
`

const appRoutes = `    - {service: orders, method: GET, path: "/v1/orders/{id}", resource: 'Order::"{id}"'}
    - {service: orders, method: DELETE, path: "/v1/orders/{id}", resource: 'Order::"{id}"'}
    - {service: orders, method: POST, path: /v1/orders}
`

// tenantPolicies writes n policies for other teams and services.
func tenantPolicies(n int, variant string) string {
	var b strings.Builder
	for i := range n {
		switch i % 3 {
		case 0:
			fmt.Fprintf(&b, "@id(\"tenant-%d%s\")\npermit (principal in Group::\"corp|team-%d\", action in [Action::\"GET /v1/orders/{id}\", Action::\"POST /v1/orders\"], resource in Service::\"svc-%d\")\nwhen { context.source.ip.isInRange(ip(\"10.%d.0.0/16\")) };\n\n", i, variant, i, i%50, i%250)
		case 1:
			fmt.Fprintf(&b, "@id(\"tenant-%d%s\")\npermit (principal == User::\"corp|svc-user-%d\", action == Action::\"GET /v1/orders/{id}\", resource)\nwhen { context.token.scope.contains(\"tenant-%d\") };\n\n", i, variant, i, i)
		default:
			fmt.Fprintf(&b, "@id(\"tenant-%d%s\")\nforbid (principal in Group::\"corp|suspended-%d\", action, resource);\n\n", i, variant, i)
		}
	}
	return b.String()
}

// writeEntities writes n User entities, members of tenant teams.
func writeEntities(path string, n int) error {
	type uid struct {
		Type string `json:"type"`
		ID   string `json:"id"`
	}
	type entity struct {
		UID     uid            `json:"uid"`
		Parents []uid          `json:"parents"`
		Attrs   map[string]any `json:"attrs"`
	}
	ents := make([]entity, 0, n)
	for i := range n {
		ents = append(ents, entity{
			UID:     uid{"User", fmt.Sprintf("corp|member-%d", i)},
			Parents: []uid{{"Group", fmt.Sprintf("corp|team-%d", i%1000)}},
			Attrs:   map[string]any{"department": fmt.Sprintf("dept-%d", i%40), "level": i % 7},
		})
	}
	b, err := json.Marshal(ents)
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

// writePolicies (re)writes the policy file atomically (a rename, as a
// ConfigMap update or a deploy tool does).
func writePolicies(dir string, n int, variant string) error {
	src := appPolicies + "\n" + tenantPolicies(max(n-3, 0), variant)
	tmp := filepath.Join(dir, ".policies.cedar.tmp")
	if err := os.WriteFile(tmp, []byte(src), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, "policies.cedar"))
}

// newFixture writes the config and policies into dir and mints the tokens.
func newFixture(dir string, o options, is *oidctest.Issuer, redisAddr string) (*fixture, error) {
	f := &fixture{dir: dir, config: filepath.Join(dir, "warden.yaml"), policies: filepath.Join(dir, "policies")}
	if err := os.MkdirAll(f.policies, 0o755); err != nil {
		return nil, err
	}
	if err := writePolicies(f.policies, o.policies, ""); err != nil {
		return nil, err
	}
	if o.entities > 0 {
		if err := writeEntities(filepath.Join(f.policies, "entities.json"), o.entities); err != nil {
			return nil, err
		}
	}
	store := "  kind: memory\n"
	if redisAddr != "" {
		store = fmt.Sprintf("  kind: redis\n  redis:\n    addrs: [%q]\n", redisAddr)
	}
	reload := "off"
	if o.mode == "reload" {
		reload = "watch"
	}
	// The server as README advises without with_request_body (and as the
	// Istio kit has it): 128 KiB messages, so that max_buffered_bytes
	// shares 2,047 streams rather than the 63 of 4 MiB ones, which the
	// benchmark's 64 calls in flight would overrun.
	cfg := fmt.Sprintf(`# Written by warden-bench.
server:
  max_recv_bytes: 131072
  limits: {max_header_bytes: 98304, max_body_bytes: 16384}
identity:
  issuers:
    - {name: corp, issuer: %q, audiences: [api://orders], algorithms: [RS256]}
policy:
  dir: ./policies
  reload: %s
  routes:
%sstore:
%sratelimit:
  rules:
    - {name: per-user, when: {principal_type: User}, key: [principal], limit: 1000000000, per: 1m}
decision_log:
  sinks: [{kind: file, path: %q}]
admin:
  addr: "off"
`, is.URL, reload, appRoutes, store, filepath.Join(dir, "decisions.jsonl"))
	if err := os.WriteFile(f.config, []byte(cfg), 0o644); err != nil {
		return nil, err
	}
	return f, f.mint(o, is)
}

// mint builds the request mix: Envoy-shaped CheckRequests (checkreq, as
// the ext_authz HTTP filter sends them) from o.users distinct users per role.
func (f *fixture) mint(o options, is *oidctest.Issuer) error {
	now := time.Now()
	token := func(sub string, ttl time.Duration, extra map[string]any) (string, error) {
		c := map[string]any{
			"iss": is.URL, "sub": sub, "aud": "api://orders", "iat": now.Unix(), "nbf": now.Unix(),
			"exp": now.Add(ttl).Unix(), "jti": fmt.Sprintf("%s-%d", sub, now.UnixNano()), "client_id": "web",
		}
		for k, v := range extra {
			c[k] = v
		}
		b, err := json.Marshal(c)
		if err != nil {
			return "", err
		}
		return oidctest.Mint(is.Key(""), b, map[jose.HeaderKey]any{"typ": "at+jwt"})
	}
	type spec struct {
		name, method, path string
		sub                string // "" anonymous
		ttl                time.Duration
		claims             map[string]any
		want               int32
	}
	specs := []spec{
		{"reader", "GET", "/v1/orders/%d", "reader-%d", time.Hour, map[string]any{"groups": []string{"readers"}, "scope": "openid orders:read"}, 0},
		{"admin", "DELETE", "/v1/orders/%d", "admin-%d", time.Hour, map[string]any{"groups": []string{"admins"}, "scope": "openid orders:write", "acr": "mfa"}, 0},
		{"denied", "DELETE", "/v1/orders/%d", "reader-%d", time.Hour, map[string]any{"groups": []string{"readers"}, "scope": "openid orders:read"}, 7},
		{"anonymous", "GET", "/v1/orders/%d", "", 0, nil, 16},
		{"expired", "GET", "/v1/orders/%d", "reader-%d", -time.Hour, map[string]any{"groups": []string{"readers"}, "scope": "openid orders:read"}, 16},
	}
	for _, s := range specs {
		k := kind{name: s.name, weight: o.mix[s.name], want: s.want, wantHTTP: map[int32]int32{0: 200, 7: 403, 16: 401}[s.want]}
		if k.weight == 0 {
			continue
		}
		for u := range o.users {
			h := []string{
				"accept: application/json",
				"accept-encoding: gzip, deflate, br",
				"accept-language: en-GB,en;q=0.9",
				"user-agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
				"traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
				"cookie: session=3c6e0b8a9c15224a8228b9a98ca1531d; theme=dark",
			}
			if s.sub != "" {
				tok, err := token(fmt.Sprintf(s.sub, u), s.ttl, s.claims)
				if err != nil {
					return err
				}
				h = append(h, "authorization: Bearer "+tok)
			}
			req, err := checkreq.Build(checkreq.HTTP{
				Method: s.method, URL: "https://api.example.com" + fmt.Sprintf(s.path, 1000+u), Headers: h,
				SourceIP: fmt.Sprintf("198.51.100.%d", 1+u%250),
			})
			if err != nil {
				return err
			}
			b, err := proto.Marshal(req)
			if err != nil {
				return err
			}
			k.reqs, k.size = append(k.reqs, b), k.size+len(b)
		}
		k.size /= len(k.reqs)
		f.kinds = append(f.kinds, k)
	}
	if len(f.kinds) == 0 {
		return fmt.Errorf("the request mix is empty")
	}
	return nil
}
