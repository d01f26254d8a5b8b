package authz

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/encoding"
	protoenc "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
)

// TestCodecMarshalPooledBuffer: the codec's CheckResponse, written into a
// pooled buffer, is encodeCheckResponse's bytes, for an answer that fits
// the buffer and for one that outgrows it; a buffer given back and reused
// for another answer leaves the first one's bytes nowhere in it.
func TestCodecMarshalPooledBuffer(t *testing.T) {
	c := codec{encoding.GetCodecV2(protoenc.Name)}
	deny := func(body string) *authv3.CheckResponse {
		return &authv3.CheckResponse{Status: &rpcstatus.Status{Code: 7, Message: "policy_deny"},
			HttpResponse: &authv3.CheckResponse_DeniedResponse{DeniedResponse: &authv3.DeniedHttpResponse{
				Status: &typev3.HttpStatus{Code: 403}, Body: body}}}
	}
	for _, body := range []string{"first-" + strings.Repeat("a", 100), strings.Repeat("b", 64<<10), "short"} {
		m := deny(body)
		want, err := encodeCheckResponse(nil, m)
		if err != nil {
			t.Fatal(err)
		}
		got, err := c.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		b := got.Materialize()
		if !bytes.Equal(b, want) {
			t.Errorf("body of %d bytes: the codec wrote %d bytes, encodeCheckResponse %d", len(body), len(b), len(want))
		}
		if body == "short" && bytes.Contains(b, []byte("first-")) {
			t.Errorf("a reused buffer carries an earlier answer: %q", b)
		}
		got.Free()
	}
	if _, err := c.Marshal(deny("\xff")); err == nil {
		t.Error("a body that is not UTF-8 was written")
	}
}

// TestProblemJSONAsMarshal: the problem body as json.Marshal writes it,
// for the strings its escaping treats apart.
func TestProblemJSONAsMarshal(t *testing.T) {
	for _, s := range []string{"", "plain", `q"b\s`, "<a>&", "\u2028\u2029", "\xff\xfe", "a\x00\x01\x1f\x7f", "\b\f\n\r\t", "é日本", "\xed\xa0\x80", "€\xe2\x82"} {
		p := problem{Type: ProblemType(ReasonPolicyDeny), Title: s, Status: 403, Detail: "denied: " + s, DecisionID: s}
		want, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		if got := problemJSON(nil, p); string(got) != string(want) {
			t.Errorf("%q: %s, json.Marshal %s", s, got, want)
		}
	}
}

// TestCodecResponseBufferPooled: a response buffer is over gRPC's pooling
// threshold (mem.NewBuffer hands smaller ones out as plain slices, never
// given back) and comes back to the pool once gRPC frees it.
func TestCodecResponseBufferPooled(t *testing.T) {
	if mem.IsBelowBufferPoolingThreshold(respBufferBytes) {
		t.Fatalf("response buffers of %d bytes are under gRPC's pooling threshold", respBufferBytes)
	}
	c := codec{encoding.GetCodecV2(protoenc.Name)}
	m := &authv3.CheckResponse{Status: &rpcstatus.Status{Code: 7, Message: "policy_deny"}}
	if a := testing.AllocsPerRun(100, func() {
		d, err := c.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		d.Free()
	}); a > 1 {
		t.Errorf("%v allocations per response marshalled and freed, want at most 1 (the BufferSlice)", a)
	}
}
