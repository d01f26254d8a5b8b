package authz

import (
	"net/netip"
	"slices"
	"strings"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/wardenauthz/warden/policy"
)

// request is the part of a CheckRequest the pipeline uses, read once.
type request struct {
	method, scheme, host, path, protocol string
	requestID                            string
	authorization                        string
	peerPrincipal                        string
	headers                              []policy.Header // lower-case names, repeated ones joined with ","
	sourceIP                             netip.Addr
	sourcePort                           uint32
	time                                 time.Time
	extensions                           map[string]string
	// network is set for the TCP network filter, which sends no request.
	network bool
	// headerCount and headerBytes are the header fields as Envoy sent them
	// (before repeated ones are joined) and their names' and values' bytes;
	// bodyBytes is the body's size. Limits screens them.
	headerCount, headerBytes, bodyBytes int
}

// parseRequest reads a CheckRequest as Envoy sends it (ENVOY.md). It never
// calls Validate: Envoy's header values may exceed the generated limits.
// now is the request time when Envoy sent none.
func parseRequest(req *authv3.CheckRequest, now time.Time) request {
	attrs := req.GetAttributes()
	var in request
	if sa := attrs.GetSource().GetAddress().GetSocketAddress(); sa != nil {
		if ip, err := netip.ParseAddr(sa.GetAddress()); err == nil {
			in.sourceIP = ip.WithZone("")
			in.sourcePort = sa.GetPortValue()
		}
	}
	in.peerPrincipal = attrs.GetSource().GetPrincipal()
	in.extensions = attrs.GetContextExtensions()
	h := attrs.GetRequest().GetHttp()
	if t := attrs.GetRequest().GetTime(); t != nil && t.IsValid() {
		in.time = t.AsTime()
	} else {
		in.time = now
	}
	if h == nil {
		// Network (TCP) filter: only addresses, principals and SNI.
		in.network = true
		in.method = "CONNECT"
		in.host = attrs.GetDestination().GetService()
		return in
	}
	if hm := h.GetHeaderMap(); hm != nil && len(hm.GetHeaders()) > 0 {
		for _, hv := range hm.GetHeaders() {
			v := string(hv.GetRawValue())
			if v == "" {
				v = hv.GetValue()
			}
			in.addHeader(strings.ToLower(hv.GetKey()), v)
			in.headerBytes += len(hv.GetKey()) + len(v)
		}
		in.headerCount = len(hm.GetHeaders())
	} else {
		in.headers = make([]policy.Header, 0, len(h.GetHeaders()))
		for k, v := range h.GetHeaders() {
			in.headers = append(in.headers, policy.Header{Name: strings.ToLower(k), Value: v})
			in.headerBytes += len(k) + len(v)
		}
		in.headerCount = len(h.GetHeaders())
	}
	slices.SortFunc(in.headers, func(a, b policy.Header) int { return strings.Compare(a.Name, b.Name) })
	in.method = firstNonEmpty(h.GetMethod(), in.header(":method"))
	in.path = firstNonEmpty(h.GetPath(), in.header(":path"))
	in.host = firstNonEmpty(h.GetHost(), in.header(":authority"))
	in.scheme = firstNonEmpty(h.GetScheme(), in.header(":scheme"))
	in.protocol = h.GetProtocol()
	in.bodyBytes = max(len(h.GetBody()), len(h.GetRawBody()))
	in.requestID = in.header("x-request-id")
	in.authorization = in.header("authorization")
	return in
}

// addHeader appends a header, joining a repeated one with "," as Envoy does.
func (in *request) addHeader(name, value string) {
	for i := range in.headers {
		if in.headers[i].Name == name {
			in.headers[i].Value += "," + value
			return
		}
	}
	in.headers = append(in.headers, policy.Header{Name: name, Value: value})
}

// header returns the value of a lower-case header name, "" when absent.
func (in *request) header(name string) string {
	for i := range in.headers {
		if in.headers[i].Name == name {
			return in.headers[i].Value
		}
	}
	return ""
}

func (in *request) pathOnly() string {
	p, _, _ := strings.Cut(in.path, "?")
	return p
}

// heldBytes bounds the memory a record's Cedar section can reference: the
// path, headers and context extensions.
func (in *request) heldBytes() int {
	n := len(in.path) + in.headerBytes
	for k, v := range in.extensions {
		n += len(k) + len(v)
	}
	return n
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
