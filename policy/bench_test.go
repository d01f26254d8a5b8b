package policy

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/cedar-policy/cedar-go"

	"github.com/wardenauthz/warden/internal/token"
)

// benchSet builds n policies for n distinct users plus a handful of group
// rules: the shape of a large real deployment.
func benchSet(b *testing.B, n int) *Set {
	var sb strings.Builder
	for i := range n {
		fmt.Fprintf(&sb, "@id(\"u%d\") permit(principal == User::\"corp|u%d\", action in Action::\"read\", resource in Service::\"svc\") when { context.request.method == \"GET\" };\n", i, i)
	}
	sb.WriteString(`@id("admins") permit(principal in Group::"corp|admins", action, resource);` + "\n")
	sb.WriteString(`@id("no-delete") forbid(principal, action == Action::"DELETE /a/{id}", resource) unless { context has token && context.token.acr == "mfa" };` + "\n")
	s, err := Load(Source{FS: mapFSOf("p.cedar", sb.String()), Dir: ".", Name: "bench"}, propRoutes)
	if err != nil {
		b.Fatal(err)
	}
	return s
}

func benchRequest() *Request {
	return &Request{
		Principal: Principal{Type: "User", ID: "corp|u7", Groups: []string{"corp|staff"}},
		Method:    "GET", Path: "/a/42?x=1", Host: "svc.example", Scheme: "https", Protocol: "HTTP/1.1",
		Headers: []Header{{"accept", "application/json"}, {"user-agent", "bench"}, {"x-request-id", "r1"}},
		Time:    time.Unix(1_700_000_000, 0),
		Token:   &token.View{Iss: "https://idp", Sub: "u7", Aud: []string{"api"}, Scopes: []string{"a", "b"}, Exp: time.Unix(1_700_003_600, 0)},
	}
}

func BenchmarkDecide(b *testing.B) {
	for _, n := range []int{10, 1000, 10000} {
		s := benchSet(b, n)
		req := benchRequest()
		b.Run(fmt.Sprintf("indexed/%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if !s.Decide(req).Allow {
					b.Fatal("denied")
				}
			}
		})
		if n <= 1000 {
			b.Run(fmt.Sprintf("fullscan/%d", n), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					s.decide(req, false)
				}
			})
		}
	}
}

// BenchmarkEntityGet: reading an entity of the compact store from its
// cache against decoding it (attributes of several types, two parents).
func BenchmarkEntityGet(b *testing.B) {
	src := `[{"uid": {"type": "User", "id": "u"}, "parents": [{"type": "Group", "id": "g1"}, {"type": "Group", "id": "g2"}],
	  "attrs": {"level": 3, "dept": "eng", "ip": {"__extn": {"fn": "ip", "arg": "10.0.0.1"}}, "tags": ["a", "b"], "boss": {"__entity": {"type": "User", "id": "b"}}}}]`
	s, err := Load(Source{FS: mapFSOf("p.cedar", `@id("a") permit(principal, action, resource);`, EntitiesFile, src), Dir: ".", Name: "bench"}, propRoutes)
	if err != nil {
		b.Fatal(err)
	}
	uid := cedar.NewEntityUID("User", "u")
	b.Run("cached", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			s.entities.Get(uid)
		}
	})
	i, _ := s.entities.lookup(uid)
	b.Run("decode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			s.entities.decode(i)
		}
	})
}

// BenchmarkDecideManyTokens: warden-bench's shape of traffic, 600 tokens
// (200 users of three kinds) from their own source addresses, under
// policies that read only the token and the source, in a fixed shuffled
// order: how often the context cache (Set.context) holds the request's
// context shows in the allocations per decision.
func BenchmarkDecideManyTokens(b *testing.B) {
	src := `@id("readers") permit(principal in Group::"corp|readers", action, resource) when { context.token.scope.contains("orders:read") };
@id("nets") forbid(principal, action, resource) when { context.source.ip.isInRange(ip("10.0.0.0/8")) };
`
	s, err := Load(Source{FS: mapFSOf("p.cedar", src), Dir: ".", Name: "bench"}, propRoutes)
	if err != nil {
		b.Fatal(err)
	}
	var reqs []*Request
	for i := range 600 {
		reqs = append(reqs, &Request{
			Principal: Principal{Type: "User", ID: fmt.Sprintf("corp|reader-%d", i%200), Groups: []string{"corp|readers"}},
			Method:    "GET", Path: "/a/42", Host: "svc.example", Scheme: "https",
			SourceIP: netip.AddrFrom4([4]byte{198, 51, 100, byte(1 + i%250)}), SourcePort: 50000,
			Token: &token.View{Iss: "https://idp", Sub: fmt.Sprint(i), Scopes: []string{"openid", "orders:read"}},
		})
	}
	order := rand.New(rand.NewPCG(1, 2)).Perm(len(reqs))
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if !s.Decide(reqs[order[i%len(order)]]).Allow {
			b.Fatal("denied")
		}
	}
}
