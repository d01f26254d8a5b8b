package authz

import (
	"errors"
	"unicode/utf8"
	"unsafe"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/wardenauthz/warden/policy"
)

// checkInput is what parseRequest reads of a CheckRequest. It is filled
// either from a decoded message (inputOf) or straight from the wire
// (decodeCheckRequest): the gRPC path skips the generic protobuf decoder,
// whose header map costs about eight allocations per header field.
type checkInput struct {
	// source.address.socket_address, when that is the address's case.
	srcSocket   bool
	srcAddr     string
	srcPort     uint32
	principal   string // source.principal
	certificate string // source.certificate
	destService string // destination.service
	extensions  map[string]string

	hasTime   bool // request.time is present
	timeSec   int64
	timeNanos int32

	hasHTTP                              bool // request.http is present
	method, path, host, scheme, protocol string
	bodyBytes, rawBodyBytes              int
	// headers are the headers map's entries (distinct keys, any order);
	// headerMap is header_map.headers in order, each with its raw_value
	// when that is not empty, else its value. headerCount and headerBytes
	// measure the form in use (header_map when it has entries); inputOf
	// leaves both lists out of a request over the header limits.
	headers, headerMap       []policy.Header
	headerCount, headerBytes int
	// extCount and extBytes measure the context extensions (entries as
	// sent, names and values); past the limits, extensions is left out.
	extCount, extBytes int

	// The wire decoder's limits and running measures: it stops building a
	// header form or the extensions once past the limits (the request is
	// then refused unread, by Limits.screen), so that a flood of fields
	// costs a pass over them and no more.
	lim                 Limits
	mapRaw, mapRawBytes int // headers map entries as sent (repeats too)
	hmRaw, hmRawBytes   int // header_map entries
}

// inputOf reads a decoded CheckRequest. It measures the header fields
// first and copies none of a request over l's header limits, which
// Limits.screen then refuses unread.
func inputOf(req *authv3.CheckRequest, l Limits) *checkInput {
	attrs := req.GetAttributes()
	ci := &checkInput{
		principal:   attrs.GetSource().GetPrincipal(),
		certificate: attrs.GetSource().GetCertificate(),
		destService: attrs.GetDestination().GetService(),
		extensions:  attrs.GetContextExtensions(),
	}
	ci.extCount = len(ci.extensions)
	for k, v := range ci.extensions {
		ci.extBytes += len(k) + len(v)
	}
	if extensionsOver(ci.extCount, ci.extBytes) {
		ci.extensions = nil
	}
	if sa := attrs.GetSource().GetAddress().GetSocketAddress(); sa != nil {
		ci.srcSocket, ci.srcAddr, ci.srcPort = true, sa.GetAddress(), sa.GetPortValue()
	}
	if t := attrs.GetRequest().GetTime(); t != nil {
		ci.hasTime, ci.timeSec, ci.timeNanos = true, t.GetSeconds(), t.GetNanos()
	}
	h := attrs.GetRequest().GetHttp()
	if h == nil {
		return ci
	}
	ci.hasHTTP = true
	ci.method, ci.path, ci.host, ci.scheme, ci.protocol = h.GetMethod(), h.GetPath(), h.GetHost(), h.GetScheme(), h.GetProtocol()
	ci.bodyBytes, ci.rawBodyBytes = len(h.GetBody()), len(h.GetRawBody())
	if list := h.GetHeaderMap().GetHeaders(); len(list) > 0 {
		ci.headerCount = len(list)
		for _, hv := range list {
			ci.headerBytes += len(hv.GetKey()) + rawLen(hv)
		}
	} else {
		ci.headerCount = len(h.GetHeaders())
		for k, v := range h.GetHeaders() {
			ci.headerBytes += len(k) + len(v)
		}
	}
	if l.headersOver(ci.headerCount, ci.headerBytes) {
		return ci
	}
	if len(h.GetHeaders()) > 0 {
		ci.headers = make([]policy.Header, 0, len(h.GetHeaders()))
		for k, v := range h.GetHeaders() {
			ci.headers = append(ci.headers, policy.Header{Name: k, Value: v})
		}
	}
	if list := h.GetHeaderMap().GetHeaders(); len(list) > 0 {
		ci.headerMap = make([]policy.Header, len(list))
		for i, hv := range list {
			ci.headerMap[i] = policy.Header{Name: hv.GetKey(), Value: rawValue(hv)}
		}
	}
	return ci
}

// rawLen is len(rawValue(hv)) without copying raw_value into a string.
func rawLen(hv *corev3.HeaderValue) int {
	if v := hv.GetRawValue(); len(v) > 0 {
		return len(v)
	}
	return len(hv.GetValue())
}

// errWire is the answer to a CheckRequest that protobuf would refuse to
// decode (proto.Unmarshal's errors carry no more than this either).
var errWire = errors.New("proto: cannot parse invalid wire-format data")

// errWireUTF8 is a string field that is not UTF-8, which proto3 refuses.
var errWireUTF8 = errors.New("proto: string field contains invalid UTF-8")

// decodeCheckRequest decodes a CheckRequest's wire form as proto.Unmarshal
// followed by inputOf does (FuzzCheckRequestWire holds it to that): the
// same fields, the same last-one-wins and merge rules, the same refusals
// (malformed wire data, invalid field numbers, strings that are not
// UTF-8, in every field of the message, read or not). Unknown fields and
// fields of an unexpected wire type are skipped, as protobuf does.
//
// The strings it returns are copied into one allocation owned by the
// result (b may be reused once it returns); heldBytes is that
// allocation's size, which a record referencing any of them keeps alive.
func decodeCheckRequest(b []byte, l Limits) (*checkInput, int, error) {
	ci := &checkInput{lim: l}
	err := eachField(b, func(num protowire.Number, typ protowire.Type, v, _ []byte) error {
		if num == 1 && typ == protowire.BytesType {
			return ci.attributes(v)
		}
		return nil
	})
	if err != nil {
		return nil, 0, err
	}
	if extensionsOver(ci.extCount, ci.extBytes) {
		ci.extensions = nil
	}
	switch {
	case ci.hmRaw > 0 && l.headersOver(ci.hmRaw, ci.hmRawBytes):
		ci.headers, ci.headerMap = nil, nil
		ci.headerCount, ci.headerBytes = ci.hmRaw, ci.hmRawBytes
	case ci.hmRaw == 0 && l.headersOver(ci.mapRaw, ci.mapRawBytes):
		// Counted as sent: a repeated key (never from Envoy) counts
		// twice, so such a request may be refused where one of distinct
		// keys would not.
		ci.headers, ci.headerMap = nil, nil
		ci.headerCount, ci.headerBytes = ci.mapRaw, ci.mapRawBytes
	default:
		if ci.headers != nil {
			ci.headers = distinctLast(ci.headers)
		}
		list := ci.headerMap
		if len(list) == 0 {
			list = ci.headers
		}
		ci.headerCount = len(list)
		for _, h := range list {
			ci.headerBytes += len(h.Name) + len(h.Value)
		}
	}
	return ci, ci.own(), nil
}

// eachField calls f with every field of the message b: its number, wire
// type, its contents when it is length-delimited (else nil) and its
// encoded value. It refuses what protobuf refuses of any message: a
// malformed tag or value, a field number out of range, an unmatched end
// of group.
func eachField(b []byte, f func(num protowire.Number, typ protowire.Type, v, raw []byte) error) error {
	for len(b) > 0 {
		num, typ, v, raw, n := nextField(b)
		if n < 0 {
			return errWire
		}
		b = b[n:]
		if err := f(num, typ, v, raw); err != nil {
			return err
		}
	}
	return nil
}

// nextField reads the first field of b as eachField does, and its size
// with its tag (n < 0: b is malformed). The loops over a header's fields,
// read many times a Check, use it directly rather than a closure.
func nextField(b []byte) (num protowire.Number, typ protowire.Type, v, raw []byte, n int) {
	tag, k := protowire.ConsumeVarint(b)
	if k < 0 || tag>>3 < uint64(protowire.MinValidNumber) || tag>>3 > uint64(protowire.MaxValidNumber) {
		return 0, 0, nil, nil, -1
	}
	num, typ = protowire.Number(tag>>3), protowire.Type(tag&7)
	b = b[k:]
	var m int
	if typ == protowire.BytesType {
		v, m = protowire.ConsumeBytes(b)
	} else {
		m = protowire.ConsumeFieldValue(num, typ, b)
	}
	if m < 0 {
		return 0, 0, nil, nil, -1
	}
	return num, typ, v, b[:m], k + m
}

// str is a proto3 string field's value (aliasing v until own copies it).
func str(v []byte) (string, error) {
	if !utf8.Valid(v) {
		return "", errWireUTF8
	}
	return unsafe.String(unsafe.SliceData(v), len(v)), nil
}

// strField sets *p to a string field's value when the field has the
// string wire type; any other type is an unknown field, skipped.
func strField(p *string, typ protowire.Type, v []byte) error {
	if typ != protowire.BytesType {
		return nil
	}
	s, err := str(v)
	if err == nil {
		*p = s
	}
	return err
}

// checkStr refuses a string field that is not UTF-8 (a field read by no
// one, which protobuf would still refuse).
func checkStr(typ protowire.Type, v []byte) error {
	var s string
	return strField(&s, typ, v)
}

// varintField reads a varint field; ok is false for any other wire type
// (an unknown field). The value was checked by eachField.
func varintField(typ protowire.Type, b []byte) (uint64, bool) {
	if typ != protowire.VarintType {
		return 0, false
	}
	v, _ := protowire.ConsumeVarint(b)
	return v, true
}

// AttributeContext.
func (ci *checkInput) attributes(b []byte) error {
	return eachField(b, func(num protowire.Number, typ protowire.Type, v, raw []byte) error {
		if typ != protowire.BytesType {
			return nil
		}
		switch num {
		case 1: // source
			return ci.peer(v, true)
		case 2: // destination
			return ci.peer(v, false)
		case 4: // request
			return ci.request(v)
		case 10: // context_extensions
			k, val, err := mapEntry(v)
			if err != nil {
				return err
			}
			ci.extCount++
			ci.extBytes += len(k) + len(val)
			if extensionsOver(ci.extCount, ci.extBytes) {
				return nil // refused unread (Limits.screen)
			}
			if ci.extensions == nil {
				ci.extensions = map[string]string{}
			}
			ci.extensions[k] = val
		case 11, 13: // metadata_context, route_metadata_context
			return checkMetadata(v, metadataDepth)
		case 12: // tls_session {string sni = 1}
			return eachField(v, func(num protowire.Number, typ protowire.Type, v, _ []byte) error {
				if num == 1 {
					return checkStr(typ, v)
				}
				return nil
			})
		}
		return nil
	})
}

// maxExtensions and maxExtensionBytes bound a request's context
// extensions (Envoy's come from the route configuration: a few short
// pairs); past them the request is refused unread.
const (
	maxExtensions     = 64
	maxExtensionBytes = 64 << 10
)

// extensionsOver reports whether count extensions of size bytes are over
// those bounds.
func extensionsOver(count, bytes int) bool {
	return count > maxExtensions || bytes > maxExtensionBytes
}

// metadataDepth is the nesting protobuf allows a metadata's messages: its
// recursion limit less the CheckRequest and AttributeContext around it
// (TestDecodeCheckRequestDepth finds protobuf's limit and holds the two
// to it).
const metadataDepth = protowire.DefaultRecursionLimit - 2

// checkMetadata refuses what proto.Unmarshal would refuse of a
// config.core.v3.Metadata, a field Warden does not read, without building
// it (Envoy's is empty unless configured; a built one costs tens of times
// its size): filter_metadata (1) map<string, Struct>,
// typed_filter_metadata (2) map<string, Any>. depth counts down each
// message entered, map entries too, as protobuf does.
func checkMetadata(b []byte, depth int) error {
	if depth--; depth < 0 {
		return errWireDepth
	}
	return eachField(b, func(num protowire.Number, typ protowire.Type, v, _ []byte) error {
		if typ != protowire.BytesType || num != 1 && num != 2 {
			return nil
		}
		return checkMapEntry(v, depth, func(v []byte, depth int) error {
			if num == 1 {
				return checkStruct(v, depth)
			}
			return checkAny(v, depth)
		})
	})
}

// errWireDepth is a message nested past protobuf's recursion limit.
var errWireDepth = errors.New("proto: exceeded maximum recursion depth")

// checkMapEntry checks a map<string, message> entry: key (1) a string,
// value (2) checked by val.
func checkMapEntry(b []byte, depth int, val func([]byte, int) error) error {
	if depth--; depth < 0 {
		return errWireDepth
	}
	return eachField(b, func(num protowire.Number, typ protowire.Type, v, _ []byte) error {
		switch {
		case num == 1:
			return checkStr(typ, v)
		case num == 2 && typ == protowire.BytesType:
			return val(v, depth)
		}
		return nil
	})
}

// google.protobuf.Struct: fields (1) map<string, Value>.
func checkStruct(b []byte, depth int) error {
	if depth--; depth < 0 {
		return errWireDepth
	}
	return eachField(b, func(num protowire.Number, typ protowire.Type, v, _ []byte) error {
		if num != 1 || typ != protowire.BytesType {
			return nil
		}
		return checkMapEntry(v, depth, checkValue)
	})
}

// google.protobuf.Value: string_value (3), struct_value (5), list_value
// (6) {repeated Value values = 1}; the rest are scalars.
func checkValue(b []byte, depth int) error {
	if depth--; depth < 0 {
		return errWireDepth
	}
	return eachField(b, func(num protowire.Number, typ protowire.Type, v, _ []byte) error {
		switch {
		case num == 3:
			return checkStr(typ, v)
		case typ != protowire.BytesType:
		case num == 5:
			return checkStruct(v, depth)
		case num == 6:
			if depth-1 < 0 {
				return errWireDepth
			}
			return eachField(v, func(num protowire.Number, typ protowire.Type, v, _ []byte) error {
				if num != 1 || typ != protowire.BytesType {
					return nil
				}
				return checkValue(v, depth-1)
			})
		}
		return nil
	})
}

// google.protobuf.Any: type_url (1) a string; value (2) bytes, not read.
func checkAny(b []byte, depth int) error {
	if depth--; depth < 0 {
		return errWireDepth
	}
	return eachField(b, func(num protowire.Number, typ protowire.Type, v, _ []byte) error {
		if num == 1 {
			return checkStr(typ, v)
		}
		return nil
	})
}

// AttributeContext.Peer: source (read) or destination (its service).
func (ci *checkInput) peer(b []byte, source bool) error {
	return eachField(b, func(num protowire.Number, typ protowire.Type, v, _ []byte) error {
		switch num {
		case 1: // address
			if typ != protowire.BytesType {
				return nil
			}
			return ci.address(v, source)
		case 2: // service
			if source {
				return checkStr(typ, v)
			}
			return strField(&ci.destService, typ, v)
		case 3: // labels
			if typ != protowire.BytesType {
				return nil
			}
			_, _, err := mapEntry(v)
			return err
		case 4: // principal
			if source {
				return strField(&ci.principal, typ, v)
			}
			return checkStr(typ, v)
		case 5: // certificate
			if source {
				return strField(&ci.certificate, typ, v)
			}
			return checkStr(typ, v)
		}
		return nil
	})
}

// config.core.v3.Address: a oneof of socket_address (1), pipe (2) and
// envoy_internal_address (3). A later case replaces an earlier one; the
// same case again merges into it.
func (ci *checkInput) address(b []byte, source bool) error {
	return eachField(b, func(num protowire.Number, typ protowire.Type, v, _ []byte) error {
		if typ != protowire.BytesType {
			return nil
		}
		switch num {
		case 1:
			if source {
				ci.srcSocket = true // merged into what an earlier one set
			}
			return ci.socketAddress(v, source)
		case 2, 3: // pipe {string path = 1; uint32 mode = 2}, envoy_internal_address {string server_listener_name = 1; string endpoint_id = 2}
			if source {
				ci.srcSocket, ci.srcAddr, ci.srcPort = false, "", 0
			}
			return eachField(v, func(f protowire.Number, typ protowire.Type, v, _ []byte) error {
				if f == 1 || f == 2 && num == 3 {
					return checkStr(typ, v)
				}
				return nil
			})
		}
		return nil
	})
}

// config.core.v3.SocketAddress: address (2), and port_value (3) in a oneof
// with named_port (4).
func (ci *checkInput) socketAddress(b []byte, source bool) error {
	return eachField(b, func(num protowire.Number, typ protowire.Type, v, raw []byte) error {
		switch num {
		case 2:
			if source {
				return strField(&ci.srcAddr, typ, v)
			}
			return checkStr(typ, v)
		case 3:
			if p, ok := varintField(typ, raw); ok && source {
				ci.srcPort = uint32(p)
			}
		case 4:
			if typ == protowire.BytesType && source {
				ci.srcPort = 0
			}
			return checkStr(typ, v)
		case 5, 7: // resolver_name, network_namespace_filepath
			return checkStr(typ, v)
		}
		return nil
	})
}

// AttributeContext.Request: time (1) and http (2).
func (ci *checkInput) request(b []byte) error {
	return eachField(b, func(num protowire.Number, typ protowire.Type, v, _ []byte) error {
		if typ != protowire.BytesType {
			return nil
		}
		switch num {
		case 1:
			ci.hasTime = true
			return eachField(v, func(num protowire.Number, typ protowire.Type, _, raw []byte) error {
				x, ok := varintField(typ, raw)
				switch {
				case !ok:
				case num == 1:
					ci.timeSec = int64(x)
				case num == 2:
					ci.timeNanos = int32(x)
				}
				return nil
			})
		case 2:
			ci.hasHTTP = true
			return ci.http(v)
		}
		return nil
	})
}

// countField counts the fields num of the message b (for sizing; b is
// read again, and checked, by eachField).
func countField(b []byte, num protowire.Number) int {
	n := 0
	for len(b) > 0 {
		tag, k := protowire.ConsumeVarint(b)
		if k < 0 {
			break
		}
		m := protowire.ConsumeFieldValue(protowire.Number(tag>>3), protowire.Type(tag&7), b[k:])
		if m < 0 {
			break
		}
		if protowire.Number(tag>>3) == num {
			n++
		}
		b = b[k+m:]
	}
	return n
}

// AttributeContext.HttpRequest.
func (ci *checkInput) http(b []byte) error {
	all := b
	for len(b) > 0 {
		num, typ, v, _, n := nextField(b)
		if n < 0 {
			return errWire
		}
		b = b[n:]
		if err := ci.httpField(all, num, typ, v); err != nil {
			return err
		}
	}
	return nil
}

// httpField reads one field of the HttpRequest all.
func (ci *checkInput) httpField(all []byte, num protowire.Number, typ protowire.Type, v []byte) error {
	switch num {
	case 1, 7, 8: // id, query, fragment
		return checkStr(typ, v)
	case 2:
		return strField(&ci.method, typ, v)
	case 3:
		if typ != protowire.BytesType {
			return nil
		}
		k, val, err := mapEntry(v)
		if err != nil {
			return err
		}
		ci.mapRaw++
		ci.mapRawBytes += len(k) + len(val)
		if ci.lim.headersOver(ci.mapRaw, ci.mapRawBytes) {
			return nil // no more built: refused unread
		}
		if ci.headers == nil {
			n := countField(all, 3)
			if ci.lim.MaxHeaders > 0 {
				n = min(n, ci.lim.MaxHeaders)
			}
			ci.headers = make([]policy.Header, 0, n)
		}
		ci.headers = append(ci.headers, policy.Header{Name: k, Value: val})
		return nil
	case 4:
		return strField(&ci.path, typ, v)
	case 5:
		return strField(&ci.host, typ, v)
	case 6:
		return strField(&ci.scheme, typ, v)
	case 10:
		return strField(&ci.protocol, typ, v)
	case 11:
		if typ != protowire.BytesType {
			return nil
		}
		if !utf8.Valid(v) {
			return errWireUTF8
		}
		ci.bodyBytes = len(v)
	case 12:
		if typ == protowire.BytesType {
			ci.rawBodyBytes = len(v)
		}
	case 13: // header_map {repeated HeaderValue headers = 1}
		if typ != protowire.BytesType {
			return nil
		}
		for len(v) > 0 {
			num, typ, hv, _, n := nextField(v)
			if n < 0 {
				return errWire
			}
			v = v[n:]
			if num != 1 || typ != protowire.BytesType {
				continue
			}
			h, err := headerValue(hv)
			if err != nil {
				return err
			}
			ci.hmRaw++
			ci.hmRawBytes += len(h.Name) + len(h.Value)
			if ci.lim.headersOver(ci.hmRaw, ci.hmRawBytes) {
				continue // no more built: refused unread
			}
			if ci.headerMap == nil {
				ci.headerMap = make([]policy.Header, 0, 32)
			}
			ci.headerMap = append(ci.headerMap, h)
		}
	}
	return nil
}

// config.core.v3.HeaderValue: key (1), value (2), raw_value (3); its
// value is raw_value when that is not empty (rawValue).
func headerValue(b []byte) (policy.Header, error) {
	var h policy.Header
	var raw []byte
	for len(b) > 0 {
		num, typ, v, _, n := nextField(b)
		if n < 0 {
			return h, errWire
		}
		b = b[n:]
		var err error
		switch num {
		case 1:
			err = strField(&h.Name, typ, v)
		case 2:
			err = strField(&h.Value, typ, v)
		case 3:
			if typ == protowire.BytesType {
				raw = v
			}
		}
		if err != nil {
			return h, err
		}
	}
	if len(raw) > 0 {
		h.Value = unsafe.String(unsafe.SliceData(raw), len(raw))
	}
	return h, nil
}

// mapEntry reads a map<string, string> entry: key (1) and value (2), each
// "" when absent, the last one winning.
func mapEntry(b []byte) (k, v string, err error) {
	for len(b) > 0 {
		num, typ, f, _, n := nextField(b)
		if n < 0 {
			return k, v, errWire
		}
		b = b[n:]
		switch num {
		case 1:
			err = strField(&k, typ, f)
		case 2:
			err = strField(&v, typ, f)
		}
		if err != nil {
			return k, v, err
		}
	}
	return k, v, nil
}

// distinctLast keeps the last entry of each name, as decoding into a map
// does (Envoy never repeats one; a hand-made message may), in place.
func distinctLast(hs []policy.Header) []policy.Header {
	out := hs[:0]
	if len(hs) <= 64 {
		// Quadratic but without allocating: an entry stays when no later
		// one has its name (out only ever overwrites entries already seen).
	next:
		for i, h := range hs {
			for _, l := range hs[i+1:] {
				if l.Name == h.Name {
					continue next
				}
			}
			out = append(out, h)
		}
		return out
	}
	last := make(map[string]int, len(hs))
	for i, h := range hs {
		last[h.Name] = i
	}
	for i, h := range hs {
		if last[h.Name] == i {
			out = append(out, h)
		}
	}
	return out
}

// own copies every string ci holds into one allocation, so that none
// aliases the buffer it was decoded from, and returns its size.
func (ci *checkInput) own() int {
	n := len(ci.srcAddr) + len(ci.principal) + len(ci.certificate) + len(ci.destService) +
		len(ci.method) + len(ci.path) + len(ci.host) + len(ci.scheme) + len(ci.protocol)
	for k, v := range ci.extensions {
		n += len(k) + len(v)
	}
	for _, hs := range [2][]policy.Header{ci.headers, ci.headerMap} {
		for _, h := range hs {
			n += len(h.Name) + len(h.Value)
		}
	}
	if n == 0 {
		return 0
	}
	a := arena{buf: make([]byte, 0, n)}
	for _, p := range [...]*string{&ci.srcAddr, &ci.principal, &ci.certificate, &ci.destService,
		&ci.method, &ci.path, &ci.host, &ci.scheme, &ci.protocol} {
		*p = a.copy(*p)
	}
	if ci.extensions != nil {
		m := make(map[string]string, len(ci.extensions))
		for k, v := range ci.extensions {
			m[a.copy(k)] = a.copy(v)
		}
		ci.extensions = m
	}
	for _, hs := range [2][]policy.Header{ci.headers, ci.headerMap} {
		for i := range hs {
			hs[i].Name, hs[i].Value = a.copy(hs[i].Name), a.copy(hs[i].Value)
		}
	}
	return n
}

// arena hands out strings copied into one buffer that never grows (its
// capacity is their total), so earlier strings stay valid.
type arena struct{ buf []byte }

func (a *arena) copy(s string) string {
	if s == "" {
		return ""
	}
	i := len(a.buf)
	a.buf = append(a.buf, s...)
	return unsafe.String(&a.buf[i], len(s))
}
