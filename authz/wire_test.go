package authz

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/wardenauthz/warden/authz/decisionlog"
	"github.com/wardenauthz/warden/identity"
	"github.com/wardenauthz/warden/policy"
	"github.com/wardenauthz/warden/ratelimit"
)

// checkWire holds decodeCheckRequest to proto.Unmarshal followed by
// inputOf on b: both refuse it, or both read the same fields. It also
// checks that the result owns its strings (b is overwritten afterwards)
// and that held counts them.
func checkWire(t *testing.T, b []byte) {
	t.Helper()
	var m authv3.CheckRequest
	perr := proto.Unmarshal(b, &m)
	own := bytes.Clone(b)
	got, held, werr := decodeCheckRequest(own, Limits{})
	if (perr == nil) != (werr == nil) {
		t.Fatalf("proto.Unmarshal: %v; decodeCheckRequest: %v\ninput %x", perr, werr, b)
	}
	if perr != nil {
		return
	}
	for i := range own {
		own[i] = 0xff
	}
	want := inputOf(&m, Limits{})
	if d := cmp.Diff(normalInput(want), normalInput(got)); d != "" {
		t.Fatalf("decoded differently from proto.Unmarshal (-proto +wire):\n%s\ninput %x", d, b)
	}
	if n := stringBytes(got); held != n {
		t.Fatalf("held %d bytes, the strings are %d", held, n)
	}
}

// normalInput is ci comparable with cmp: headers in a fixed order, an
// empty map as nil.
type plainInput struct {
	SrcSocket                            bool
	SrcAddr                              string
	SrcPort                              uint32
	Principal, Certificate, DestService  string
	Extensions                           map[string]string
	HasTime                              bool
	TimeSec                              int64
	TimeNanos                            int32
	HasHTTP                              bool
	Method, Path, Host, Scheme, Protocol string
	BodyBytes, RawBodyBytes              int
	Headers, HeaderMap                   []policy.Header
	HeaderCount, HeaderBytes             int
}

func normalInput(ci *checkInput) plainInput {
	p := plainInput{ci.srcSocket, ci.srcAddr, ci.srcPort, ci.principal, ci.certificate, ci.destService, ci.extensions,
		ci.hasTime, ci.timeSec, ci.timeNanos, ci.hasHTTP, ci.method, ci.path, ci.host, ci.scheme, ci.protocol,
		ci.bodyBytes, ci.rawBodyBytes, slices.Clone(ci.headers), ci.headerMap, ci.headerCount, ci.headerBytes}
	if len(p.Extensions) == 0 {
		p.Extensions = nil
	}
	slices.SortFunc(p.Headers, byName)
	if len(p.Headers) == 0 {
		p.Headers = nil
	}
	if len(p.HeaderMap) == 0 {
		p.HeaderMap = nil
	}
	return p
}

func stringBytes(ci *checkInput) int {
	n := len(ci.srcAddr) + len(ci.principal) + len(ci.certificate) + len(ci.destService) +
		len(ci.method) + len(ci.path) + len(ci.host) + len(ci.scheme) + len(ci.protocol)
	for k, v := range ci.extensions {
		n += len(k) + len(v)
	}
	for _, h := range append(slices.Clone(ci.headers), ci.headerMap...) {
		n += len(h.Name) + len(h.Value)
	}
	return n
}

// envoySamples are the shipped example CheckRequests (Envoy's own shapes),
// in wire form.
func envoySamples(t testing.TB) [][]byte {
	files, err := filepath.Glob("server/testdata/checkrequests/*.json")
	if err != nil || len(files) < 10 {
		t.Fatalf("samples: %v (%d)", err, len(files))
	}
	var out [][]byte
	for _, f := range files {
		j, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var m authv3.CheckRequest
		if err := protojson.Unmarshal(j, &m); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		b, err := proto.Marshal(&m)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

// TestDecodeCheckRequestSamples: Envoy's samples decode as protobuf
// decodes them, and parse to the same request.
func TestDecodeCheckRequestSamples(t *testing.T) {
	for _, b := range envoySamples(t) {
		checkWire(t, b)
		var m authv3.CheckRequest
		if err := proto.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		ci, _, err := decodeCheckRequest(b, Limits{})
		if err != nil {
			t.Fatal(err)
		}
		now := time.Unix(1780408800, 0)
		want, got := parseRequest(&m, now, Limits{}), parseInput(ci, now, Limits{})
		if d := cmp.Diff(want, got, cmp.AllowUnexported(request{}), cmp.Comparer(func(a, b fmt.Stringer) bool { return a.String() == b.String() })); d != "" {
			t.Errorf("parsed differently (-proto +wire):\n%s", d)
		}
	}
}

// TestDecodeCheckRequestGenerated: messages generated from the schema, with
// every field repeated, merged, of the wrong wire type, unknown, out of
// range, cut short or not UTF-8, decode as protobuf decodes them.
func TestDecodeCheckRequestGenerated(t *testing.T) {
	n := 20000
	if testing.Short() {
		n = 2000
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range n {
		b := genMessage(r, "CheckRequest", 0)
		if r.IntN(8) == 0 {
			b = mutate(r, b)
		}
		checkWire(t, b)
	}
}

// TestDecodeCheckRequestDepth: the metadata (structs within structs) is
// refused at the same nesting depth as protobuf refuses it.
func TestDecodeCheckRequestDepth(t *testing.T) {
	// depth structs (3 levels each: struct, map entry, value) around
	// lists lists (2 levels each), so that every depth is reached.
	nested := func(depth, lists int) []byte {
		v := structpb.NewStringValue("x")
		if lists == 3 { // innermost an empty list
			v, lists = structpb.NewListValue(&structpb.ListValue{}), 0
		}
		for range lists {
			v = structpb.NewListValue(&structpb.ListValue{Values: []*structpb.Value{v}})
		}
		v = structpb.NewStructValue(&structpb.Struct{Fields: map[string]*structpb.Value{"a": v}})
		for range depth {
			v = structpb.NewStructValue(&structpb.Struct{Fields: map[string]*structpb.Value{"a": v}})
		}
		m := &authv3.CheckRequest{Attributes: &authv3.AttributeContext{MetadataContext: &corev3.Metadata{
			FilterMetadata: map[string]*structpb.Struct{"f": v.GetStructValue()}}}}
		b, err := proto.MarshalOptions{}.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for lists := range 4 {
		refused := func(d int) bool { return proto.Unmarshal(nested(d, lists), new(authv3.CheckRequest)) != nil }
		lo, hi := 1, 8000 // protobuf accepts lo, refuses hi
		if refused(lo) || !refused(hi) {
			t.Fatal("the nesting does not reach protobuf's limit")
		}
		for hi-lo > 1 {
			if m := (lo + hi) / 2; refused(m) {
				hi = m
			} else {
				lo = m
			}
		}
		for d := lo - 1; d <= hi+1; d++ {
			checkWire(t, nested(d, lists))
		}
	}
}

// FuzzCheckRequestWire: decodeCheckRequest against proto.Unmarshal and
// inputOf on any bytes.
func FuzzCheckRequestWire(f *testing.F) {
	addCheckRequestSeeds(f, 3)
	f.Fuzz(func(t *testing.T, b []byte) { checkWire(t, b) })
}

// addCheckRequestSeeds seeds f with Envoy's samples and 20 messages
// generated from the schema (seed picks which).
func addCheckRequestSeeds(f *testing.F, seed uint64) {
	for _, b := range envoySamples(f) {
		f.Add(b)
	}
	r := rand.New(rand.NewPCG(seed, seed+1))
	for range 20 {
		f.Add(genMessage(r, "CheckRequest", 0))
	}
}

// The schema of what decodeCheckRequest reads, for genMessage: field
// number → kind ("s" string, "b" bytes, "v" varint, "m:Name" message,
// "map" map<string,string>, "meta" config.core.v3.Metadata).
var wireSchema = map[string]map[protowire.Number]string{
	"CheckRequest":     {1: "m:AttributeContext"},
	"AttributeContext": {1: "m:Peer", 2: "m:Peer", 4: "m:Request", 10: "map", 11: "meta", 12: "m:TLSSession", 13: "m:Metadata"},
	"Metadata":         {1: "m:StructEntry", 2: "m:AnyEntry"},
	"StructEntry":      {1: "s", 2: "m:Struct"},
	"AnyEntry":         {1: "s", 2: "m:Any"},
	"Struct":           {1: "m:ValueEntry"},
	"ValueEntry":       {1: "s", 2: "m:Value"},
	"Value":            {1: "v", 2: "f64", 3: "s", 4: "v", 5: "m:Struct", 6: "m:ListValue"},
	"ListValue":        {1: "m:Value"},
	"Any":              {1: "s", 2: "b"},
	"Peer":             {1: "m:Address", 2: "s", 3: "map", 4: "s", 5: "s"},
	"Address":          {1: "m:SocketAddress", 2: "m:Pipe", 3: "m:Internal"},
	"SocketAddress":    {1: "v", 2: "s", 3: "v", 4: "s", 5: "s", 6: "v", 7: "s"},
	"Pipe":             {1: "s", 2: "v"},
	"Internal":         {1: "s", 2: "s"},
	"Request":          {1: "m:Timestamp", 2: "m:HttpRequest"},
	"Timestamp":        {1: "v", 2: "v"},
	"HttpRequest":      {1: "s", 2: "s", 3: "map", 4: "s", 5: "s", 6: "s", 7: "s", 8: "s", 9: "v", 10: "s", 11: "s", 12: "b", 13: "m:HeaderMap"},
	"HeaderMap":        {1: "m:HeaderValue"},
	"HeaderValue":      {1: "s", 2: "s", 3: "b"},
	"TLSSession":       {1: "s"},
	"MapEntry":         {1: "s", 2: "s"},
}

var wireStrings = []string{"", "GET", "POST", "/a/b?c=d", "x-request-id", "Authorization", "authorization", "Bearer abc.def.ghi",
	"127.0.0.1", "::1", "198.51.100.7", "fe80::1%eth0", "spiffe://td/ns/a/sa/b", "HTTP/1.1", "héllo", ":path", ":authority",
	"X-A", "x-a", "h.example", "\x00", "\xff", "a\xc3", "\xed\xa0\x80"}

// genMessage encodes a random message of the given schema type: each field
// zero or more times (repeats merge, or the last wins), now and then of
// the wrong wire type, with unknown fields, and strings now and then not
// UTF-8.
func genMessage(r *rand.Rand, name string, depth int) []byte {
	var b []byte
	fields := wireSchema[name]
	nums := slices.Sorted(func(yield func(protowire.Number) bool) {
		for n := range fields {
			if !yield(n) {
				return
			}
		}
	})
	for range r.IntN(6) {
		if r.IntN(10) == 0 { // an unknown field, of any well-formed type
			num := protowire.Number(20 + r.IntN(100))
			switch r.IntN(4) {
			case 0:
				b = protowire.AppendTag(b, num, protowire.VarintType)
				b = protowire.AppendVarint(b, r.Uint64())
			case 1:
				b = protowire.AppendTag(b, num, protowire.Fixed32Type)
				b = protowire.AppendFixed32(b, r.Uint32())
			case 2:
				b = protowire.AppendTag(b, num, protowire.StartGroupType)
				b = protowire.AppendTag(b, 1, protowire.VarintType)
				b = protowire.AppendVarint(b, 1)
				b = protowire.AppendTag(b, num, protowire.EndGroupType)
			default:
				b = protowire.AppendTag(b, num, protowire.BytesType)
				b = protowire.AppendString(b, "unknown")
			}
			continue
		}
		num := nums[r.IntN(len(nums))]
		kind := fields[num]
		if r.IntN(12) == 0 { // the wrong wire type for a known field
			if kind == "v" || kind == "f64" {
				b = protowire.AppendTag(b, num, protowire.BytesType)
				b = protowire.AppendString(b, "x")
			} else {
				b = protowire.AppendTag(b, num, protowire.VarintType)
				b = protowire.AppendVarint(b, 7)
			}
			continue
		}
		switch {
		case kind == "f64":
			b = protowire.AppendTag(b, num, protowire.Fixed64Type)
			b = protowire.AppendFixed64(b, r.Uint64())
		case kind == "v":
			b = protowire.AppendTag(b, num, protowire.VarintType)
			vals := []uint64{0, 1, 80, 443, 65535, 1 << 32, 1<<32 + 8080, 1e9, 1e9 + 1, 1780408800, 253402300800, 1<<64 - 1, 1<<63 + 5}
			b = protowire.AppendVarint(b, vals[r.IntN(len(vals))])
		case kind == "s" || kind == "b":
			b = protowire.AppendTag(b, num, protowire.BytesType)
			s := wireStrings[r.IntN(len(wireStrings))]
			if kind == "s" && r.IntN(3) > 0 {
				s = strings.ToValidUTF8(s, "?")
			}
			b = protowire.AppendString(b, s)
		case kind == "map":
			b = protowire.AppendTag(b, num, protowire.BytesType)
			b = protowire.AppendBytes(b, genMessage(r, "MapEntry", depth+1))
		case kind == "meta":
			b = protowire.AppendTag(b, num, protowire.BytesType)
			if r.IntN(2) == 0 {
				b = protowire.AppendBytes(b, nil)
			} else {
				s, _ := structpb.NewStruct(map[string]any{"k": wireStrings[r.IntN(len(wireStrings))], "n": 1.5})
				m, _ := proto.Marshal(&corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{"envoy.filters.http.jwt_authn": s}})
				b = protowire.AppendBytes(b, m)
			}
		case depth < 8:
			b = protowire.AppendTag(b, num, protowire.BytesType)
			b = protowire.AppendBytes(b, genMessage(r, strings.TrimPrefix(kind, "m:"), depth+1))
		}
	}
	return b
}

// mutate breaks b the ways a wire decoder must notice: cut short, a byte
// changed, a field number of 0 or past the maximum, a stray end of group.
func mutate(r *rand.Rand, b []byte) []byte {
	b = bytes.Clone(b)
	switch r.IntN(5) {
	case 0:
		if len(b) > 0 {
			return b[:r.IntN(len(b))]
		}
	case 1:
		if len(b) > 0 {
			b[r.IntN(len(b))] ^= byte(1 << r.IntN(8))
		}
	case 2:
		return protowire.AppendVarint(b, 0) // tag of field 0
	case 3:
		b = protowire.AppendTag(b, protowire.MaxValidNumber+1, protowire.VarintType)
		return protowire.AppendVarint(b, 1)
	default:
		return protowire.AppendTag(b, 5, protowire.EndGroupType)
	}
	return b
}

// TestDecodeCheckRequestAllocations: decoding an Envoy-shaped request
// costs a handful of allocations however many header fields it carries
// (the generic decoder's cost is about eight per field).
func TestDecodeCheckRequestAllocations(t *testing.T) {
	for _, n := range []int{10, 30} {
		h := &authv3.AttributeContext_HttpRequest{Method: "GET", Path: "/", Host: "h", Headers: map[string]string{}}
		for i := range n {
			h.Headers[fmt.Sprintf("x-h-%d", i)] = "v"
		}
		b, _ := proto.Marshal(&authv3.CheckRequest{Attributes: &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{Http: h}}})
		if a := testing.AllocsPerRun(20, func() { _, _, _ = decodeCheckRequest(b, Limits{}) }); a > 4 {
			t.Errorf("%d header fields: %v allocations", n, a)
		}
	}
}

// BenchmarkDecodeCheckRequest: the wire decoder against proto.Unmarshal
// (what the no-op server pays) and proto.Unmarshal then inputOf, on
// Envoy's samples.
func BenchmarkDecodeCheckRequest(b *testing.B) {
	samples := envoySamples(b)
	b.Run("wire", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if _, _, err := decodeCheckRequest(samples[i%len(samples)], Limits{}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("proto.Unmarshal", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if err := proto.Unmarshal(samples[i%len(samples)], new(authv3.CheckRequest)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("proto.Unmarshal+inputOf", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			m := new(authv3.CheckRequest)
			if err := proto.Unmarshal(samples[i%len(samples)], m); err != nil {
				b.Fatal(err)
			}
			inputOf(m, Limits{})
		}
	})
}

// BenchmarkEncodeCheckResponse: the response encoder against proto.Marshal
// on an allow with its headers and dynamic metadata.
func BenchmarkEncodeCheckResponse(b *testing.B) {
	rec := &decisionlog.Record{DecisionID: "01JDXK3V9Q4W2B7N8M5C6R1T0Y", Principal: `User::"https://idp.example.com|alice"`,
		Reason: ReasonPolicyAllow, Action: `Action::"GET"`, Resource: `Route::"orders/get"`, Policies: []string{"orders-read"}}
	a := &Authorizer{h: newHeaderNames("x-warden-")}
	m := a.allow(rec, &request{}, &identity.Identity{}, ratelimit.Decision{})
	b.Run("wire", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := encodeCheckResponse(make([]byte, 0, 512), m); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("proto.Marshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := proto.Marshal(m); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestDecodeFloodsCostTheirSize: what the wire decoder allocates for a
// flood of tiny fields stays small however many there are: header fields
// in either form past the limits (refused 431 unread), context extensions
// past theirs (refused 400), and metadata Warden only checks (a list of a
// million empty values). Each generic protobuf message would cost tens of
// times its two bytes on the wire.
func TestDecodeFloodsCostTheirSize(t *testing.T) {
	l := Limits{MaxHeaders: 128, MaxHeaderBytes: 96 << 10}
	wrap := func(attrs []byte) []byte {
		return protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), attrs)
	}
	field := func(num protowire.Number, v []byte) []byte {
		return protowire.AppendBytes(protowire.AppendTag(nil, num, protowire.BytesType), v)
	}
	repeat := func(num protowire.Number, v []byte, n int) []byte {
		one := field(num, v)
		return bytes.Repeat(one, n)
	}
	http := func(h []byte) []byte { return field(4, field(2, append(field(2, []byte("GET")), h...))) }
	entry := func(i int) []byte { return append(field(1, fmt.Appendf(nil, "k%d", i)), field(2, []byte("v"))...) }
	var distinct []byte
	for i := range 100_000 {
		distinct = append(distinct, field(3, entry(i))...)
	}
	var exts []byte
	for i := range 100_000 {
		exts = append(exts, field(10, entry(i))...)
	}
	for _, c := range []struct {
		name   string
		b      []byte
		status int // of the screen; 0: not refused
	}{
		{"header_map of 200,000 empty fields", wrap(http(field(13, repeat(1, nil, 200_000)))), 431},
		{"headers map of 100,000 keys", wrap(http(distinct)), 431},
		{"100,000 context extensions", wrap(append(exts, http(nil)...)), 400},
		{"metadata: a list of 1,000,000 empty values", wrap(field(11, field(1, append(field(1, []byte("f")),
			field(2, field(1, append(field(1, []byte("k")), field(2, field(6, repeat(1, nil, 1_000_000)))...)))...)))), 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			var ci *checkInput
			var err error
			n := allocated(func() { ci, _, err = decodeCheckRequest(c.b, l) })
			if err != nil {
				t.Fatal(err)
			}
			if n > 64<<10 {
				t.Errorf("decoding %d bytes allocated %d bytes", len(c.b), n)
			}
			in := parseInput(ci, time.Now(), l)
			d := l.screen(&in)
			switch {
			case c.status == 0 && d != nil:
				t.Errorf("refused: %s", d.detail)
			case c.status != 0 && (d == nil || d.status != c.status):
				t.Errorf("screen: %+v, want %d", d, c.status)
			}
		})
	}
}
