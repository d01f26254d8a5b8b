package authz

import (
	"net/netip"
	"slices"
	"strings"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/wardenauthz/warden/policy"
)

// request is the part of a CheckRequest the pipeline uses, read once.
type request struct {
	method, scheme, host, path, protocol string
	requestID                            string
	authorization                        string
	peerPrincipal                        string
	peerCertificate                      string          // source.certificate: URL-encoded PEM
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
	// extCount and extBytes measure the context extensions (Limits.screen
	// refuses too many).
	extCount, extBytes int
	// shared is the size of the one allocation the strings share when
	// they were decoded from the wire (decodeCheckRequest), else 0.
	shared int
}

// parseRequest reads a CheckRequest as Envoy sends it (ENVOY.md). It never
// calls Validate: Envoy's header values may exceed the generated limits.
// now is the request time when Envoy sent none.
func parseRequest(req *authv3.CheckRequest, now time.Time, l Limits) request {
	return parseInput(inputOf(req, l), now, l)
}

// parseInput reads a CheckRequest's fields (inputOf, decodeCheckRequest).
// It keeps ci's header slices (lower-casing their names in place).
//
// Its cost is linear in the request (O(n log n) for the sort): the header
// fields are counted and measured first, and a request over l is not read
// further (Limits.screen then refuses it), so a flood of header fields
// costs one pass over them.
func parseInput(ci *checkInput, now time.Time, l Limits) request {
	var in request
	if ci.srcSocket {
		if ip, err := netip.ParseAddr(ci.srcAddr); err == nil {
			in.sourceIP = ip.WithZone("")
			in.sourcePort = ci.srcPort
		}
	}
	in.peerPrincipal = ci.principal
	in.peerCertificate = ci.certificate
	in.extensions = ci.extensions
	in.extCount, in.extBytes = ci.extCount, ci.extBytes
	if t := (timestamppb.Timestamp{Seconds: ci.timeSec, Nanos: ci.timeNanos}); ci.hasTime && t.IsValid() {
		in.time = t.AsTime()
	} else {
		in.time = now
	}
	if !ci.hasHTTP {
		// Network (TCP) filter: only addresses, principals and SNI.
		in.network = true
		in.method = "CONNECT"
		in.host = ci.destService
		return in
	}
	in.method, in.path, in.host, in.scheme = ci.method, ci.path, ci.host, ci.scheme
	in.protocol = ci.protocol
	in.bodyBytes = max(ci.bodyBytes, ci.rawBodyBytes)
	// header_map (encode_raw_headers) replaces headers when present.
	in.headerCount, in.headerBytes = ci.headerCount, ci.headerBytes
	if l.screen(&in) != nil {
		return in // refused unread
	}
	list := ci.headerMap
	if len(list) == 0 {
		list = ci.headers
	}
	for i := range list {
		list[i].Name = strings.ToLower(list[i].Name)
	}
	if len(ci.headerMap) > 0 {
		// Stable, so a repeated header's values keep their order when
		// joined.
		slices.SortStableFunc(list, byName)
	} else {
		// Map keys are distinct, but two may differ only in case: the
		// value breaks the tie, so their join does not depend on map order.
		slices.SortFunc(list, byNameValue)
	}
	in.headers = joinRepeated(list)
	// The six headers the pipeline reads, in one pass (names are distinct
	// once joined).
	var method, path, host, scheme string
	for _, h := range in.headers {
		switch h.Name {
		case ":method":
			method = h.Value
		case ":path":
			path = h.Value
		case ":authority":
			host = h.Value
		case ":scheme":
			scheme = h.Value
		case "x-request-id":
			in.requestID = h.Value
		case "authorization":
			in.authorization = h.Value
		}
	}
	in.method = firstNonEmpty(in.method, method)
	in.path = firstNonEmpty(in.path, path)
	in.host = firstNonEmpty(in.host, host)
	in.scheme = firstNonEmpty(in.scheme, scheme)
	return in
}

// byNameValue orders header fields by name, then value: a total order
// (only identical fields tie), so the sorted list does not depend on the
// order the map gave. The value is compared only when the names tie.
func byNameValue(a, b policy.Header) int {
	if c := strings.Compare(a.Name, b.Name); c != 0 {
		return c
	}
	return strings.Compare(a.Value, b.Value)
}

// rawValue is a header_map entry's value: raw_value, else value.
func rawValue(hv *corev3.HeaderValue) string {
	if v := hv.GetRawValue(); len(v) > 0 {
		return string(v)
	}
	return hv.GetValue()
}

func byName(a, b policy.Header) int { return strings.Compare(a.Name, b.Name) }

// joinRepeated joins runs of one name in sorted headers with "," as Envoy
// does, in one pass.
func joinRepeated(hs []policy.Header) []policy.Header {
	out := hs[:0]
	for i := 0; i < len(hs); {
		j := i + 1
		for j < len(hs) && hs[j].Name == hs[i].Name {
			j++
		}
		h := hs[i]
		if j-i > 1 {
			var b strings.Builder
			for k := i; k < j; k++ {
				if k > i {
					b.WriteByte(',')
				}
				b.WriteString(hs[k].Value)
			}
			h.Value = b.String()
		}
		out = append(out, h)
		i = j
	}
	return out
}

// header returns the value of a lower-case header name, "" when absent
// (binary search: headers are sorted by name).
func (in *request) header(name string) string {
	if i, ok := slices.BinarySearchFunc(in.headers, name, func(h policy.Header, n string) int { return strings.Compare(h.Name, n) }); ok {
		return in.headers[i].Value
	}
	return ""
}

func (in *request) pathOnly() string {
	p, _, _ := strings.Cut(in.path, "?")
	return p
}

// heldBytes bounds the memory a record's Cedar section can reference: the
// path, headers and context extensions, or all the request's strings when
// they share one allocation.
func (in *request) heldBytes() int {
	if in.shared > 0 {
		return in.shared
	}
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
