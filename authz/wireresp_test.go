package authz

import (
	"math/rand/v2"
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/google/go-cmp/cmp"
)

// TestEncodeCheckResponse: encodeCheckResponse writes what proto.Marshal
// writes, read back by proto.Unmarshal, for CheckResponses with every field
// of every message they hold set at random (by reflection over the
// descriptors, so a field the encoder does not know, or one added by a new
// go-control-plane, fails here), and refuses what proto.Marshal refuses
// (strings that are not UTF-8).
func TestEncodeCheckResponse(t *testing.T) {
	n := 5000
	if testing.Short() {
		n = 1000
	}
	r := rand.New(rand.NewPCG(5, 6))
	for range n {
		m := new(authv3.CheckResponse)
		fill(r, m.ProtoReflect(), 0)
		checkEncode(t, m)
	}
}

// checkEncode holds encodeCheckResponse to proto.Marshal on m.
func checkEncode(t *testing.T, m *authv3.CheckResponse) {
	t.Helper()
	_, perr := proto.Marshal(m)
	b, err := encodeCheckResponse(nil, m)
	if (perr == nil) != (err == nil) {
		t.Fatalf("proto.Marshal: %v; encodeCheckResponse: %v\n%v", perr, err, m)
	}
	if perr != nil {
		return
	}
	var back authv3.CheckResponse
	if err := proto.Unmarshal(b, &back); err != nil {
		t.Fatalf("encoded response does not decode: %v\n%v", err, m)
	}
	if !proto.Equal(m, &back) {
		t.Fatalf("encoded differently (-want +got):\n%s", cmp.Diff(m, &back, protocmp.Transform()))
	}
}

var fillStrings = []string{"", "a", "x-warden-principal", "User::\"alice\"", "héllo", "\xff", string(make([]byte, 200)), string(make([]byte, 20000))}

// fill sets each field of m at random (about half of them): scalars,
// enums (known or not), repeated fields and maps of 0–3 entries, one
// member of each oneof, messages to a depth of 4.
func fill(r *rand.Rand, m protoreflect.Message, depth int) {
	fs := m.Descriptor().Fields()
	for i := range fs.Len() {
		f := fs.Get(i)
		if r.IntN(2) == 0 {
			continue
		}
		if o := f.ContainingOneof(); o != nil && m.WhichOneof(o) != nil {
			continue
		}
		switch {
		case f.IsList():
			l := m.Mutable(f).List()
			for range r.IntN(4) {
				if f.Message() != nil {
					if depth > 3 {
						break
					}
					v := l.NewElement()
					fill(r, v.Message(), depth+1)
					l.Append(v)
				} else {
					l.Append(scalar(r, f))
				}
			}
		case f.IsMap():
			mp := m.Mutable(f).Map()
			for range r.IntN(4) {
				k := protoreflect.ValueOfString(fillStrings[r.IntN(4)]).MapKey()
				if depth > 3 {
					break
				}
				v := mp.NewValue()
				fill(r, v.Message(), depth+1)
				mp.Set(k, v)
			}
		case f.Message() != nil:
			if depth > 3 {
				continue
			}
			fill(r, m.Mutable(f).Message(), depth+1)
		default:
			m.Set(f, scalar(r, f))
		}
	}
}

func scalar(r *rand.Rand, f protoreflect.FieldDescriptor) protoreflect.Value {
	switch f.Kind() {
	case protoreflect.StringKind:
		s := fillStrings[r.IntN(len(fillStrings))]
		if r.IntN(4) > 0 {
			s = fillStrings[r.IntN(5)]
			if s == "\xff" {
				s = "ok"
			}
		}
		return protoreflect.ValueOfString(s)
	case protoreflect.BytesKind:
		return protoreflect.ValueOfBytes([]byte(fillStrings[r.IntN(len(fillStrings))]))
	case protoreflect.BoolKind:
		return protoreflect.ValueOfBool(r.IntN(2) == 0)
	case protoreflect.Int32Kind:
		return protoreflect.ValueOfInt32([]int32{0, 1, 7, 16, -1, -2147483648, 2147483647}[r.IntN(7)])
	case protoreflect.EnumKind:
		return protoreflect.ValueOfEnum([]protoreflect.EnumNumber{0, 1, 2, 200, 403, 429, 503, -5, 99999}[r.IntN(9)])
	case protoreflect.DoubleKind:
		return protoreflect.ValueOfFloat64([]float64{0, 1.5, -2, 1e300}[r.IntN(4)])
	}
	panic("fill: no generator for " + f.Kind().String() + " (" + string(f.FullName()) + "): add one")
}
