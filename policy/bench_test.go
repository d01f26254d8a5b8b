package policy

import (
	"fmt"
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
