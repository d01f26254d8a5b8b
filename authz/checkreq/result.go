package checkreq

import (
	"sort"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc/codes"
)

// Result is what a CheckResponse tells Envoy, and what Warden's dynamic
// metadata says of the decision: what `warden check` prints and `warden
// policy test` compares.
type Result struct {
	Decision          string   `json:"decision"`
	Status            int      `json:"status"`
	GRPCCode          string   `json:"grpc_code"`
	Reason            string   `json:"reason,omitempty"`
	DecisionID        string   `json:"decision_id,omitempty"`
	Principal         string   `json:"principal,omitempty"`
	Action            string   `json:"action,omitempty"`
	Resource          string   `json:"resource,omitempty"`
	Policies          []string `json:"policies"`
	Errors            []string `json:"errors,omitempty"`
	UpstreamHeaders   []Header `json:"upstream_headers,omitempty"`
	HeadersToRemove   []string `json:"headers_to_remove,omitempty"`
	DownstreamHeaders []Header `json:"downstream_headers,omitempty"`
	Body              string   `json:"body,omitempty"`
}

// Header is one header an answer adds, upstream or to the client.
type Header struct {
	Key    string `json:"key"`
	Value  string `json:"value"`
	Append bool   `json:"append"`
}

// Describe reads a CheckResponse as Envoy acts on it: allow (200) on an OK
// status, else deny with the denied response's status (403 when it has none).
func Describe(resp *authv3.CheckResponse) Result {
	res := Result{Decision: "deny", Status: 403, GRPCCode: codes.Code(resp.GetStatus().GetCode()).String(), Policies: []string{}}
	if resp.GetStatus().GetCode() == int32(codes.OK) {
		res.Decision, res.Status = "allow", 200
	}
	if md := resp.GetDynamicMetadata().GetFields(); md != nil {
		res.DecisionID = md["decision_id"].GetStringValue()
		res.Principal = md["principal"].GetStringValue()
		res.Reason = md["reason"].GetStringValue()
		res.Action = md["action"].GetStringValue()
		res.Resource = md["resource"].GetStringValue()
		for _, p := range md["policies"].GetListValue().GetValues() {
			res.Policies = append(res.Policies, p.GetStringValue())
		}
		for _, e := range md["errors"].GetListValue().GetValues() {
			res.Errors = append(res.Errors, e.GetStringValue())
		}
	}
	if ok := resp.GetOkResponse(); ok != nil {
		res.UpstreamHeaders = headersOf(ok.GetHeaders())
		res.HeadersToRemove = ok.GetHeadersToRemove()
		res.DownstreamHeaders = headersOf(ok.GetResponseHeadersToAdd())
	}
	if d := resp.GetDeniedResponse(); d != nil {
		if c := d.GetStatus().GetCode(); c != 0 {
			res.Status = int(c)
		}
		res.DownstreamHeaders = headersOf(d.GetHeaders())
		res.Body = d.GetBody()
	}
	return res
}

func headersOf(hs []*corev3.HeaderValueOption) []Header {
	var out []Header
	for _, h := range hs {
		//lint:ignore SA1019 append is what Envoy ≤ 1.36 reads
		out = append(out, Header{Key: h.GetHeader().GetKey(), Value: h.GetHeader().GetValue(), Append: h.GetAppend().GetValue()})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}
