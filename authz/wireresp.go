package authz

import (
	"errors"
	"math"
	"unicode/utf8"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/structpb"
)

// errRespUTF8 is a string of the response that is not UTF-8, which proto3
// cannot send (proto.Marshal refuses it the same way; the Check then fails
// and Envoy denies).
var errRespUTF8 = errors.New("proto: string field contains invalid UTF-8")

// encodeCheckResponse is proto.Marshal of a CheckResponse, written out for
// the messages a CheckResponse holds (TestEncodeCheckResponse holds it to
// proto.Unmarshal on every field of each, set at random): the generic
// encoder sizes the message by reflection first, the dynamic metadata's
// map most of all.
func encodeCheckResponse(b []byte, m *authv3.CheckResponse) ([]byte, error) {
	e := respEncoder{b: b}
	e.checkResponse(m)
	return e.b, e.err
}

// respEncoder appends a message's fields to b; err is the first string
// that is not UTF-8.
type respEncoder struct {
	b   []byte
	err error
}

// begin starts a length-delimited field num, to be closed by end with the
// offset it returns: one byte is reserved for the length, which end widens
// when the contents need more.
func (e *respEncoder) begin(num protowire.Number) int {
	e.b = protowire.AppendTag(e.b, num, protowire.BytesType)
	e.b = append(e.b, 0)
	return len(e.b)
}

func (e *respEncoder) end(start int) {
	n := len(e.b) - start
	if n < 0x80 {
		e.b[start-1] = byte(n)
		return
	}
	k := protowire.SizeVarint(uint64(n))
	for range k - 1 {
		e.b = append(e.b, 0)
	}
	copy(e.b[start-1+k:], e.b[start:start+n])
	protowire.AppendVarint(e.b[:start-1], uint64(n))
}

// str appends a string field; always (a repeated or oneof member), or
// only when not empty (a proto3 singular field).
func (e *respEncoder) str(num protowire.Number, s string, always bool) {
	if s == "" && !always {
		return
	}
	if !utf8.ValidString(s) && e.err == nil {
		e.err = errRespUTF8
	}
	e.b = protowire.AppendTag(e.b, num, protowire.BytesType)
	e.b = protowire.AppendString(e.b, s)
}

func (e *respEncoder) bytes(num protowire.Number, v []byte) {
	if len(v) == 0 {
		return
	}
	e.b = protowire.AppendTag(e.b, num, protowire.BytesType)
	e.b = protowire.AppendBytes(e.b, v)
}

// varint appends a varint field (int32 and enums sign-extended, as
// protobuf does); always as for str.
func (e *respEncoder) varint(num protowire.Number, v uint64, always bool) {
	if v == 0 && !always {
		return
	}
	e.b = protowire.AppendTag(e.b, num, protowire.VarintType)
	e.b = protowire.AppendVarint(e.b, v)
}

func boolVarint(v bool) uint64 {
	if v {
		return 1
	}
	return 0
}

func (e *respEncoder) checkResponse(m *authv3.CheckResponse) {
	if m.Status != nil {
		s := e.begin(1)
		e.status(m.Status)
		e.end(s)
	}
	switch r := m.HttpResponse.(type) {
	case *authv3.CheckResponse_DeniedResponse:
		s := e.begin(2)
		e.denied(r.DeniedResponse)
		e.end(s)
	case *authv3.CheckResponse_OkResponse:
		s := e.begin(3)
		e.ok(r.OkResponse)
		e.end(s)
	case *authv3.CheckResponse_ErrorResponse:
		s := e.begin(5)
		e.denied(r.ErrorResponse)
		e.end(s)
	}
	if m.DynamicMetadata != nil {
		s := e.begin(4)
		e.structValue(m.DynamicMetadata)
		e.end(s)
	}
}

func (e *respEncoder) status(m *rpcstatus.Status) {
	e.varint(1, uint64(int64(m.Code)), false)
	e.str(2, m.Message, false)
	for _, d := range m.Details {
		s := e.begin(3)
		e.any(d)
		e.end(s)
	}
}

func (e *respEncoder) any(m *anypb.Any) {
	if m == nil {
		return
	}
	e.str(1, m.TypeUrl, false)
	e.bytes(2, m.Value)
}

func (e *respEncoder) denied(m *authv3.DeniedHttpResponse) {
	if m == nil {
		return
	}
	if m.Status != nil {
		s := e.begin(1)
		e.varint(1, uint64(int64(m.Status.Code)), false)
		e.end(s)
	}
	e.headerOptions(2, m.Headers)
	e.str(3, m.Body, false)
}

func (e *respEncoder) ok(m *authv3.OkHttpResponse) {
	if m == nil {
		return
	}
	e.headerOptions(2, m.Headers)
	//lint:ignore SA1019 the deprecated field is still part of the message
	if md := m.DynamicMetadata; md != nil {
		s := e.begin(3)
		e.structValue(md)
		e.end(s)
	}
	for _, h := range m.HeadersToRemove {
		e.str(5, h, true)
	}
	e.headerOptions(6, m.ResponseHeadersToAdd)
	for _, q := range m.QueryParametersToSet {
		s := e.begin(7)
		if q != nil {
			e.str(1, q.Key, false)
			e.str(2, q.Value, false)
		}
		e.end(s)
	}
	for _, q := range m.QueryParametersToRemove {
		e.str(8, q, true)
	}
}

func (e *respEncoder) headerOptions(num protowire.Number, hs []*corev3.HeaderValueOption) {
	for _, o := range hs {
		s := e.begin(num)
		if o != nil {
			if h := o.Header; h != nil {
				t := e.begin(1)
				e.str(1, h.Key, false)
				e.str(2, h.Value, false)
				e.bytes(3, h.RawValue)
				e.end(t)
			}
			//lint:ignore SA1019 Envoy ≤ 1.36 reads only append (ENVOY.md)
			if a := o.Append; a != nil {
				t := e.begin(2)
				e.varint(1, boolVarint(a.Value), false)
				e.end(t)
			}
			e.varint(3, uint64(int64(o.AppendAction)), false)
			e.varint(4, boolVarint(o.KeepEmptyValue), false)
		}
		e.end(s)
	}
}

func (e *respEncoder) structValue(m *structpb.Struct) {
	for k, v := range m.Fields {
		s := e.begin(1)
		e.str(1, k, false)
		t := e.begin(2)
		e.value(v)
		e.end(t)
		e.end(s)
	}
}

func (e *respEncoder) value(m *structpb.Value) {
	if m == nil {
		return
	}
	switch k := m.Kind.(type) {
	case *structpb.Value_NullValue:
		e.varint(1, uint64(int64(k.NullValue)), true)
	case *structpb.Value_NumberValue:
		e.b = protowire.AppendTag(e.b, 2, protowire.Fixed64Type)
		e.b = protowire.AppendFixed64(e.b, math.Float64bits(k.NumberValue))
	case *structpb.Value_StringValue:
		e.str(3, k.StringValue, true)
	case *structpb.Value_BoolValue:
		e.varint(4, boolVarint(k.BoolValue), true)
	case *structpb.Value_StructValue:
		s := e.begin(5)
		if k.StructValue != nil {
			e.structValue(k.StructValue)
		}
		e.end(s)
	case *structpb.Value_ListValue:
		s := e.begin(6)
		if k.ListValue != nil {
			for _, v := range k.ListValue.Values {
				t := e.begin(1)
				e.value(v)
				e.end(t)
			}
		}
		e.end(s)
	}
}
