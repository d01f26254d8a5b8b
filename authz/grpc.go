package authz

import (
	"context"
	"sync"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
	protoenc "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
)

// GRPCCodec is the server option RegisterGRPC needs: gRPC's proto codec,
// except that a Check's request is decoded by decodeCheckRequest, straight
// into what the pipeline reads (one allocation for its strings, instead of
// one or more per field and about eight per header), and its response is
// written by encodeCheckResponse. Every other message of the server
// (health, reflection) goes through the proto codec.
func GRPCCodec() grpc.ServerOption {
	return grpc.ForceServerCodecV2(codec{encoding.GetCodecV2(protoenc.Name)})
}

type codec struct{ encoding.CodecV2 }

// Marshal writes a CheckResponse with encodeCheckResponse, anything else
// as the proto codec does. A response is written into a pooled buffer,
// which gRPC gives back once it has sent it (as the proto codec does with
// its pool for messages over 1 KiB; a Check's answer is usually under),
// rather than a new kilobyte per Check for the collector; one that
// outgrows the buffer is sent from its own.
//
// A pooledResponse (checkWire's answers) is written the same way, and its
// slab given back to its pool once written.
func (c codec) Marshal(v any) (mem.BufferSlice, error) {
	if p, ok := v.(pooledResponse); ok {
		defer p.release()
		v = p.response()
	}
	if m, ok := v.(*authv3.CheckResponse); ok {
		pool := &respBuffers
		buf := pool.Get(respBufferBytes)
		b, err := encodeCheckResponse((*buf)[:0], m)
		switch {
		case err != nil:
			pool.Put(buf)
			return nil, err
		case cap(b) != cap(*buf): // grown out of the pooled buffer
			pool.Put(buf)
			return mem.BufferSlice{mem.SliceBuffer(b)}, nil
		}
		*buf = b
		return mem.BufferSlice{mem.NewBuffer(buf, pool)}, nil
	}
	return c.CodecV2.Marshal(v)
}

// respBufferBytes is the size of a pooled response buffer: over gRPC's
// pooling threshold (mem.IsBelowBufferPoolingThreshold, 1 KiB), or
// mem.NewBuffer would not give it back.
const respBufferBytes = 2048

// respBuffers pools the response buffers. Unlike gRPC's default pool
// (whose smallest tier over 1 KiB is 4 KiB) it does not clear a buffer it
// hands out: the encoder appends from its start, and only what it wrote is
// sent.
var respBuffers respPool

type respPool struct{ p sync.Pool }

func (r *respPool) Get(n int) *[]byte {
	if b, ok := r.p.Get().(*[]byte); ok && cap(*b) >= n {
		*b = (*b)[:n]
		return b
	}
	b := make([]byte, n)
	return &b
}

func (r *respPool) Put(b *[]byte) { r.p.Put(b) }

func (c codec) Unmarshal(data mem.BufferSlice, v any) error {
	if w, ok := v.(*wireCheck); ok {
		return w.decode(data)
	}
	return c.CodecV2.Unmarshal(data, v)
}

// wireCheck is a CheckRequest as the codec decodes it.
type wireCheck struct {
	lim  Limits // the Authorizer's: the decoder builds no more than these let through
	in   *checkInput
	held int // the bytes its strings keep alive
}

func (w *wireCheck) decode(data mem.BufferSlice) error {
	var b []byte
	if len(data) == 1 {
		b = data[0].ReadOnlyData() // decodeCheckRequest copies what it keeps
	} else {
		b = data.Materialize()
	}
	in, held, err := decodeCheckRequest(b, w.lim)
	w.in, w.held = in, held
	return err
}

// RegisterGRPC registers a as envoy.service.auth.v3.Authorization on g,
// which must have been built with GRPCCodec. (authv3's generated
// registration would work too, through the generic decoder.)
func (a *Authorizer) RegisterGRPC(g *grpc.Server) {
	desc := authv3.Authorization_ServiceDesc
	desc.Methods = []grpc.MethodDesc{{MethodName: "Check", Handler: checkHandler}}
	a.grpcInfo = &grpc.UnaryServerInfo{Server: a, FullMethod: authv3.Authorization_Check_FullMethodName}
	a.grpcHandler = a.checkWire
	g.RegisterService(&desc, a)
}

// checkHandler is the Check method's handler. A unary interceptor sees
// the decoded request as a *wireCheck (the info and the handler it is
// given are made once, in RegisterGRPC, not per Check).
func checkHandler(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
	a := srv.(*Authorizer)
	w := &wireCheck{lim: a.o.Limits}
	if err := dec(w); err != nil {
		return nil, err
	}
	if interceptor == nil {
		return a.checkWire(ctx, w)
	}
	return interceptor(ctx, w, a.grpcInfo, a.grpcHandler)
}

// checkWire answers a Check decoded by the codec.
func (a *Authorizer) checkWire(ctx context.Context, req any) (any, error) {
	w := req.(*wireCheck)
	// The codec's Marshal writes the response and gives its slab back;
	// nothing in gRPC reads it after that (its binary log logs the written
	// bytes; this server installs no stats handler) except its
	// golang.org/x/net/trace log, which keeps the message to print later:
	// with that on, the slab is left to the collector.
	out := a.evaluate(ctx, w.in, w.held)
	if out.pooled == nil || grpc.EnableTracing {
		return out.Response, nil
	}
	return out.pooled, nil
}
