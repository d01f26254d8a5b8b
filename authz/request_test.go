package authz

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
)

// headerRequest is a CheckRequest with n header fields in Envoy's
// header_map form (raw, not joined), or its headers map form; name(i) names
// field i.
func headerRequest(n int, asMap bool, name func(i int) string) *authv3.CheckRequest {
	h := &authv3.AttributeContext_HttpRequest{Method: "GET", Path: "/", Host: "h"}
	if asMap {
		h.Headers = make(map[string]string, n)
		for i := range n {
			h.Headers[name(i)] = "v"
		}
	} else {
		h.HeaderMap = &corev3.HeaderMap{Headers: make([]*corev3.HeaderValue, n)}
		for i := range n {
			h.HeaderMap.Headers[i] = &corev3.HeaderValue{Key: name(i), RawValue: []byte("0123456789")}
		}
	}
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{Http: h}}}
}

func distinct(i int) string { return fmt.Sprintf("x-h-%d", i) }
func repeated(int) string   { return "x-same" }

// allocated is the bytes f allocates (all goroutines; the test runs alone).
func allocated(f func()) uint64 {
	var a, b runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&a)
	f()
	runtime.ReadMemStats(&b)
	return b.TotalAlloc - a.TotalAlloc
}

// TestParseRequestRefusesHeaderFloodUnread: a request over the header
// limits is refused before any per-header work (issue 16: 200,000 header
// fields cost 66 s of CPU before the 431). Counting allocations, not time:
// the refused request allocates the same whether it carries 1,000 header
// fields or 100,000, in both of Envoy's forms.
func TestParseRequestRefusesHeaderFloodUnread(t *testing.T) {
	l := Limits{MaxHeaders: 128, MaxHeaderBytes: 96 << 10}
	now := time.Now()
	for _, asMap := range []bool{false, true} {
		small, large := headerRequest(1000, asMap, distinct), headerRequest(100_000, asMap, distinct)
		a := testing.AllocsPerRun(5, func() { parseRequest(small, now, l) })
		b := testing.AllocsPerRun(5, func() { parseRequest(large, now, l) })
		if b > a+2 {
			t.Errorf("map form %v: %v allocations for 100,000 header fields, %v for 1,000: per-header work before the limits", asMap, b, a)
		}
		if d := l.screen(new(parseRequest(large, now, l))); d == nil || d.status != 431 {
			t.Errorf("map form %v: 100,000 header fields not refused with 431: %+v", asMap, d)
		}
	}
}

// TestParseRequestHeadersLinear: with no limits, the bytes parsing
// allocates per header field stay flat as the count grows 16-fold, with
// distinct names and with one name repeated (joined with ","; the old
// append-to-the-joined-string was quadratic in bytes).
func TestParseRequestHeadersLinear(t *testing.T) {
	now := time.Now()
	for _, c := range []struct {
		name string
		f    func(int) string
	}{{"distinct", distinct}, {"repeated", repeated}} {
		t.Run(c.name, func(t *testing.T) {
			per := func(n int) float64 {
				req := headerRequest(n, false, c.f)
				return float64(allocated(func() { parseRequest(req, now, Limits{}) })) / float64(n)
			}
			small, large := per(2000), per(32000)
			if large > 2*small+64 {
				t.Errorf("%.0f bytes per header field at 32,000, %.0f at 2,000: not linear", large, small)
			}
		})
	}
}

// TestParseRequestJoinsRepeatedHeaders: repeated fields are joined with
// "," in the order sent, names lower-cased, whichever case they came in.
func TestParseRequestJoinsRepeatedHeaders(t *testing.T) {
	h := &authv3.AttributeContext_HttpRequest{HeaderMap: &corev3.HeaderMap{Headers: []*corev3.HeaderValue{
		{Key: ":path", RawValue: []byte("/p")}, {Key: "X-A", RawValue: []byte("1")}, {Key: "b", Value: "2"},
		{Key: "x-a", RawValue: []byte("3")}, {Key: "x-a", RawValue: []byte("2")},
	}}}
	in := parseRequest(&authv3.CheckRequest{Attributes: &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{Http: h}}}, time.Now(), Limits{})
	var got []string
	for _, h := range in.headers {
		got = append(got, h.Name+"="+h.Value)
	}
	if want := ":path=/p b=2 x-a=1,3,2"; strings.Join(got, " ") != want {
		t.Errorf("got %q, want %q", strings.Join(got, " "), want)
	}
	if in.path != "/p" || in.headerCount != 5 || in.header("x-a") != "1,3,2" || in.header("c") != "" {
		t.Errorf("path %q, count %d, x-a %q", in.path, in.headerCount, in.header("x-a"))
	}
}

func BenchmarkParseRequestHeaders(b *testing.B) {
	now := time.Now()
	for _, n := range []int{100, 10_000, 200_000} {
		for _, l := range []struct {
			name string
			l    Limits
		}{{"unlimited", Limits{}}, {"limited", Limits{MaxHeaders: 128, MaxHeaderBytes: 96 << 10}}} {
			b.Run(fmt.Sprintf("%s/%d", l.name, n), func(b *testing.B) {
				req := headerRequest(n, false, distinct)
				b.ReportAllocs()
				for b.Loop() {
					parseRequest(req, now, l.l)
				}
			})
		}
	}
}

// BenchmarkParseRequest: a header_map request within the limits (read),
// and one over the header count limit (measured, then refused unread: it
// should not copy its values).
func BenchmarkParseRequest(b *testing.B) {
	now := time.Unix(1_700_000_000, 0)
	name := func(i int) string { return fmt.Sprintf("x-h%d", i) }
	for _, c := range []struct {
		name string
		n    int
	}{{"read", 20}, {"refused", 1000}} {
		req := headerRequest(c.n, false, name)
		for _, hv := range req.GetAttributes().GetRequest().GetHttp().GetHeaderMap().GetHeaders() {
			hv.RawValue = []byte(strings.Repeat("v", 200))
		}
		l := Limits{MaxHeaders: 100, MaxHeaderBytes: 1 << 20}
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				parseRequest(req, now, l)
			}
		})
	}
}
