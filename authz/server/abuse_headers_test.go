package server_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"

	"github.com/wardenauthz/warden/internal/abusetest"
)

// TestAbuseManyHeaders: a CheckRequest with 200,000 header fields (about
// 3 MB, under server.max_recv_bytes) is refused with 431 for one pass over
// them (issue 16: 66 s of CPU, quadratic parsing before the limits), in
// both of Envoy's forms, and Warden answers a normal client after.
func TestAbuseManyHeaders(t *testing.T) {
	e := start(t)
	tok := e.token(t, "alice", "staff")
	n := abusetest.Count(20_000, 200_000)
	for _, form := range []string{"header_map", "headers"} {
		t.Run(form, func(t *testing.T) {
			req := sample(t, "01-get-bearer-jwt.json", tok)
			h := req.GetAttributes().GetRequest().GetHttp()
			if form == "header_map" {
				h.Headers = nil
				h.HeaderMap = &corev3.HeaderMap{}
				for i := range n {
					h.HeaderMap.Headers = append(h.HeaderMap.Headers, &corev3.HeaderValue{Key: "x-a", RawValue: fmt.Appendf(nil, "%d", i)})
				}
			} else {
				h.HeaderMap = nil
				h.Headers = map[string]string{}
				for i := range n {
					h.Headers[fmt.Sprintf("x-%d", i)] = "v"
				}
			}
			before := abusetest.Measure()
			resp, err := e.client.Check(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			if got := resp.GetDeniedResponse().GetStatus().GetCode(); got != 431 {
				t.Errorf("%d header fields: status %v, want 431", n, got)
			}
			// The message's own decoding (protobuf, both ends of the
			// loopback) is most of this; parsing is one pass.
			abusetest.Check(t, fmt.Sprintf("%d header fields", n), before, abusetest.Measure(), abusetest.Budget{
				CPU:        abusetest.Scale(time.Duration(n) * 10 * time.Microsecond),
				Heap:       abusetest.Scale[uint64](16 * abusetest.MiB),
				Goroutines: 20,
			})
		})
	}
	if r := e.reason(t, tok); r != "policy_allow" {
		t.Errorf("after: %s", r)
	}
}
