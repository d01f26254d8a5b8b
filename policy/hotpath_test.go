package policy

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cedar-policy/cedar-go"
	"github.com/google/go-cmp/cmp"

	"github.com/wardenauthz/warden/internal/token"
)

// genMaxAgeForbids writes n @step_up_max_age forbids whose scopes cover
// every index path (staleAuth skips the forbids the index leaves out).
func genMaxAgeForbids(r *rand.Rand, n int) string {
	principals := []string{"principal", `principal == User::"u1"`, `principal in Group::"g%d"`, "principal is User",
		"principal is Client", `principal is User in Group::"g%d"`}
	actions := []string{"action", `action == Action::"GET /a/{id}"`, `action in Action::"read"`, `action in Action::"write"`,
		`action in [Action::"GET", Action::"POST /a"]`, `action == Action::"PATCH"`}
	resources := []string{"resource", `resource in Service::"svc"`, "resource is Item", `resource == Item::"1"`}
	pick := func(ss []string) string {
		s := ss[r.IntN(len(ss))]
		if strings.Contains(s, "%d") {
			s = fmt.Sprintf(s, r.IntN(5))
		}
		return s
	}
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "@id(\"age%d\")\n@step_up_max_age(\"%d\")\n", i, 30*(1+r.IntN(4)))
		if r.IntN(2) == 0 {
			b.WriteString("@step_up_acr(\"mfa\")\n")
		}
		fmt.Fprintf(&b, "forbid (%s, %s, %s) when { context.request.method == \"PROPFIND\" };\n", pick(principals), pick(actions), pick(resources))
	}
	return b.String()
}

// TestStaleAuthIndexedEqualsFullScan: the @step_up_max_age answer of an
// indexed decision (which evaluates only the forbids among the index's
// candidates) equals the full scan's, which evaluates every forbid's scope.
func TestStaleAuthIndexedEqualsFullScan(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	stepped := 0
	for i := range 120 {
		src := genPolicies(r, 1+r.IntN(20)) + genMaxAgeForbids(r, 1+r.IntN(4))
		s, err := load(t, map[string]string{"p.cedar": src, EntitiesFile: propEntities}, propRoutes...)
		if err != nil {
			t.Fatalf("set %d: %v\n%s", i, err, src)
		}
		for range 40 {
			req := genRequest(r)
			if r.IntN(4) != 0 {
				req.Token = &token.View{Iss: "i", Sub: req.Principal.ID}
				if r.IntN(3) != 0 {
					req.Token.AuthTime = time.Unix(req.Time.Unix()-int64(r.IntN(150)), 0)
				}
			}
			full, idx := s.decide(req, false), s.decide(req, true)
			if d := cmp.Diff(full, idx, cmp.Comparer(func(a, b Result) bool {
				return a.Allow == b.Allow && slices.Equal(a.Reasons, b.Reasons) && slices.Equal(a.Errors, b.Errors) &&
					a.Status == b.Status && cmp.Equal(a.StepUp, b.StepUp)
			})); d != "" {
				t.Fatalf("set %d, request %+v: full scan vs index (-full +index):\n%s\npolicies:\n%s", i, req, d, src)
			}
			if full.StepUp != nil && full.StepUp.MaxAge >= 0 {
				stepped++
			}
		}
	}
	if stepped == 0 {
		t.Fatal("no request was ever sent to step up for its age: the generator tests nothing")
	}
}

// mapEntities are propEntities and a resource the set defines.
const mapEntities = `[
 {"uid": {"type": "Group", "id": "g0"}, "parents": [{"type": "Group", "id": "g1"}], "attrs": {}},
 {"uid": {"type": "Group", "id": "g2"}, "parents": [{"type": "Group", "id": "g3"}], "attrs": {}},
 {"uid": {"type": "Group", "id": "g3"}, "parents": [{"type": "Group", "id": "g4"}], "attrs": {}},
 {"uid": {"type": "User", "id": "u1"}, "parents": [{"type": "Group", "id": "g2"}], "attrs": {"age": 7}},
 {"uid": {"type": "Item", "id": "2"}, "parents": [{"type": "Service", "id": "other"}], "attrs": {"owner": "u2"}, "tags": {"t": 1}}
]`

var mapRoutes = append(slices.Clone(propRoutes),
	RouteConfig{Method: "*", Path: "/m/{x}/{y}", Resource: `Doc::"d-{x}.{y}"`},
	RouteConfig{Service: "svc", Method: "PUT", Path: "/lit", Resource: `Doc::"fixed"`},
	RouteConfig{Service: "svc", Method: "GET", Path: "/f/{rest...}"},
)

// sharedTokens are token views that requests share, as identity's cache
// shares them between the Checks presenting one token.
var sharedTokens = []*token.View{
	{Iss: "i", Sub: "u1", Acr: "mfa", AuthTime: time.Unix(1_699_999_990, 0)},
	{Iss: "i", Sub: "u1", Claims: map[string]any{"n": json.Number("3")}},
	{Iss: "i", Sub: "u2", Jti: "j"},
}

// genMapRequest varies every input the mapping reads.
func genMapRequest(r *rand.Rand) *Request {
	req := genRequest(r)
	pick := func(ss ...string) string { return ss[r.IntN(len(ss))] }
	req.Method = pick("GET", "get", "HEAD", "POST", "PUT", "DELETE", "PATCH", "CONNECT", "PROPFIND")
	req.Path = pick("/a/1", "/a/2", "/a/%32", "/a", "/b", "/a/1?x=1&x=2&y=", "/m/p/q", "/m/p%2Fq/r", "/M/a/b", "/lit",
		"/f/x/y", "/a//1", "/a/1/", "/a/./1", "", "/a/1?%zz", "/m/x/y?q=1")
	req.Host = pick("svc.example:8080", "svc.example", "other.example", "", "[::1]:80", "Svc.Example.")
	req.Scheme = pick("", "https")
	req.Protocol = pick("", "HTTP/1.1")
	req.ID = pick("", "r1")
	if r.IntN(2) == 0 {
		req.Headers = append(req.Headers, Header{"x-n", "2"}, Header{"authorization", "Bearer x"}, Header{":path", "/"}, Header{"accept", "a"})
	}
	switch r.IntN(4) {
	case 0:
		req.Extensions = map[string]string{"service": pick("svc", "zzz")}
	case 1:
		req.Extensions = map[string]string{"service": "svc", "other": "o"}
	}
	switch r.IntN(4) {
	case 0:
		req.Principal = Principal{Type: "Workload", ID: "spiffe://td/ns/a/sa/b"}
		req.Workload = &Workload{ID: "spiffe://td/ns/a/sa/b", TrustDomain: "td", Namespace: pick("", "a"), ServiceAccount: "b"}
	case 1:
		req.Principal.Type, req.Principal.Attributes = "ApiKey", map[string]string{"team": pick("x", "y")}
	case 2:
		req.Workload = &Workload{ID: "spiffe://td/w", TrustDomain: "td"}
	}
	if r.IntN(2) == 0 {
		req.Credential = pick("jwt", "dpop", "mtls_bound", "introspected", "api_key", "other")
	}
	if r.IntN(2) == 0 {
		req.SourceIP, req.SourcePort = netip.MustParseAddr(pick("127.0.0.1", "::ffff:10.0.0.1", "fe80::1%eth0", "10.0.0.1")), uint32(r.IntN(3))
	}
	switch r.IntN(4) {
	case 0:
		req.Time = time.Time{}
	case 1: // the same second, another millisecond
		req.Time = req.Time.Add(time.Duration(r.IntN(3)) * time.Millisecond)
	}
	switch {
	case req.Token != nil && r.IntN(2) == 0:
		req.Token = &token.View{Iss: "i", Sub: req.Principal.ID, Groups: []string{"g1"}, AuthTime: req.Time.Add(-time.Minute),
			Claims: map[string]any{"n": json.Number("3")}}
	case r.IntN(2) == 0: // a cached token: the same view in many requests
		req.Token = sharedTokens[r.IntN(len(sharedTokens))]
	}
	return req
}

// equalMapped reports how new differs from the old mapping ("" when not).
func equalMapped(old, new *mapped) string {
	var diffs []string
	check := func(ok bool, what string, a, b any) {
		if !ok {
			diffs = append(diffs, fmt.Sprintf("%s: old %v, new %v", what, a, b))
		}
	}
	uids := func(a, b []cedar.EntityUID) bool { return slices.Equal(a, b) }
	check(old.req.Principal == new.req.Principal, "principal", old.req.Principal, new.req.Principal)
	check(old.req.Action == new.req.Action, "action", old.req.Action, new.req.Action)
	check(old.req.Resource == new.req.Resource, "resource", old.req.Resource, new.req.Resource)
	check(old.req.Context.Equal(new.req.Context), "context", old.req.Context, new.req.Context)
	check(old.route == new.route, "route", old.route, new.route)
	check(old.service == new.service, "service", old.service, new.service)
	check(fmt.Sprint(old.pathErr) == fmt.Sprint(new.pathErr), "path error", old.pathErr, new.pathErr)
	check(old.unrouted == new.unrouted, "unrouted", old.unrouted, new.unrouted)
	check(uids(old.actions, new.actions), "actions", old.actions, new.actions)
	check(uids(old.principals, new.principals), "principals", old.principals, new.principals)
	check(uids(old.principalParents, new.principalParents), "principal parents", old.principalParents, new.principalParents)
	check(uids(old.resourceParents, new.resourceParents), "resource parents", old.resourceParents, new.resourceParents)
	check(old.principalAttrs.Equal(new.principalAttrs), "principal attributes", old.principalAttrs, new.principalAttrs)
	check(len(old.ents.ents) == len(new.ents.ents), "overlay entities", len(old.ents.ents), len(new.ents.ents))
	for i := range min(len(old.ents.ents), len(new.ents.ents)) {
		a, b := old.ents.ents[i], new.ents.ents[i]
		check(a.UID == b.UID && a.Parents.Equal(b.Parents) && a.Attributes.Equal(b.Attributes) && a.Tags.Equal(b.Tags),
			fmt.Sprintf("overlay entity %d", i), a, b)
	}
	return strings.Join(diffs, "\n")
}

// decideOld is decide on the old mapping.
func (s *Set) decideOld(r *Request) Result {
	return s.finish(s.mapRequestOld(r), true)
}

var resultCmp = []cmp.Option{
	cmp.Comparer(func(a, b cedar.Record) bool { return a.Equal(b) }),
	cmp.Comparer(func(a, b *cedar.Record) bool { return a == nil && b == nil || a != nil && b != nil && a.Equal(*b) }),
	cmp.Comparer(func(a, b error) bool { return fmt.Sprint(a) == fmt.Sprint(b) }),
}

// TestMapRequestDifferential: the request mapping (pooled scratch, cached
// principals, memoised parent sets and context parts) maps generated
// requests exactly as the old mapping (mapold_test.go) did, for the context
// a set needs and the whole one, and the decisions, records and
// explanations made from it are the old ones. One scratch serves every
// request in turn, so state left from one request would show in the next.
func TestMapRequestDifferential(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	conds := []string{`when { context.request.method == "GET" }`, `when { context.request.headers["x-n"] == "1" }`,
		`when { context.path_params.id == "1" }`, `when { context.route.template == "/a/{id}" }`,
		`when { context.credential.kind == "jwt" }`, `when { context.token.n == 3 }`, `when { context has workload }`,
		`when { principal.team == "x" }`, `when { resource.owner == "u2" }`, `when { principal.trust_domain == "td" }`}
	sets, reqs := 80, 60
	if testing.Short() {
		sets = 20
	}
	sc := newScratch()
	allowed := 0
	for i := range sets {
		var b strings.Builder
		b.WriteString(genPolicies(r, 1+r.IntN(15)))
		b.WriteString(genMaxAgeForbids(r, r.IntN(2)))
		for j := range 1 + r.IntN(3) {
			fmt.Fprintf(&b, "@id(\"c%d\")\npermit(principal, action, resource) %s;\n", j, conds[r.IntN(len(conds))])
		}
		src := b.String()
		s, err := Load(Source{FS: mapFSOf("p.cedar", src, EntitiesFile, mapEntities), Dir: ".", Name: "diff", Replayable: r.IntN(2) == 0}, mapRoutes)
		if err != nil {
			t.Fatalf("set %d: %v\n%s", i, err, src)
		}
		whole := *s
		whole.needs = fullContext
		for range reqs {
			req := genMapRequest(r)
			for _, set := range []*Set{s, &whole} {
				old := set.mapRequestOld(req)
				m := set.mapInto(req, sc)
				if d := equalMapped(old, m); d != "" {
					t.Fatalf("set %d, request %+v: the mapping differs:\n%s\npolicies:\n%s", i, req, d, src)
				}
				sc.release()
				got, want := set.Decide(req), set.decideOld(req)
				if d := cmp.Diff(want, got, resultCmp...); d != "" {
					t.Fatalf("set %d, request %+v: decision (-old +new):\n%s\npolicies:\n%s", i, req, d, src)
				}
				if got.Allow {
					allowed++
				}
			}
		}
	}
	if allowed == 0 {
		t.Fatal("no request was ever allowed: the generator tests nothing")
	}
}

// TestDecideConcurrentScratch: concurrent decisions share the scratch pool
// and the principal and route caches, and each is still the old mapping's
// (go test -race also checks that nothing of a scratch outlives its
// decision).
func TestDecideConcurrentScratch(t *testing.T) {
	src := genPolicies(rand.New(rand.NewPCG(9, 10)), 30) + `@id("g") permit(principal in Group::"g1", action, resource) when { context.route.template like "*" };`
	s, err := Load(Source{FS: mapFSOf("p.cedar", src, EntitiesFile, mapEntities), Dir: ".", Name: "conc", Replayable: true}, mapRoutes)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan string, 4)
	for g := range 4 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(11, uint64(g)))
			for range 150 {
				req := genMapRequest(r)
				if d := cmp.Diff(s.decideOld(req), s.Decide(req), resultCmp...); d != "" {
					errs <- fmt.Sprintf("request %+v (-old +new):\n%s", req, d)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

// TestSourceRecordCache: whatever the cache holds (more addresses and
// ports than it has slots, so they collide), context.source is the record
// of the request's own address and port.
func TestSourceRecordCache(t *testing.T) {
	check := func(ip netip.Addr, port uint32) {
		t.Helper()
		want := cedar.NewRecord(cedar.RecordMap{"ip": cedar.IPAddr(netip.PrefixFrom(ip, ip.BitLen())), "port": cedar.Long(port)})
		if got := sourceRecord(ip, port); !want.Equal(got) {
			t.Fatalf("%s port %d: got %v, want %v", ip, port, got, want)
		}
	}
	for range 2 {
		for port := range uint32(1000) { // one address, many ports
			check(netip.MustParseAddr("10.0.0.1"), port)
		}
		for i := range 1000 { // one port, many addresses
			check(netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}), 443)
			check(netip.AddrFrom16([16]byte{0xfd, 15: byte(i)}), 443)
		}
	}
}

// BenchmarkDecideShapes: the request shapes a Check brings (a token's
// user, an mTLS workload, an API key), each with its source address and
// credential kind, against a set that reads them.
func BenchmarkDecideShapes(b *testing.B) {
	src := `@id("staff") permit(principal in Group::"g1", action in Action::"read", resource in Service::"svc") when { context.source.ip.isLoopback() };
@id("wl") permit(principal is Workload, action, resource) when { principal.trust_domain == "td" && context.credential.kind == "mtls_bound" };
@id("key") permit(principal is ApiKey, action, resource) when { principal.team == "x" && context.route.template == "/a/{id}" };
@id("age") @step_up_max_age("300") forbid(principal, action in Action::"write", resource) when { context.token.acr == "mfa" };`
	s, err := Load(Source{FS: mapFSOf("p.cedar", src), Dir: ".", Name: "bench"}, propRoutes)
	if err != nil {
		b.Fatal(err)
	}
	base := Request{Method: "GET", Path: "/a/42", Host: "svc.example", Time: time.Unix(1_700_000_000, 0),
		SourceIP: netip.MustParseAddr("127.0.0.1"), SourcePort: 40000}
	user, wl, key := base, base, base
	user.Principal = Principal{Type: "User", ID: "corp|u7", Groups: []string{"g1", "g2"}}
	user.Token, user.Credential = &token.View{Iss: "https://idp", Sub: "u7", AuthTime: time.Unix(1_699_999_990, 0)}, "jwt"
	wl.Principal, wl.Credential = Principal{Type: "Workload", ID: "spiffe://td/ns/a/sa/b"}, "mtls_bound"
	wl.Workload = &Workload{ID: "spiffe://td/ns/a/sa/b", TrustDomain: "td", Namespace: "a", ServiceAccount: "b"}
	key.Principal, key.Credential = Principal{Type: "ApiKey", ID: "k1", Attributes: map[string]string{"team": "x"}}, "api_key"
	for _, tc := range []struct {
		name string
		req  *Request
	}{{"user", &user}, {"workload", &wl}, {"apikey", &key}} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if !s.Decide(tc.req).Allow {
					b.Fatal("denied")
				}
			}
		})
	}
}

// TestContextCache: a context kept in the set's cache is served only to a
// request with the same token view, credential kind, source, millisecond,
// route and service, for the same needs: requests that differ in one of
// them alone (more than the cache has slots, so they collide) each get
// their own context.
func TestContextCache(t *testing.T) {
	src := `@id("a") permit(principal, action, resource) when { context has token && context.source.port > 0 && context.now.toDate() == context.now.toDate() && context.credential.kind == "jwt" && context.route.service == "svc" };`
	s, err := Load(Source{FS: mapFSOf("p.cedar", src), Dir: ".", Name: "ctx"}, propRoutes)
	if err != nil {
		t.Fatal(err)
	}
	if s.needs.wantRequest() {
		t.Fatal("the set reads context.request: its contexts are never kept")
	}
	sc := newScratch()
	check := func(set *Set, req *Request) {
		t.Helper()
		old, m := set.mapRequestOld(req), set.mapInto(req, sc)
		if !old.req.Context.Equal(m.req.Context) {
			t.Fatalf("request %+v: context %v, want %v", req, m.req.Context, old.req.Context)
		}
		sc.release()
	}
	base := Request{Principal: Principal{Type: "User", ID: "u"}, Method: "POST", Path: "/a", Host: "svc.example",
		Token: sharedTokens[0], Credential: "jwt", SourceIP: netip.MustParseAddr("10.0.0.1"), SourcePort: 1, Time: time.Unix(1_700_000_000, 0)}
	// A set that needs all but the credential: its contexts fall in the
	// same slots (the credential is not hashed), and differ.
	o := *s
	o.needs = newCtxNeeds()
	for k := range s.needs.top {
		o.needs.top[k] = k != "credential"
	}
	others := []*Set{s, &o}
	for range 2 {
		for i := range 1000 {
			req := base
			req.Time = base.Time.Add(time.Duration(i) * time.Millisecond)
			check(s, &req)
			req = base
			req.SourcePort = uint32(i)
			check(s, &req)
			req = base
			req.Extensions = map[string]string{"service": fmt.Sprintf("svc%d", i)}
			check(s, &req)
			req = base
			req.Credential = []string{"jwt", "dpop", "api_key"}[i%3]
			check(s, &req)
			req = base
			req.Token = sharedTokens[i%2] // the same subject and no jti: the same slot
			check(s, &req)
			check(others[i%len(others)], &base)
		}
	}
}
